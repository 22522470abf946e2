"""The people list as a page shows it: one page of a filter, its selection, and its links.

The list lives on its own page (Plannings › Enseignants…) and on pages that show a chosen person's
document beside it (Emploi du temps, Récapitulatif). Such a page registers itself here with the
query values it keeps (the person chosen, the week…), so that the list's links, and the answer to
a change of selection, lead back to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import url_for

from hpmail.directory import selection as selections
from hpmail.directory.models import KIND_PLURALS, PersonKind, Selection
from hpmail.directory.people import (
    PeopleFilter,
    checked_filter,
    cohort_choices,
    group_choices,
    people_page,
)

PEOPLE_LIST = "directory.people"
MAX_KEPT_LENGTH = 40


@dataclass(frozen=True)
class ListPage:
    """A page that shows the list: its endpoint, the query values it keeps, the person chosen."""

    endpoint: str
    keeps: tuple[str, ...] = ()
    person_arg: str | None = None  # the query value naming the person shown beside the list


LIST_PAGES: dict[str, ListPage] = {PEOPLE_LIST: ListPage(PEOPLE_LIST)}


def register_list_page(endpoint: str, keeps: tuple[str, ...] = (), person_arg: str | None = None):
    """Let the page ``endpoint`` show the list (a higher layer registers its pages at import)."""
    LIST_PAGES[endpoint] = ListPage(endpoint, tuple(keeps), person_arg)


def list_page_of(endpoint: str | None, values: Mapping) -> tuple[ListPage, dict[str, str]]:
    """Return the page registered as ``endpoint`` (else the list's own) and the values it keeps."""
    page = LIST_PAGES.get(endpoint or "", LIST_PAGES[PEOPLE_LIST])
    kept = {}
    for name in (*page.keeps, *([page.person_arg] if page.person_arg else [])):
        value = (values.get(name) or "").strip()[:MAX_KEPT_LENGTH]
        if value:
            kept[name] = value
    return page, kept


def listing(
    flt: PeopleFilter,
    selection: Selection,
    page_size: int,
    *,
    whole_page: bool = True,
    endpoint: str = PEOPLE_LIST,
    kept: Mapping[str, str] | None = None,
) -> dict:
    """Return what the list's template shows; the cohort menu only when the whole page is drawn."""
    flt = checked_filter(flt)
    page = people_page(flt, page_size)
    page.selected_ids = selections.selected_among(selection, [p.id for p in page.people])
    list_page = LIST_PAGES[endpoint]
    kept = dict(kept or {})

    def list_url(**changes) -> str:
        """The URL of this list page with the filter changed by ``changes``."""
        return url_for(
            endpoint, kind=flt.kind, selection=selection.token, **flt.as_args(**changes), **kept
        )

    def person_url(person_id: int) -> str:
        """The URL of this page showing that person beside the list."""
        values = {**kept, list_page.person_arg: person_id}
        return url_for(
            endpoint, kind=flt.kind, selection=selection.token, **flt.as_args(), **values
        )

    return {
        "kind": flt.kind,
        "title": KIND_PLURALS[flt.kind],
        "flt": flt,
        "listing": page,
        "selection": selection,
        "selected_count": selections.selected_count(selection),
        "cohorts": cohort_choices() if whole_page and flt.kind == PersonKind.STUDENT else [],
        "groups": group_choices(flt.cohort_id) if flt.kind == PersonKind.STUDENT else [],
        "group_filter_oob": not whole_page,
        "list_endpoint": endpoint,
        "list_kept": kept,
        "list_url": list_url,
        "person_url": person_url if list_page.person_arg else None,
    }
