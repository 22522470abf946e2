"""Addresses whose mailbox a server says does not exist: marked, shown, and cleared.

The delivery engine hands each such refusal to ``mark_refused`` (registered by ``create_app``);
the person is then unreachable (``reach``) until the address changes (an import, ``kept_mark``)
or an administrator says it is valid again (``clear_refusal``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import bindparam, func, update

from hpmail.directory.emails import email_status_of
from hpmail.directory.models import EmailStatus, Person
from hpmail.extensions import db

log = logging.getLogger(__name__)


class MailboxRefusal(Protocol):
    """What the engine says of a refusal (``outbox.api.UnknownMailbox``)."""

    person_id: int
    address: str
    refused_at: datetime
    reply: str


_people = Person.__table__
# Only while the person's address is still the refused one (case aside): an address changed
# since the e-mail was written is not marked. A refused address refused again gets the new words.
MARK_REFUSED = (
    update(_people)
    .where(_people.c.id == bindparam("p_id"))
    .where(func.lower(_people.c.email) == func.lower(bindparam("p_address")))
    .where(_people.c.email_status.in_([EmailStatus.VALID, EmailStatus.REFUSED]))
    .values(
        email_status=EmailStatus.REFUSED,
        email_refused_at=bindparam("p_at"),
        email_refused_reply=bindparam("p_reply"),
    )
)


def mark_refused(refusals: Iterable[MailboxRefusal]) -> None:
    """Mark each refused person's address « refused by the server », with the date and words.

    Runs inside the engine's recording transaction and never commits. The rows are updated in
    the order of their ids, so that two workers marking the same people cannot deadlock.
    """
    rows = [
        {"p_id": r.person_id, "p_address": r.address, "p_at": r.refused_at, "p_reply": r.reply}
        for r in sorted(refusals, key=lambda r: (r.person_id, r.refused_at))
    ]
    if rows:
        db.session.connection().execute(MARK_REFUSED, rows)
        log.info("addresses refused by their server: people %s", [r["p_id"] for r in rows])


def kept_mark(status: str, address: str | None, new_address: str | None) -> bool:
    """Tell whether an address marked refused stays so when the directory gives ``new_address``.

    The same address (case aside) keeps the mark: its mailbox still does not exist.
    """
    return status == EmailStatus.REFUSED and (address or "").lower() == (new_address or "").lower()


def clear_refusal(person: Person, actor: str) -> bool:
    """Take the mark off ``person``'s address (its status computed again); False if unmarked."""
    if person.email_status != EmailStatus.REFUSED:
        return False
    person.email_status = email_status_of(person.email)
    person.email_refused_at = None
    person.email_refused_reply = None
    log.info("%s: address of person %s said valid again (was refused)", actor, person.id)
    db.session.flush()
    return True


def refusal_note(person: Person) -> str:
    """Return when the server refused ``person``'s address and its words (translated)."""
    if person.email_refused_at is None:
        return person.email_refused_reply or ""
    return _(
        "on %(date)s: %(reply)s",
        date=format_date(person.email_refused_at, "d MMMM y"),
        reply=person.email_refused_reply or "",
    )
