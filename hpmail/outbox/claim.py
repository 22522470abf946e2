"""Who takes a row: the one conditional UPDATE that claims due e-mails with a lease.

A row is sent only by whoever claimed it here; the lease lets the sweeper give the row to another
worker if this one dies, and an e-mail whose delivery keeps being interrupted is given up.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, or_, update

from hpmail.extensions import db
from hpmail.outbox.models import EmailRecipient, EmailState, OutboundEmail, RecipientState

log = logging.getLogger(__name__)


def require_returning() -> None:
    """Refuse to run on a SQLite too old for ``UPDATE … RETURNING`` (3.35, 2021)."""
    if db.session.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(f"hpmail needs SQLite 3.35 or later, not {sqlite3.sqlite_version}")


def due(now: datetime, queued_grace: timedelta = timedelta(0)):
    """Return the condition of rows a worker may take: due, queued for ``queued_grace``, or lost."""
    return or_(
        and_(OutboundEmail.state == EmailState.DEFERRED, OutboundEmail.next_attempt_at <= now),
        and_(
            OutboundEmail.state == EmailState.QUEUED,
            OutboundEmail.next_attempt_at <= now - queued_grace,
        ),
        and_(OutboundEmail.state == EmailState.SENDING, OutboundEmail.lease_until < now),
    )


def claim(email_ids: list[int], now: datetime) -> list[int]:
    """Take the due rows among ``email_ids`` with one conditional UPDATE and a lease; commit."""
    if not email_ids:
        return []
    require_returning()
    _give_up_interrupted(email_ids, now)
    lease = timedelta(seconds=current_app.config["DELIVERY_LEASE_SECONDS"])
    claimed = db.session.scalars(
        update(OutboundEmail)
        .where(OutboundEmail.id.in_(email_ids), due(now))
        .values(
            state=EmailState.SENDING, lease_until=now + lease, attempts=OutboundEmail.attempts + 1
        )
        .returning(OutboundEmail.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(claimed)


def _give_up_interrupted(email_ids: list[int], now: datetime) -> None:
    """Fail the rows among ``email_ids`` whose delivery was interrupted after the retry time.

    A worker that dies on an e-mail (killed, out of memory) records nothing: its lease ends and
    the sweeper hands the row out again. Only a recorded failure applies the give-up time, so
    without this an e-mail that kills its worker would be taken again for ever.
    """
    give_up = timedelta(seconds=current_app.config["DELIVERY_GIVE_UP_AFTER_SECONDS"])
    reason = _("The delivery was interrupted and the time for retries is over: not sent.")
    failed = db.session.scalars(
        update(OutboundEmail)
        .where(
            OutboundEmail.id.in_(email_ids),
            OutboundEmail.state == EmailState.SENDING,
            OutboundEmail.lease_until < now,
            OutboundEmail.created_at <= now - give_up,
        )
        .values(state=EmailState.FAILED, lease_until=None, next_attempt_at=now, last_error=reason)
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
