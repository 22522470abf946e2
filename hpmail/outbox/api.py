"""The engine's public contract: queue a mailing's e-mails as rows, then dispatch them.

``queue_mailing`` (``outbox.queue``) validates and writes rows (flush, no commit), each e-mail
with its own files if it has any; ``queue_more_emails`` adds e-mails to a mailing written in
chunks. The caller commits, then calls ``dispatch`` (or ``dispatch_emails`` with the new ids):
delegated, a worker task is enqueued; not delegated, the e-mails go out at once. The admin's
actions (``retry_now``, ``cancel``) and the sender checks are here too. Other packages import
the engine from this module (and its ``models``, ``attachments``, ``policy`` and ``settings``),
never from the modules that deliver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from hpmail.core.database import retry_while_locked
from hpmail.extensions import db
from hpmail.outbox import clock, send
from hpmail.outbox.mime import OWN_BODY, OWN_BODY_MARK  # an e-mail's own content in the body
from hpmail.outbox.models import (
    EmailRecipient,
    EmailState,
    Mailing,
    OutboundEmail,
    RecipientState,
    Transport,
)
from hpmail.outbox.policy import InvalidHeader
from hpmail.outbox.queue import (
    DOCUMENT_PREVIEW,
    Address,
    AttachmentSpec,
    EmailSpec,
    NoTransport,
    OutboxBusy,
    Sender,
    queue_mailing,
    queue_more_emails,
    resend_failed_recipients,
)
from hpmail.outbox.record import MAILBOX_LISTENERS, Delivery, UnknownMailbox
from hpmail.outbox.send import mailing_messages  # the archive rebuilds headers with it
from hpmail.outbox.settings import server_settings

log = logging.getLogger(__name__)

__all__ = [
    "DOCUMENT_PREVIEW",
    "OWN_BODY",
    "OWN_BODY_MARK",
    "Address",
    "AttachmentSpec",
    "Delivery",
    "EmailSpec",
    "InvalidHeader",
    "NoTransport",
    "OutboxBusy",
    "Sender",
    "UnknownMailbox",
    "cancel",
    "counts_by_state",
    "dispatch",
    "dispatch_emails",
    "mailing_messages",
    "queue_and_dispatch",
    "queue_mailing",
    "queue_more_emails",
    "register_mailbox_listener",
    "register_sender_check",
    "resend_failed_recipients",
    "retry_now",
    "wake_worker",
]


def register_sender_check(app: Flask, check: Callable[[Mailing], str | None]) -> None:
    """Make ``app``'s deliveries call ``check(mailing)`` before sending; a reason fails the e-mail.

    Delivery cannot import the layers above it that know who may send as which address: they
    hand their rule in, from ``create_app``, so that the worker applies it however it started.
    """
    checks = app.extensions.setdefault(send.SENDER_CHECKS, [])
    if check not in checks:
        checks.append(check)


def register_mailbox_listener(app: Flask, listener: Callable[[list[UnknownMailbox]], None]) -> None:
    """Make ``app``'s deliveries call ``listener(refusals)`` when a server says no such mailbox.

    The engine stays generic: it knows the person a recipient was written for, not what the
    directory makes of a refusal, so ``create_app`` hands that rule in, as for the sender
    checks. The listener runs in the transaction that records the refusals
    (``record.Recorder._tell_listeners``).
    """
    listeners = app.extensions.setdefault(MAILBOX_LISTENERS, [])
    if listener not in listeners:
        listeners.append(listener)


def dispatch(mailing: Mailing) -> Delivery:
    """Send the queued e-mails of a committed mailing: enqueue them, or deliver them now.

    Delegated: one worker task per batch, returning at once. Not delegated: delivered in this
    request with the author's transport and timeout, and each outcome counted in the result.
    """
    ids = list(
        db.session.scalars(
            select(OutboundEmail.id)
            .where(OutboundEmail.mailing_id == mailing.id, OutboundEmail.state == EmailState.QUEUED)
            .order_by(OutboundEmail.id)
        )
    )
    return dispatch_emails(ids)


def dispatch_emails(email_ids: list[int]) -> Delivery:
    """Send committed e-mails by id, delegated or in the request (see ``dispatch``)."""
    from hpmail.outbox.tasks import enqueue_delivery

    if not email_ids:
        return Delivery()
    try:
        if server_settings().delegate:
            db.session.commit()  # the settings row may have just been created
            enqueue_delivery(email_ids)
            return Delivery(queued=len(email_ids))
        delivery = send.deliver(email_ids, final=True)
    except OperationalError as error:
        # The rows are committed: the worker's sweeper sends them once the database is free.
        db.session.rollback()
        log.warning("database busy while dispatching %s e-mails: %s", len(email_ids), error)
        return Delivery(
            queued=len(email_ids),
            errors=[_("The server is busy: the e-mails are kept and will be sent shortly.")],
        )
    return delivery


def wake_worker(email_ids: list[int]) -> None:
    """Tell the worker to look at these committed rows now (the sweeper is the net)."""
    if email_ids:
        from hpmail.outbox.tasks import enqueue_delivery

        enqueue_delivery(email_ids)


def queue_and_dispatch(**mailing) -> tuple[Mailing, Delivery]:
    """Queue a mailing, commit it (retrying while the database is locked), then dispatch it.

    Raise ``OutboxBusy`` with a French message when the database stayed locked: then nothing
    was written and the user can simply try again.
    """

    def queue_and_commit() -> Mailing:
        queued = queue_mailing(**mailing)
        db.session.commit()
        return queued

    try:
        queued = retry_while_locked(
            queue_and_commit,
            attempts=current_app.config["OUTBOX_COMMIT_ATTEMPTS"],
            what="queueing a mailing",
            busy=(OperationalError, OutboxBusy),
        )
    except OperationalError as error:
        raise OutboxBusy(
            _("The server is busy: nothing was sent. Please try again in a moment.")
        ) from error
    return queued, dispatch(queued)


def counts_by_state() -> dict[str, int]:
    """Return how many e-mails the outbox holds in each state (every state present)."""
    counts = dict.fromkeys(EmailState, 0)
    for state, count in db.session.execute(
        select(OutboundEmail.state, func.count()).group_by(OutboundEmail.state)
    ):
        counts[EmailState(state)] = count
    return {str(state): count for state, count in counts.items()}


def retry_now(email_ids: Iterable[int]) -> list[int]:
    """Make deferred, queued or failed e-mails due now (flushed); enqueue the ids after commit.

    The recipients a failed e-mail did not reach are tried again.
    """
    ids = list(email_ids)
    if not ids:
        return []
    failed = list(
        db.session.scalars(
            select(OutboundEmail.id).where(
                OutboundEmail.id.in_(ids), OutboundEmail.state == EmailState.FAILED
            )
        )
    )
    revived = db.session.scalars(
        update(OutboundEmail)
        .where(
            OutboundEmail.id.in_(ids),
            OutboundEmail.state.in_((EmailState.QUEUED, EmailState.DEFERRED, EmailState.FAILED)),
        )
        .values(state=EmailState.DEFERRED, next_attempt_at=clock.now(), waits_for_transport=False)
        .returning(OutboundEmail.id)
        .execution_options(synchronize_session=False)
    ).all()
    if failed:
        db.session.execute(
            update(EmailRecipient)
            .where(
                EmailRecipient.email_id.in_(failed),
                EmailRecipient.state == RecipientState.REFUSED,
            )
            .values(state=RecipientState.PENDING, code=None, reply=None)
            .execution_options(synchronize_session=False)
        )
    log.info("retry now: %s e-mails", len(revived))
    return sorted(revived)


def cancel(email_ids: Iterable[int]) -> int:
    """Cancel e-mails not yet sent nor being sent (flushed); return how many were cancelled."""
    ids = list(email_ids)
    if not ids:
        return 0
    result = db.session.execute(
        update(OutboundEmail)
        .where(
            OutboundEmail.id.in_(ids),
            OutboundEmail.state.in_((EmailState.QUEUED, EmailState.DEFERRED, EmailState.FAILED)),
        )
        .values(state=EmailState.CANCELLED, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    log.info("cancelled %s e-mails", result.rowcount)
    return result.rowcount


@dataclass(frozen=True)
class FailingServer:
    """A transport whose SMTP server fails (``outbox.health``), as the outbox page shows it."""

    transport_id: int
    host: str
    port: int
    failing_since: datetime
    last_failure: str
    # seconds until a worker probes it again (0: due, a worker takes it within seconds)
    next_probe_in: int
    waiting: int  # e-mails waiting for it


def failing_servers() -> list[FailingServer]:
    """Return the transports whose server is failing, with when they are probed next."""
    now = clock.now()
    waiting = dict(
        db.session.execute(
            select(Mailing.transport_id, func.count())
            .join(OutboundEmail, OutboundEmail.mailing_id == Mailing.id)
            .where(
                OutboundEmail.state == EmailState.DEFERRED,
                OutboundEmail.waits_for_transport.is_(True),
            )
            .group_by(Mailing.transport_id)
        ).all()
    )
    transports = db.session.scalars(
        select(Transport).where(Transport.failing_since.is_not(None)).order_by(Transport.id)
    )
    return [
        FailingServer(
            transport.id,
            transport.host,
            transport.port,
            transport.failing_since,
            transport.last_failure or "",
            max(0, round(((transport.next_probe_at or now) - now).total_seconds())),
            waiting.get(transport.id, 0),
        )
        for transport in transports
    ]
