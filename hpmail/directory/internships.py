"""The internships list: which internships match a filter, in which order, one page at a time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.orm import contains_eager, selectinload

from hpmail.core.text import fold
from hpmail.directory.models import Internship, Person
from hpmail.directory.people import MAX_QUERY_LENGTH, positive_int
from hpmail.directory.records import RecordsPage, date_or_none, page_of

SORTS = ("start", "end", "student", "company")


@dataclass(frozen=True)
class InternshipFilter:
    """What the internships list shows: a period they overlap, company, cohort, sort, page."""

    company: str = ""
    cohort_id: int | None = None
    start: date | None = None
    end: date | None = None
    sort: str = "start"
    descending: bool = False
    page: int = 1

    @classmethod
    def from_args(cls, args) -> InternshipFilter:
        """Read a filter from query-string or form values, ignoring what makes no sense."""
        sort = args.get("sort", "start")
        return cls(
            company=(args.get("company") or "").strip()[:MAX_QUERY_LENGTH],
            cohort_id=positive_int(args.get("cohort")),
            start=date_or_none(args.get("start")),
            end=date_or_none(args.get("end")),
            sort=sort if sort in SORTS else "start",
            descending=args.get("order") == "desc",
            page=positive_int(args.get("page")) or 1,
        )

    def as_args(self, **changes) -> dict:
        """Return the query-string values of this filter (defaults left out)."""
        that = replace(self, **changes)
        values = {
            "company": that.company,
            "cohort": that.cohort_id,
            "start": that.start.isoformat() if that.start else None,
            "end": that.end.isoformat() if that.end else None,
            "sort": that.sort if that.sort != "start" else None,
            "order": "desc" if that.descending else None,
            "page": that.page if that.page != 1 else None,
        }
        return {name: value for name, value in values.items() if value}


def _joins_person(flt: InternshipFilter) -> bool:
    return bool(flt.cohort_id) or flt.sort == "student"


def _where(query: Select, flt: InternshipFilter) -> Select:
    if _joins_person(flt):
        query = query.join(Person, Person.id == Internship.person_id)
    for word in fold(flt.company).split():
        query = query.where(Internship.company_key.contains(word, autoescape=True))
    if flt.cohort_id:
        query = query.where(Person.cohort_id == flt.cohort_id)
    # An internship is in the period when it overlaps it: it ends after the start, starts before
    # the end.
    if flt.start:
        query = query.where(Internship.end_date >= flt.start)
    if flt.end:
        query = query.where(Internship.start_date <= flt.end)
    return query


def matching_ids(flt: InternshipFilter) -> Select:
    """Return the SELECT of the ids of the internships matching ``flt`` (any order)."""
    return _where(select(Internship.id), flt)


def _ordered(query: Select, flt: InternshipFilter) -> Select:
    columns = {
        "start": (Internship.start_date, Internship.end_date),
        "end": (Internship.end_date, Internship.start_date),
        "student": (Person.last_name_key, Person.first_name_key, Person.id, Internship.start_date),
        "company": (Internship.company_key, Internship.start_date),
    }[flt.sort]
    keys = [*columns, Internship.id]
    return query.order_by(*(key.desc() if flt.descending else key.asc() for key in keys))


def internships_page(flt: InternshipFilter, page_size: int) -> RecordsPage:
    """Return page ``flt.page`` of the internships matching ``flt``, with their students."""
    query = _ordered(_where(select(Internship), flt), flt)
    if _joins_person(flt):
        query = query.options(contains_eager(Internship.person).selectinload(Person.cohort))
    else:
        query = query.options(selectinload(Internship.person).selectinload(Person.cohort))
    return page_of(matching_ids(flt), query, flt.page, page_size)
