"""What the absences and internships lists share: reading a date filter, one page of a query."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Select, func, select

from hpmail.extensions import db


def date_or_none(raw: str | None) -> date | None:
    """Return ``raw`` (YYYY-MM-DD, as a date input sends it) as a date, or None."""
    try:
        return date.fromisoformat((raw or "")[:10])
    except ValueError:
        return None


@dataclass
class RecordsPage:
    """One page of a list of records, with the number matching and of pages."""

    items: list
    total: int
    page: int
    pages: int
    page_size: int
    selected_ids: set[int] = field(default_factory=set)


def page_of(matching: Select, ordered: Select, page: int, page_size: int) -> RecordsPage:
    """Return page ``page`` of ``ordered``; ``matching`` selects the ids of the same rows."""
    total = db.session.scalar(select(func.count()).select_from(matching.subquery()))
    pages = max(1, math.ceil(total / page_size))
    page = min(page, pages)
    items = db.session.scalars(ordered.limit(page_size).offset((page - 1) * page_size)).all()
    return RecordsPage(list(items), total, page, pages, page_size)
