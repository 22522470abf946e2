"""The outbox: queue a mailing's e-mails as rows, then dispatch them (the delivery contract).

``queue_mailing`` validates and writes rows (flush, no commit); the caller commits, then calls
``dispatch``: delegated, a worker task is enqueued; not delegated, the e-mails go out at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import OperationalError

from hpmail.core.text import is_content_type, refuse_unsafe
from hpmail.extensions import db
from hpmail.outbox import clock, send
from hpmail.outbox.mime import new_message_id
from hpmail.outbox.models import (
    Attachment,
    EmailRecipient,
    EmailState,
    Mailing,
    MailingAttachment,
    MailingKind,
    OutboundEmail,
    RecipientState,
    Transport,
)
from hpmail.outbox.policy import (
    ADDRESS,
    NAME,
    InvalidHeader,
    checked_address,
    domain_of,
    header_address,
)
from hpmail.outbox.send import mailing_messages  # the archive rebuilds headers with it
from hpmail.outbox.settings import server_settings, transport_for

log = logging.getLogger(__name__)

__all__ = [
    "Address",
    "AttachmentSpec",
    "DispatchResult",
    "EmailSpec",
    "InvalidHeader",
    "NoTransport",
    "OutboxBusy",
    "Sender",
    "cancel",
    "counts_by_state",
    "dispatch",
    "dispatch_emails",
    "mailing_messages",
    "queue_and_dispatch",
    "queue_mailing",
    "register_sender_check",
    "resend_failed_recipients",
    "retry_now",
    "wake_worker",
]


@dataclass(frozen=True)
class Address:
    """A recipient: address, display name, and the directory person it came from."""

    address: str
    name: str = ""
    person_id: int | None = None


@dataclass(frozen=True)
class EmailSpec:
    """One e-mail of a mailing: its To, Cc and Bcc recipients."""

    to: Sequence[Address] = ()
    cc: Sequence[Address] = ()
    bcc: Sequence[Address] = ()


@dataclass(frozen=True)
class Sender:
    """Who sends: the account's address and name, the user's reply-to, the account id."""

    address: str
    name: str = ""
    reply_to: str | None = None
    account_id: int | None = None


@dataclass(frozen=True)
class AttachmentSpec:
    """A stored attachment as a mailing carries it; a Content-ID makes it an inline image."""

    attachment: Attachment
    filename: str
    content_id: str | None = None
    # The type this use of the file is sent with (the stored file's type when empty).
    content_type: str = ""


@dataclass
class DispatchResult:
    """What ``dispatch`` did: e-mails queued for the worker, or sent/failed in the request."""

    queued: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class NoTransport(ValueError):
    """No SMTP server is configured for this sender."""


class OutboxBusy(RuntimeError):
    """The database stayed locked: nothing was written, the user may try again."""


def register_sender_check(app: Flask, check: Callable[[Mailing], str | None]) -> None:
    """Make ``app``'s deliveries call ``check(mailing)`` before sending; a reason fails the e-mail.

    Delivery cannot import the layers above it that know who may send as which address: they
    hand their rule in, from ``create_app``, so that the worker applies it however it started.
    """
    checks = app.extensions.setdefault(send.SENDER_CHECKS, [])
    if check not in checks:
        checks.append(check)


def _check_length(value: str | None, limit: int, what: str) -> None:
    if value and len(value) > limit:
        raise InvalidHeader(_("“%(what)s”: %(limit)s characters at most.", what=what, limit=limit))


def _checked_recipient(recipient: Address) -> Address:
    _check_length(recipient.address, 254, ADDRESS)
    _check_length(recipient.name, 200, NAME)
    address = checked_address(recipient.address, recipient.name)
    return Address(address, recipient.name or "", recipient.person_id)


def message_id_domain(sender_address: str) -> str:
    """Return the domain of Message-IDs: MESSAGE_ID_DOMAIN, else the server's sender domain."""
    configured = current_app.config.get("MESSAGE_ID_DOMAIN")
    if configured:
        return configured
    settings = server_settings()
    return domain_of(settings.sender_address or sender_address) or "localhost"


def queue_mailing(
    *,
    author_id: int | None,
    sender: Sender,
    subject: str,
    text_body: str,
    html_body: str | None = None,
    emails: Iterable[EmailSpec],
    kind: str = MailingKind.EMAIL,
    attachments: Iterable[AttachmentSpec] = (),
    hide_recipients: bool = False,
    transport: Transport | None = None,
) -> Mailing:
    """Validate a mailing and add it with its e-mails to the outbox (flushed, not committed).

    Raise ``InvalidHeader`` for a line break in a header value or a malformed address,
    ``NoTransport`` when no SMTP server is configured for the author, and ``OutboxBusy`` (after
    rolling the session back) when the database stayed locked: show its message, nothing is kept.
    """
    if kind not in set(MailingKind):
        raise ValueError(f"unknown mailing kind {kind!r}")
    refuse_unsafe(subject, _("Subject"))
    _check_length(subject, 998, _("Subject"))
    _check_length(sender.name, 200, _("Name"))
    header_address(sender.address, sender.name)
    if sender.reply_to:
        header_address(sender.reply_to)
    attachments = list(attachments)
    for item in attachments:
        refuse_unsafe(item.filename, _("File name"))
        refuse_unsafe(item.content_id, _("File name"))
        _check_length(item.filename, 255, _("File name"))
        if not is_content_type(item.content_type or item.attachment.content_type):
            raise InvalidHeader(
                _("Invalid file type: %(name)s.", name=item.filename),
            )
    specs = [
        (
            [_checked_recipient(r) for r in spec.to],
            [_checked_recipient(r) for r in spec.cc],
            [_checked_recipient(r) for r in spec.bcc],
        )
        for spec in emails
    ]
    specs = [spec for spec in specs if any(spec)]
    if not specs:
        raise InvalidHeader(_("The e-mail has no recipient."))
    try:
        transport = transport or transport_for(author_id, kind)
        if transport is None:
            raise NoTransport(
                _("No SMTP server is configured: set one in the sending settings before sending.")
            )

        now = clock.now()
        mailing = Mailing(
            author_id=author_id,
            account_id=sender.account_id,
            kind=kind,
            subject=subject,
            text_body=text_body or "",
            html_body=html_body or None,
            sender_name=sender.name or "",
            sender_address=sender.address.strip(),
            reply_to=(sender.reply_to or "").strip() or None,
            hide_recipients=hide_recipients,
            transport_id=transport.id,
            created_at=now,
        )
        db.session.add(mailing)
        db.session.flush()
        for item in attachments:
            db.session.add(
                MailingAttachment(
                    mailing_id=mailing.id,
                    attachment_id=item.attachment.id,
                    filename=item.filename,
                    content_type=item.content_type or item.attachment.content_type,
                    content_id=(item.content_id or "").strip("<>") or None,
                )
            )
        domain = message_id_domain(sender.address)
        email_ids = _insert_emails(mailing.id, domain, len(specs), now)
        _insert_recipients(
            (email_id, field_name, recipient)
            for email_id, spec in zip(email_ids, specs, strict=True)
            for field_name, recipients in zip(("to", "cc", "bcc"), spec, strict=True)
            for recipient in recipients
        )
    except OperationalError as error:
        # The database stayed locked past the busy timeout: nothing of this mailing is kept.
        db.session.rollback()
        log.warning("database busy while queueing a mailing: %s", error)
        raise OutboxBusy(
            _("The server is busy: nothing was sent. Please try again in a moment.")
        ) from error
    log.info(
        "user %s queued mailing %s (%s, %s e-mails) from %s",
        author_id,
        mailing.id,
        kind,
        len(email_ids),
        sender.address,
    )
    return mailing


def _insert_emails(mailing_id: int, domain: str, count: int, now) -> list[int]:
    rows = [
        {
            "mailing_id": mailing_id,
            "message_id": new_message_id(domain),
            "state": EmailState.QUEUED,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for _index in range(count)
    ]
    table = OutboundEmail.__table__  # Core: thousands of rows without ORM bookkeeping
    return list(
        db.session.scalars(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            rows,
        )
    )


def _insert_recipients(rows) -> None:
    """Add a pending recipient for each ``(email_id, field, address)``: Core, like the e-mails."""
    db.session.execute(
        insert(EmailRecipient.__table__),
        [
            {
                "email_id": email_id,
                "field": field_name,
                "name": recipient.name,
                "address": recipient.address,
                "person_id": recipient.person_id,
                "state": RecipientState.PENDING,
            }
            for email_id, field_name, recipient in rows
        ],
    )


def dispatch(mailing: Mailing) -> DispatchResult:
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


def dispatch_emails(email_ids: list[int]) -> DispatchResult:
    """Send committed e-mails by id, delegated or in the request (see ``dispatch``)."""
    from hpmail.outbox.tasks import enqueue_delivery

    if not email_ids:
        return DispatchResult()
    try:
        if server_settings().delegate:
            db.session.commit()  # the settings row may have just been created
            enqueue_delivery(email_ids)
            return DispatchResult(queued=len(email_ids))
        delivery = send.deliver(email_ids, final=True)
    except OperationalError as error:
        # The rows are committed: the worker's sweeper sends them once the database is free.
        db.session.rollback()
        log.warning("database busy while dispatching %s e-mails: %s", len(email_ids), error)
        return DispatchResult(
            queued=len(email_ids),
            errors=[_("The server is busy: the e-mails are kept and will be sent shortly.")],
        )
    return DispatchResult(
        sent=delivery.sent,
        deferred=delivery.deferred,
        failed=delivery.failed,
        errors=delivery.errors,
    )


def wake_worker(email_ids: list[int]) -> None:
    """Tell the worker to look at these committed rows now (the sweeper is the net)."""
    if email_ids:
        from hpmail.outbox.tasks import enqueue_delivery

        enqueue_delivery(email_ids)


def queue_and_dispatch(**mailing) -> tuple[Mailing, DispatchResult]:
    """Queue a mailing, commit it (retrying while the database is locked), then dispatch it.

    Raise ``OutboxBusy`` with a French message when the database stayed locked: then nothing
    was written and the user can simply try again.
    """
    attempts = current_app.config["OUTBOX_COMMIT_ATTEMPTS"]
    for attempt in range(attempts):
        try:
            queued = queue_mailing(**mailing)
            db.session.commit()
            break
        except (OperationalError, OutboxBusy) as error:
            db.session.rollback()
            log.warning("database busy while queueing a mailing (try %s): %s", attempt + 1, error)
            if attempt == attempts - 1:
                if isinstance(error, OutboxBusy):
                    raise
                raise OutboxBusy(
                    _("The server is busy: nothing was sent. Please try again in a moment.")
                ) from error
            time.sleep(0.2 * (attempt + 1))
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
        .values(state=EmailState.DEFERRED, next_attempt_at=clock.now())
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


def resend_failed_recipients(target: Mailing | OutboundEmail) -> list[int]:
    """Queue new e-mails for the refused recipients and those of failed e-mails; return their ids.

    The new e-mails belong to the same mailing, with new Message-IDs (flushed; commit, then
    call ``dispatch_emails`` with the ids).
    """
    if isinstance(target, Mailing):
        mailing, of_target = target, OutboundEmail.mailing_id == target.id
    else:
        mailing, of_target = target.mailing, OutboundEmail.id == target.id
    # One query for the recipients of all the e-mails; one insert of e-mails, one of recipients.
    rows = db.session.execute(
        select(OutboundEmail.id, OutboundEmail.state, EmailRecipient)
        .join(EmailRecipient, EmailRecipient.email_id == OutboundEmail.id)
        .where(of_target, EmailRecipient.state != RecipientState.ACCEPTED)
        .order_by(OutboundEmail.id, EmailRecipient.id)
    ).all()
    again: dict[int, list[EmailRecipient]] = {}
    for email_id, state, recipient in rows:
        if state == EmailState.FAILED or recipient.state == RecipientState.REFUSED:
            again.setdefault(email_id, []).append(recipient)
    new_ids = []
    if again:
        domain = message_id_domain(mailing.sender_address)
        new_ids = _insert_emails(mailing.id, domain, len(again), clock.now())
        _insert_recipients(
            (new_id, recipient.field, recipient)
            for new_id, recipients in zip(new_ids, again.values(), strict=True)
            for recipient in recipients
        )
    log.info("mailing %s: %s e-mails queued again for failed recipients", mailing.id, len(new_ids))
    return new_ids
