"""Server-side selections: the people a user picked in a list, behind an unguessable token."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import timedelta

from flask import abort
from sqlalchemy import delete, exists, func, insert, literal, select

from hpmail.core.time import utcnow
from hpmail.directory.models import Person, Selection, SelectionMember
from hpmail.directory.people import PeopleFilter, matching_ids
from hpmail.extensions import db

log = logging.getLogger(__name__)

# A list reuses the user's latest selection of its kind while it is this recent.
CURRENT_FOR = timedelta(hours=12)
# Older selections are deleted when the user starts a new one.
KEEP_FOR = timedelta(days=7)


def create_selection(user, person_ids: Iterable[int] = (), kind: str | None = None) -> Selection:
    """Create a selection owned by ``user`` holding ``person_ids``."""
    db.session.execute(
        delete(Selection).where(
            Selection.user_id == user.id, Selection.created_at < utcnow() - KEEP_FOR
        )
    )
    selection = Selection(token=secrets.token_urlsafe(24), user_id=user.id, kind=kind)
    db.session.add(selection)
    db.session.flush()
    add_people(selection, person_ids)
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


def add_people(selection: Selection, person_ids: Iterable[int]) -> None:
    """Add these people to the selection (those already in it stay once)."""
    wanted = {int(pid) for pid in person_ids}
    if not wanted:
        return
    already = set(
        db.session.scalars(
            select(SelectionMember.person_id).where(
                SelectionMember.selection_id == selection.id,
                SelectionMember.person_id.in_(wanted),
            )
        )
    )
    known = set(db.session.scalars(select(Person.id).where(Person.id.in_(wanted - already))))
    if known:
        db.session.execute(
            insert(SelectionMember),
            [{"selection_id": selection.id, "person_id": pid} for pid in sorted(known)],
        )
    db.session.flush()


def remove_people(selection: Selection, person_ids: Iterable[int]) -> None:
    """Take these people out of the selection."""
    unwanted = {int(pid) for pid in person_ids}
    if unwanted:
        db.session.execute(
            delete(SelectionMember).where(
                SelectionMember.selection_id == selection.id,
                SelectionMember.person_id.in_(unwanted),
            )
        )
        db.session.flush()


def set_page(selection: Selection, shown: Iterable[int], checked: Iterable[int]) -> None:
    """Make the people ``shown`` on a page selected exactly when they are ``checked``."""
    shown, checked = set(shown), set(checked)
    checked &= shown
    add_people(selection, checked)
    remove_people(selection, shown - checked)


def add_matching(selection: Selection, flt: PeopleFilter) -> None:
    """Add every person matching the filter, in one INSERT … SELECT."""
    ids = matching_ids(flt).subquery()
    already = exists().where(
        SelectionMember.selection_id == selection.id, SelectionMember.person_id == ids.c.id
    )
    rows = select(literal(selection.id), ids.c.id).where(~already)
    db.session.execute(insert(SelectionMember).from_select(["selection_id", "person_id"], rows))
    db.session.flush()
    log.info("selection %s: added every %s matching %r", selection.id, flt.kind, flt.q)


def clear(selection: Selection) -> None:
    """Empty the selection."""
    db.session.execute(delete(SelectionMember).where(SelectionMember.selection_id == selection.id))
    db.session.flush()


def selected_count(selection: Selection) -> int:
    """Return how many people the selection holds."""
    query = select(func.count()).where(SelectionMember.selection_id == selection.id)
    return db.session.scalar(query)


def selected_among(selection: Selection, person_ids: Iterable[int]) -> set[int]:
    """Return which of ``person_ids`` are in the selection."""
    ids = list(person_ids)
    if not ids:
        return set()
    query = select(SelectionMember.person_id).where(
        SelectionMember.selection_id == selection.id, SelectionMember.person_id.in_(ids)
    )
    return set(db.session.scalars(query))


def selected_people(selection: Selection) -> list[Person]:
    """Return the selected people, by name."""
    query = (
        select(Person)
        .join(SelectionMember, SelectionMember.person_id == Person.id)
        .where(SelectionMember.selection_id == selection.id)
        .order_by(Person.last_name_key, Person.first_name_key, Person.id)
    )
    return list(db.session.scalars(query))
