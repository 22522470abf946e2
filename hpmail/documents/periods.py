"""Periods read from a request: a week (``?semaine=``) or two dates (``?du=&au=``), checked once.

Every page and form that takes a period goes through here, so that a date no one can mean (year
10000, ``semaine=abc``, an end before the start, more than a year) is refused with the same
French message, and never reaches the documents as a 500.
"""

from __future__ import annotations

from datetime import date

from flask_babel import gettext as _

from hpmail.core.forms import InputRefused
from hpmail.documents.layout import Period

# A summary covers at most a school year (and a bit: a leap year).
MAX_PERIOD_DAYS = 366
# Dates outside these years are typing mistakes; they also keep date arithmetic in range.
FIRST_YEAR, LAST_YEAR = 2000, 2100


class PeriodRefused(InputRefused):
    """A week or a period that cannot be shown."""


def parse_day(raw: str | None) -> date | None:
    """Return the ISO date ``YYYY-MM-DD`` of ``raw`` within the years allowed, else None."""
    text = (raw or "").strip()
    if len(text) != 10:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_YEAR <= day.year <= LAST_YEAR else None


def week_from_query(raw: str | None, today: date) -> Period:
    """Return the week (Monday to Sunday) holding the day ``raw``; this week when it is empty."""
    if not (raw or "").strip():
        return Period.week_of(today)
    day = parse_day(raw)
    if day is None:
        raise PeriodRefused(
            _("Choose the week with a valid date (day/month/year)."), field="semaine"
        )
    return Period.week_of(day)


def period_from_query(start_raw: str | None, end_raw: str | None, today: date) -> Period:
    """Return the period from ``start_raw`` to ``end_raw``; the school term of today by default.

    An empty bound takes the term's; a bound that is not a date, or a period that ends before
    it starts or lasts more than a year, is refused.
    """
    term = Period.term_of(today)
    errors = {}
    start, end = term.start, term.end
    if (start_raw or "").strip():
        start = parse_day(start_raw)
        if start is None:
            errors["du"] = _("This start date is not valid.")
    if (end_raw or "").strip():
        end = parse_day(end_raw)
        if end is None:
            errors["au"] = _("This end date is not valid.")
    if errors:
        raise PeriodRefused(errors)
    return checked_period(Period(start, end))


def checked_period(period: Period) -> Period:
    """Return ``period`` if a document can cover it; raise ``PeriodRefused`` otherwise."""
    if period.end < period.start:
        raise PeriodRefused(_("The period ends before it starts."), field="au")
    if period.days > MAX_PERIOD_DAYS:
        raise PeriodRefused(
            _("A period lasts at most %(num)s days.", num=MAX_PERIOD_DAYS), field="au"
        )
    return period
