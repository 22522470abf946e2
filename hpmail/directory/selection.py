"""Server-side selections: the people, absences or internships a user picked in a list.

A selection sits behind an unguessable token. Its ``kind`` says what it holds: a kind of person (or
none, people of every kind), ``absence`` or ``internship``; each has its own member table, and
every function here works on whichever the selection holds.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from flask import abort
from sqlalchemy import Select, delete, exists, func, insert, literal, select

from hpmail.core.time import utcnow
from hpmail.directory.models import (
    Absence,
    Internship,
    Person,
    Selection,
    SelectionAbsence,
    SelectionInternship,
    SelectionKind,
    SelectionMember,
)
from hpmail.extensions import db

log = logging.getLogger(__name__)

# A list reuses the user's latest selection of its kind while it is this recent.
CURRENT_FOR = timedelta(hours=12)
# Older selections are deleted when the user starts a new one.
KEEP_FOR = timedelta(days=7)


@dataclass(frozen=True)
class Members:
    """Where a kind of selection keeps its items: the member table, its item column, the items."""

    table: type
    column: str
    model: type

    def item_id(self):
        return getattr(self.table, self.column)


PEOPLE = Members(SelectionMember, "person_id", Person)
MEMBERS = {
    SelectionKind.ABSENCE: Members(SelectionAbsence, "absence_id", Absence),
    SelectionKind.INTERNSHIP: Members(SelectionInternship, "internship_id", Internship),
}


def members_of(selection: Selection) -> Members:
    """Return where this selection's items are kept."""
    return MEMBERS.get(selection.kind, PEOPLE)


def create_selection(user, item_ids: Iterable[int] = (), kind: str | None = None) -> Selection:
    """Create a selection of ``kind`` owned by ``user`` holding ``item_ids``."""
    db.session.execute(
        delete(Selection).where(
            Selection.user_id == user.id, Selection.created_at < utcnow() - KEEP_FOR
        )
    )
    selection = Selection(token=secrets.token_urlsafe(24), user_id=user.id, kind=kind)
    db.session.add(selection)
    db.session.flush()
    add_items(selection, item_ids)
    log.info("user %s started selection %s (%s)", user.id, selection.id, kind or "mixed")
    return selection


def current_selection(user, kind: str) -> Selection:
    """Return the user's recent selection of ``kind``, or a new empty one."""
    query = (
        select(Selection)
        .where(
            Selection.user_id == user.id,
            Selection.kind == kind,
            Selection.created_at >= utcnow() - CURRENT_FOR,
        )
        .order_by(Selection.created_at.desc(), Selection.id.desc())
        .limit(1)
    )
    return db.session.scalar(query) or create_selection(user, kind=kind)


def selection_for(user, token: str | None) -> Selection:
    """Return the user's selection with this token; 404 if unknown or someone else's."""
    selection = None
    if token:
        selection = db.session.scalar(select(Selection).where(Selection.token == token[:64]))
    if selection is None or selection.user_id != user.id:
        abort(404)
    return selection


def add_items(selection: Selection, item_ids: Iterable[int]) -> None:
    """Add these people (absences, internships) to the selection; those already in it stay once."""
    members = members_of(selection)
    wanted = {int(item_id) for item_id in item_ids}
    if not wanted:
        return
    already = set(
        db.session.scalars(
            select(members.item_id()).where(
                members.table.selection_id == selection.id, members.item_id().in_(wanted)
            )
        )
    )
    known = set(
        db.session.scalars(select(members.model.id).where(members.model.id.in_(wanted - already)))
    )
    if known:
        db.session.execute(
            insert(members.table),
            [{"selection_id": selection.id, members.column: i} for i in sorted(known)],
        )
    db.session.flush()


def remove_items(selection: Selection, item_ids: Iterable[int]) -> None:
    """Take these items out of the selection."""
    members = members_of(selection)
    unwanted = {int(item_id) for item_id in item_ids}
    if unwanted:
        db.session.execute(
            delete(members.table).where(
                members.table.selection_id == selection.id, members.item_id().in_(unwanted)
            )
        )
        db.session.flush()


def set_page(selection: Selection, shown: Iterable[int], checked: Iterable[int]) -> None:
    """Make the items ``shown`` on a page selected exactly when they are ``checked``."""
    shown, checked = set(shown), set(checked)
    checked &= shown
    add_items(selection, checked)
    remove_items(selection, shown - checked)


def add_matching(selection: Selection, matching_ids: Select) -> None:
    """Add every item of ``matching_ids`` (a list's filter as a SELECT of ids), in one INSERT."""
    members = members_of(selection)
    ids = matching_ids.subquery()
    id_column = ids.c[0]
    already = exists().where(
        members.table.selection_id == selection.id, members.item_id() == id_column
    )
    rows = select(literal(selection.id), id_column).where(~already)
    db.session.execute(insert(members.table).from_select(["selection_id", members.column], rows))
    db.session.flush()
    log.info(
        "selection %s: added every %s matching its list's filter", selection.id, selection.kind
    )


def clear(selection: Selection) -> None:
    """Empty the selection."""
    members = members_of(selection)
    db.session.execute(delete(members.table).where(members.table.selection_id == selection.id))
    db.session.flush()


def selected_count(selection: Selection) -> int:
    """Return how many items the selection holds."""
    members = members_of(selection)
    query = select(func.count()).where(members.table.selection_id == selection.id)
    return db.session.scalar(query)


def selected_among(selection: Selection, item_ids: Iterable[int]) -> set[int]:
    """Return which of ``item_ids`` are in the selection."""
    ids = list(item_ids)
    if not ids:
        return set()
    members = members_of(selection)
    query = select(members.item_id()).where(
        members.table.selection_id == selection.id, members.item_id().in_(ids)
    )
    return set(db.session.scalars(query))


def selected_item_ids(selection: Selection) -> Select:
    """Return the SELECT of the ids of the selection's items."""
    members = members_of(selection)
    return select(members.item_id()).where(members.table.selection_id == selection.id)


def selected_people(selection: Selection) -> list[Person]:
    """Return the selected people by name; for absences or internships, their students."""
    members = members_of(selection)
    if members is PEOPLE:
        person_ids = selected_item_ids(selection)
    else:
        person_ids = select(members.model.person_id).where(
            members.model.id.in_(selected_item_ids(selection))
        )
    query = (
        select(Person)
        .where(Person.id.in_(person_ids))
        .order_by(Person.last_name_key, Person.first_name_key, Person.id)
    )
    return list(db.session.scalars(query))


def selected_absences(selection: Selection) -> list[Absence]:
    """Return the selected absences, by student then date (none unless it holds absences)."""
    if selection.kind != SelectionKind.ABSENCE:
        return []
    query = (
        select(Absence)
        .join(Person, Person.id == Absence.person_id)
        .where(Absence.id.in_(selected_item_ids(selection)))
        .order_by(
            Person.last_name_key, Person.first_name_key, Person.id, Absence.day, Absence.start_time
        )
    )
    return list(db.session.scalars(query))


def selected_internships(selection: Selection) -> list[Internship]:
    """Return the selected internships, by student then start (none unless it holds them)."""
    if selection.kind != SelectionKind.INTERNSHIP:
        return []
    query = (
        select(Internship)
        .join(Person, Person.id == Internship.person_id)
        .where(Internship.id.in_(selected_item_ids(selection)))
        .order_by(Person.last_name_key, Person.first_name_key, Person.id, Internship.start_date)
    )
    return list(db.session.scalars(query))
