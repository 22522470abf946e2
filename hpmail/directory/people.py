"""The people lists: which people match a filter, in which order, one page at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import selectinload

from hpmail.core.text import fold
from hpmail.directory.models import Cohort, EmailStatus, Group, Person, PersonKind, person_group
from hpmail.extensions import db

SORTS = ("last_name", "first_name", "email", "cohort")
MAX_QUERY_LENGTH = 100


def positive_int(raw: str | None) -> int | None:
    """Return ``raw`` as an id-sized positive integer, or None."""
    try:
        value = int((raw or "")[:12])
    except ValueError:
        return None
    return value if 0 < value < 2**31 else None


@dataclass(frozen=True)
class PeopleFilter:
    """What a list shows: kind, text, cohort, group, address status, sort column and direction,
    page."""

    kind: str
    q: str = ""
    cohort_id: int | None = None
    group_id: int | None = None
    email_status: str | None = None
    sort: str = "last_name"
    descending: bool = False
    page: int = 1

    @classmethod
    def from_args(cls, kind: str, args) -> PeopleFilter:
        """Read a filter from query-string or form values, ignoring what makes no sense."""
        sort = args.get("sort", "last_name")
        status = args.get("address")
        return cls(
            kind=kind,
            q=(args.get("q") or "").strip()[:MAX_QUERY_LENGTH],
            cohort_id=positive_int(args.get("cohort")) if kind == PersonKind.STUDENT else None,
            group_id=positive_int(args.get("group")) if kind == PersonKind.STUDENT else None,
            email_status=status if status in set(EmailStatus) else None,
            sort=sort if sort in SORTS else "last_name",
            descending=args.get("order") == "desc",
            page=positive_int(args.get("page")) or 1,
        )

    def as_args(self, **changes) -> dict:
        """Return the query-string values of this filter (defaults left out)."""
        that = replace(self, **changes)
        values = {
            "q": that.q,
            "cohort": that.cohort_id,
            "group": that.group_id,
            "address": that.email_status,
            "sort": that.sort if that.sort != "last_name" else None,
            "order": "desc" if that.descending else None,
            "page": that.page if that.page != 1 else None,
        }
        return {name: value for name, value in values.items() if value}


def matching_ids(flt: PeopleFilter) -> Select:
    """Return the SELECT of the ids of the people matching ``flt`` (any order)."""
    return _where(select(Person.id), flt)


def _where(query: Select, flt: PeopleFilter) -> Select:
    query = query.where(Person.kind == flt.kind)
    for word in fold(flt.q).split():
        query = query.where(Person.search_text.contains(word, autoescape=True))
    if flt.cohort_id:
        query = query.where(Person.cohort_id == flt.cohort_id)
    if flt.email_status:
        query = query.where(Person.email_status == flt.email_status)
    if flt.group_id:
        member = exists().where(
            person_group.c.person_id == Person.id, person_group.c.group_id == flt.group_id
        )
        query = query.where(member)
    return query


def _ordered(query: Select, flt: PeopleFilter) -> Select:
    columns = {
        "last_name": (Person.last_name_key, Person.first_name_key),
        "first_name": (Person.first_name_key, Person.last_name_key),
        "email": (Person.email, Person.last_name_key),
        "cohort": (Cohort.name, Person.last_name_key, Person.first_name_key),
    }[flt.sort]
    if flt.sort == "cohort":
        query = query.outerjoin(Cohort, Person.cohort_id == Cohort.id)
    keys = [*columns, Person.id]
    return query.order_by(*(key.desc() if flt.descending else key.asc() for key in keys))


@dataclass
class PeoplePage:
    """One page of a list, with the number of people matching and of pages."""

    people: list[Person]
    total: int
    page: int
    pages: int
    page_size: int
    selected_ids: set[int] = field(default_factory=set)


def count_matching(flt: PeopleFilter) -> int:
    """Return how many people match ``flt``."""
    return db.session.scalar(_where(select(func.count(Person.id)), flt))


def people_page(flt: PeopleFilter, page_size: int) -> PeoplePage:
    """Return page ``flt.page`` of the people matching ``flt``, with cohorts and groups loaded."""
    total = count_matching(flt)
    pages = max(1, math.ceil(total / page_size))
    page = min(flt.page, pages)
    query = _ordered(_where(select(Person), flt), flt)
    query = query.options(selectinload(Person.cohort), selectinload(Person.groups))
    people = db.session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    return PeoplePage(list(people), total, page, pages, page_size)


def cohort_choices() -> list[Cohort]:
    """Return the cohorts by name, for the filters."""
    return list(db.session.scalars(select(Cohort).order_by(Cohort.name)))


def group_choices(cohort_id: int | None) -> list[Group]:
    """Return the groups of the cohort by name (none without a cohort), for the group filter."""
    if not cohort_id:
        return []
    return list(
        db.session.scalars(select(Group).where(Group.cohort_id == cohort_id).order_by(Group.name))
    )


def checked_filter(flt: PeopleFilter) -> PeopleFilter:
    """Drop a group that is not in the chosen cohort (the cohort was changed after the group)."""
    if flt.group_id and flt.cohort_id:
        group_cohort = db.session.scalar(select(Group.cohort_id).where(Group.id == flt.group_id))
        if group_cohort != flt.cohort_id:
            return replace(flt, group_id=None)
    return flt
