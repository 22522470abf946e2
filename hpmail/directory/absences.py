"""The absences list: which absences match a filter, in which order, one page at a time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.orm import contains_eager, selectinload

from hpmail.core.text import fold
from hpmail.directory.models import Absence, Person
from hpmail.directory.people import MAX_QUERY_LENGTH, positive_int
from hpmail.directory.records import RecordsPage, date_or_none, page_of

SORTS = ("date", "student", "course", "hours", "justified")
JUSTIFIED = ("yes", "no")


@dataclass(frozen=True)
class AbsenceFilter:
    """What the absences list shows: period, cohort, justified or not, student, sort, page."""

    q: str = ""
    cohort_id: int | None = None
    justified: str = ""
    start: date | None = None
    end: date | None = None
    sort: str = "date"
    descending: bool = False
    page: int = 1

    @classmethod
    def from_args(cls, args) -> AbsenceFilter:
        """Read a filter from query-string or form values, ignoring what makes no sense."""
        sort = args.get("sort", "date")
        justified = args.get("justified", "")
        return cls(
            q=(args.get("q") or "").strip()[:MAX_QUERY_LENGTH],
            cohort_id=positive_int(args.get("cohort")),
            justified=justified if justified in JUSTIFIED else "",
            start=date_or_none(args.get("start")),
            end=date_or_none(args.get("end")),
            sort=sort if sort in SORTS else "date",
            descending=args.get("order") == "desc",
            page=positive_int(args.get("page")) or 1,
        )

    def as_args(self, **changes) -> dict:
        """Return the query-string values of this filter (defaults left out)."""
        that = replace(self, **changes)
        values = {
            "q": that.q,
            "cohort": that.cohort_id,
            "justified": that.justified,
            "start": that.start.isoformat() if that.start else None,
            "end": that.end.isoformat() if that.end else None,
            "sort": that.sort if that.sort != "date" else None,
            "order": "desc" if that.descending else None,
            "page": that.page if that.page != 1 else None,
        }
        return {name: value for name, value in values.items() if value}


def _joins_person(flt: AbsenceFilter) -> bool:
    return bool(flt.q or flt.cohort_id) or flt.sort == "student"


def _where(query: Select, flt: AbsenceFilter) -> Select:
    if _joins_person(flt):
        query = query.join(Person, Person.id == Absence.person_id)
    for word in fold(flt.q).split():
        query = query.where(Person.search_text.contains(word, autoescape=True))
    if flt.cohort_id:
        query = query.where(Person.cohort_id == flt.cohort_id)
    if flt.justified:
        query = query.where(Absence.justified.is_(flt.justified == "yes"))
    if flt.start:
        query = query.where(Absence.day >= flt.start)
    if flt.end:
        query = query.where(Absence.day <= flt.end)
    return query


def matching_ids(flt: AbsenceFilter) -> Select:
    """Return the SELECT of the ids of the absences matching ``flt`` (any order)."""
    return _where(select(Absence.id), flt)


def _ordered(query: Select, flt: AbsenceFilter) -> Select:
    then = (Absence.day, Absence.start_time, Absence.id)
    columns = {
        "date": then,
        "student": (Person.last_name_key, Person.first_name_key, Person.id, *then),
        "course": (Absence.course_label, *then),
        "hours": (Absence.minutes, *then),
        "justified": (Absence.justified, *then),
    }[flt.sort]
    return query.order_by(*(key.desc() if flt.descending else key.asc() for key in columns))


def absences_page(flt: AbsenceFilter, page_size: int) -> RecordsPage:
    """Return page ``flt.page`` of the absences matching ``flt``, with their students."""
    query = _ordered(_where(select(Absence), flt), flt)
    if _joins_person(flt):
        query = query.options(contains_eager(Absence.person).selectinload(Person.cohort))
    else:
        query = query.options(selectinload(Absence.person).selectinload(Person.cohort))
    return page_of(matching_ids(flt), query, flt.page, page_size)
