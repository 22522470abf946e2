"""Who takes a row: the one conditional UPDATE that claims due e-mails with a lease, and gives back.

A row is sent only by whoever claimed it here. A worker process writes its id on the rows it
claims (``claimed_by``): when it stops (SIGTERM) it gives them back, and when its heartbeat stops
(``outbox.heartbeat``) another worker releases them. The lease lets the sweeper give a row claimed
by no worker (sent in a request) to another, and an e-mail whose delivery keeps being interrupted
is given up.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, case, or_, update

from hpmail.core.database import retry_while_locked
from hpmail.extensions import db
from hpmail.outbox.models import EmailRecipient, EmailState, OutboundEmail, RecipientState

log = logging.getLogger(__name__)

# (pid, id) of this worker process once its heartbeat row is written; keyed on the pid so that a
# forked worker process never claims under its parent's name.
_this_worker: tuple[int, str] | None = None


def this_worker() -> str | None:
    """Return the id of this worker process (its ``WorkerProcess`` row), or None outside one.

    None in a web request: rows sent there carry no worker, and only their lease guards them.
    """
    if _this_worker is not None and _this_worker[0] == os.getpid():
        return _this_worker[1]
    return None


def set_this_worker(worker_id: str | None) -> None:
    """Name the worker process the rows claimed from now on carry (None: no worker)."""
    global _this_worker
    _this_worker = (os.getpid(), worker_id) if worker_id else None


def require_returning() -> None:
    """Refuse to run on a SQLite too old for ``UPDATE … RETURNING`` (3.35, 2021)."""
    if db.session.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(f"hpmail needs SQLite 3.35 or later, not {sqlite3.sqlite_version}")


def due(now: datetime, queued_grace: timedelta | None = timedelta(0)):
    """Return the condition of rows a worker may take: due, queued for ``queued_grace``, or lost.

    ``queued_grace=None`` leaves the queued rows out.
    """
    conditions = [
        and_(OutboundEmail.state == EmailState.DEFERRED, OutboundEmail.next_attempt_at <= now),
        and_(OutboundEmail.state == EmailState.SENDING, OutboundEmail.lease_until < now),
    ]
    if queued_grace is not None:
        conditions.append(
            and_(
                OutboundEmail.state == EmailState.QUEUED,
                OutboundEmail.next_attempt_at <= now - queued_grace,
            )
        )
    return or_(*conditions)


def claim(email_ids: list[int], now: datetime) -> list[int]:
    """Take the due rows among ``email_ids`` with one conditional UPDATE and a lease; commit."""
    if not email_ids:
        return []
    require_returning()
    _give_up_interrupted(
        and_(
            OutboundEmail.id.in_(email_ids),
            OutboundEmail.state == EmailState.SENDING,
            OutboundEmail.lease_until < now,
        ),
        now,
    )
    lease = timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
    claimed = db.session.scalars(
        update(OutboundEmail)
        .where(OutboundEmail.id.in_(email_ids), due(now))
        .values(
            state=EmailState.SENDING,
            lease_until=now + lease,
            attempts=OutboundEmail.attempts + 1,
            claimed_by=this_worker(),
        )
        .returning(OutboundEmail.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(claimed)


def release(condition, now: datetime, *, give_up: bool) -> list[int]:
    """Give back the claimed rows that match ``condition``; return their ids (flushed, to enqueue).

    Each is queued again as due as it was (its due time is past), with no lease and no worker,
    and the attempt its claim counted is not counted: it was not tried, or its outcome is unknown.
    With ``give_up`` (rows of a dead worker), an e-mail whose time for retries is over is failed
    instead: an e-mail that kills its worker is not taken again for ever.
    """
    sending = and_(OutboundEmail.state == EmailState.SENDING, condition)
    if give_up:
        _give_up_interrupted(sending, now)
    return list(
        db.session.scalars(
            update(OutboundEmail)
            .where(sending)
            .values(
                state=EmailState.QUEUED,
                lease_until=None,
                claimed_by=None,
                attempts=case((OutboundEmail.attempts > 0, OutboundEmail.attempts - 1), else_=0),
            )
            .returning(OutboundEmail.id)
            .execution_options(synchronize_session=False)
        )
    )


def give_back(email_ids: list[int], now: datetime) -> list[int]:
    """Give back the rows among ``email_ids`` that this worker still holds; commit; return them.

    For a worker asked to stop: another worker takes them at once, not when the lease ends.
    """

    def work() -> list[int]:
        held = OutboundEmail.claimed_by.is_not_distinct_from(this_worker())
        released = release(and_(OutboundEmail.id.in_(email_ids), held), now, give_up=False)
        db.session.commit()
        return released

    if not email_ids:
        return []
    return retry_while_locked(work, attempts=5, what="giving e-mails back")


def _give_up_interrupted(condition, now: datetime) -> None:
    """Fail the claimed rows matching ``condition`` whose delivery was interrupted past the time.

    A worker that dies on an e-mail (killed, out of memory) records nothing: its rows are released
    (its heartbeat stopped) or its lease ends, and the row is handed out again. Only a recorded
    failure applies the give-up time, so without this an e-mail that kills its worker would be
    taken again for ever.
    """
    give_up = timedelta(seconds=current_app.config["DELIVERY_GIVE_UP_AFTER_SECONDS"])
    reason = _("The delivery was interrupted and the time for retries is over: not sent.")
    failed = db.session.scalars(
        update(OutboundEmail)
        .where(condition, OutboundEmail.created_at <= now - give_up)
        .values(
            state=EmailState.FAILED,
            lease_until=None,
            claimed_by=None,
            next_attempt_at=now,
            last_error=reason,
        )
        .returning(OutboundEmail.id)
        .execution_options(synchronize_session=False)
    ).all()
    if failed:
        log.warning("given up %s e-mails whose delivery was interrupted", len(failed))
        db.session.execute(
            update(EmailRecipient)
            .where(
                EmailRecipient.email_id.in_(failed),
                EmailRecipient.state == RecipientState.PENDING,
            )
            .values(state=RecipientState.REFUSED, reply=reason)
            .execution_options(synchronize_session=False)
        )
