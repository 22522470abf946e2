"""Time: what every table stores (naive UTC datetimes) and the school's calendar day."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    """Return the current time in UTC, without tzinfo (as the database columns store it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def school_today() -> date:
    """Return today's date where the school is (``BABEL_DEFAULT_TIMEZONE``), not the server's.

    Pages show every stored time in the school's time zone. A server kept in UTC is still on
    yesterday between midnight in Paris and midnight UTC: a letter written then would carry
    yesterday's date, and early on a Monday the timetable would open on last week. Every "today"
    of the app comes from here.
    """
    from flask_babel import get_timezone

    return datetime.now(get_timezone()).date()
