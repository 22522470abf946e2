"""Queue a mailing: its e-mails written as rows (state ``queued``), with their recipients.

``queue_mailing`` checks every header value, address and file, then writes one ``Mailing``, its
``OutboundEmail`` rows (Message-ID fixed now), ``EmailRecipient`` rows and each e-mail's own files
(``EmailAttachment``), and flushes; the caller commits, then calls ``api.dispatch``.
``queue_more_emails`` adds e-mails to a mailing the same way (a mailing written in chunks);
``resend_failed_recipients`` queues new e-mails, with the files of those they replace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from hpmail.core.text import is_content_type, refuse_unsafe
from hpmail.extensions import db
from hpmail.outbox import clock
from hpmail.outbox.mime import new_message_id
from hpmail.outbox.models import (
    Attachment,
    EmailAttachment,
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
from hpmail.outbox.settings import server_settings, transport_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Address:
    """A recipient: address, display name, and the directory person it came from."""

    address: str
    name: str = ""
    person_id: int | None = None


@dataclass(frozen=True)
class Sender:
    """Who sends: the account's address and name, the user's reply-to, the account id."""

    address: str
    name: str = ""
    reply_to: str | None = None
    account_id: int | None = None


@dataclass(frozen=True)
class AttachmentSpec:
    """A stored attachment as a mailing or one e-mail carries it; a Content-ID makes it inline.

    An e-mail's own inline image keeps its Content-ID as a name: the mailing's HTML refers to it
    as ``cid:<name>`` and each message gets a Content-ID of its own (``mime.own_content_id``).
    """

    attachment: Attachment
    filename: str
    content_id: str | None = None
    # The type this use of the file is sent with (the stored file's type when empty).
    content_type: str = ""


@dataclass(frozen=True)
class EmailSpec:
    """One e-mail of a mailing: its To, Cc and Bcc recipients, and its own files."""

    to: Sequence[Address] = ()
    cc: Sequence[Address] = ()
    bcc: Sequence[Address] = ()
    attachments: Sequence[AttachmentSpec] = ()


# The name an e-mail's own document preview goes by in the mailing's HTML: ``cid:document-preview``.
DOCUMENT_PREVIEW = "document-preview"


class NoTransport(ValueError):
    """No SMTP server is configured for this sender."""


class OutboxBusy(RuntimeError):
    """The database stayed locked: nothing was written, the user may try again."""


def _check_length(value: str | None, limit: int, what: str) -> None:
    if value and len(value) > limit:
        raise InvalidHeader(_("“%(what)s”: %(limit)s characters at most.", what=what, limit=limit))


def _checked_recipient(recipient: Address) -> Address:
    _check_length(recipient.address, 254, ADDRESS)
    _check_length(recipient.name, 200, NAME)
    address = checked_address(recipient.address, recipient.name)
    return Address(address, recipient.name or "", recipient.person_id)


def _checked_files(items: Iterable[AttachmentSpec]) -> list[AttachmentSpec]:
    """Return the files with their header values checked (file name, Content-ID, type)."""
    items = list(items)
    for item in items:
        refuse_unsafe(item.filename, _("File name"))
        refuse_unsafe(item.content_id, _("File name"))
        _check_length(item.filename, 255, _("File name"))
        _check_length(item.content_id, 200, _("File name"))
        if not is_content_type(item.content_type or item.attachment.content_type):
            raise InvalidHeader(
                _("Invalid file type: %(name)s.", name=item.filename),
            )
    return items


@dataclass(frozen=True)
class _Checked:
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    files: list[AttachmentSpec]


# An e-mail's own inline image is named by a word: its Content-ID in each message starts with it.
INLINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _checked_own_files(items: Iterable[AttachmentSpec]) -> list[AttachmentSpec]:
    """Return an e-mail's own files checked like a mailing's, their inline names words."""
    items = _checked_files(items)
    for item in items:
        if item.content_id and not INLINE_NAME.fullmatch(item.content_id):
            raise InvalidHeader(
                _("Invalid inline image name: %(name)s.", name=item.content_id),
            )
    return items


def _checked_emails(emails: Iterable[EmailSpec]) -> list[_Checked]:
    """Return the e-mails that have a recipient, every address and file checked."""
    checked = [
        _Checked(
            [_checked_recipient(r) for r in spec.to],
            [_checked_recipient(r) for r in spec.cc],
            [_checked_recipient(r) for r in spec.bcc],
            _checked_own_files(spec.attachments),
        )
        for spec in emails
    ]
    return [email for email in checked if email.to or email.cc or email.bcc]


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
    attachments = _checked_files(attachments)
    specs = _checked_emails(emails)
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
                    content_id=_content_id(item),
                )
            )
        email_ids = _write_emails(mailing, specs, now)
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


def queue_more_emails(mailing: Mailing, emails: Iterable[EmailSpec]) -> list[int]:
    """Add e-mails to a queued mailing, checked like its first ones; return their ids (flushed).

    For a mailing written in chunks (documents rendered a few hundred at a time): commit, then
    ``dispatch_emails`` the ids. Raise ``InvalidHeader`` for a bad address or file, and
    ``OutboxBusy`` (after rolling the session back) when the database stayed locked.
    """
    specs = _checked_emails(emails)
    if not specs:
        return []
    try:
        email_ids = _write_emails(mailing, specs, clock.now())
    except OperationalError as error:
        db.session.rollback()
        log.warning("database busy while adding e-mails to mailing %s: %s", mailing.id, error)
        raise OutboxBusy(
            _("The server is busy: nothing was sent. Please try again in a moment.")
        ) from error
    log.info("mailing %s: %s more e-mails queued", mailing.id, len(email_ids))
    return email_ids


def _content_id(item: AttachmentSpec) -> str | None:
    return (item.content_id or "").strip("<>") or None


def _write_emails(mailing: Mailing, specs: list[_Checked], now) -> list[int]:
    """Insert the e-mails of ``mailing``, their recipients and their own files (Core, in bulk)."""
    domain = message_id_domain(mailing.sender_address)
    email_ids = insert_emails(mailing.id, domain, len(specs), now)
    insert_recipients(
        (email_id, field_name, recipient)
        for email_id, spec in zip(email_ids, specs, strict=True)
        for field_name, recipients in (("to", spec.to), ("cc", spec.cc), ("bcc", spec.bcc))
        for recipient in recipients
    )
    insert_email_files(
        {
            "email_id": email_id,
            "attachment_id": item.attachment.id,
            "filename": item.filename,
            "content_type": item.content_type or item.attachment.content_type,
            "content_id": _content_id(item),
        }
        for email_id, spec in zip(email_ids, specs, strict=True)
        for item in spec.files
    )
    return email_ids


def insert_email_files(rows: Iterable[dict]) -> None:
    """Add the rows of e-mails' own files (``EmailAttachment`` columns), in one statement."""
    rows = list(rows)
    if rows:
        db.session.execute(insert(EmailAttachment.__table__), rows)


def insert_emails(mailing_id: int, domain: str, count: int, now) -> list[int]:
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


def insert_recipients(rows) -> None:
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
        new_ids = insert_emails(mailing.id, domain, len(again), clock.now())
        insert_recipients(
            (new_id, recipient.field, recipient)
            for new_id, recipients in zip(new_ids, again.values(), strict=True)
            for recipient in recipients
        )
        # Each new e-mail carries the files of the one it replaces (a recipient's own document).
        new_id_of = dict(zip(again, new_ids, strict=True))
        insert_email_files(
            {
                "email_id": new_id_of[item.email_id],
                "attachment_id": item.attachment_id,
                "filename": item.filename,
                "content_type": item.content_type,
                "content_id": item.content_id,
            }
            for item in db.session.scalars(
                select(EmailAttachment)
                .where(EmailAttachment.email_id.in_(list(again)))
                .order_by(EmailAttachment.id)
            )
        )
    log.info("mailing %s: %s e-mails queued again for failed recipients", mailing.id, len(new_ids))
    return new_ids
