"""Deliver claimed e-mails: claim rows, build MIME, one SMTP connection per batch, record answers.

A row is sent only by whoever claimed it with the one conditional UPDATE in ``claim`` (rule 3 of
docs/ARCHITECTURE.md); the lease lets the sweeper give the row to another worker if this one dies.
"""

from __future__ import annotations

import logging
import smtplib
import sqlite3
import threading
import time
from collections import OrderedDict, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from email.headerregistry import Address as HeaderAddress

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select, update

from hpmail.delivery import clock
from hpmail.delivery.attachments import read_attachment
from hpmail.delivery.limits import reserve
from hpmail.delivery.mime import MailingMessages, Part
from hpmail.delivery.models import (
    EmailRecipient,
    EmailState,
    Mailing,
    MailingAttachment,
    OutboundEmail,
    RecipientState,
    ServerSettings,
    Transport,
)
from hpmail.delivery.policy import sending_identity
from hpmail.delivery.recording import Delivery, Pending, Recorder, commit_patiently
from hpmail.delivery.settings import server_settings
from hpmail.delivery.transport import Failure, classify, close_quietly, connect, server_answer
from hpmail.extensions import db

log = logging.getLogger(__name__)

# The app's sender checks (``outbox.register_sender_check``): fn(mailing) -> reason, or None.
SENDER_CHECKS = "hpmail.sender_checks"


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


def _load(ids: list[int]) -> list[Pending]:
    rows = db.session.execute(
        select(
            OutboundEmail.id,
            OutboundEmail.mailing_id,
            OutboundEmail.message_id,
            OutboundEmail.attempts,
            OutboundEmail.created_at,
            Mailing.transport_id,
        )
        .join(Mailing, Mailing.id == OutboundEmail.mailing_id)
        .where(OutboundEmail.id.in_(ids))
        .order_by(OutboundEmail.id)
    ).all()
    pending = {row.id: Pending(*row) for row in rows}
    for row in db.session.execute(
        select(
            EmailRecipient.email_id,
            EmailRecipient.id,
            EmailRecipient.field,
            EmailRecipient.name,
            EmailRecipient.address,
            EmailRecipient.state,
        )
        .where(EmailRecipient.email_id.in_(ids))
        .order_by(EmailRecipient.id)
    ):
        email = pending[row.email_id]
        if row.field != "bcc":
            email.shown.append((row.field, row.name, row.address))
        if row.state == RecipientState.PENDING:
            email.recipients.append((row.id, row.field, row.name, row.address))
    return list(pending.values())


# A worker keeps the built parts of its last few mailings: a mailing's e-mails come in many batches.
_messages_cache: OrderedDict[tuple, MailingMessages] = OrderedDict()
_CACHE_SIZE = 4
_cache_lock = threading.Lock()  # a consumer may run several worker threads


def mailing_messages(
    mailing: Mailing,
    settings: ServerSettings,
    *,
    text_body: str = "",
    html_body: str | None = None,
    parts: list[Part] | None = None,
) -> MailingMessages:
    """Return the message builder of ``mailing`` under the server's From policy."""
    identity = sending_identity(
        name=mailing.sender_name,
        address=mailing.sender_address,
        reply_to=mailing.reply_to,
        server_name=settings.sender_name,
        server_address=settings.sender_address,
        allowed_domains=settings.allowed_domains or "",
    )
    return MailingMessages(
        identity=identity,
        subject=mailing.subject,
        text_body=text_body,
        html_body=html_body,
        parts=parts or [],
        date=mailing.created_at,
        hide_recipients=mailing.hide_recipients,
        account=HeaderAddress(display_name=mailing.sender_name, addr_spec=mailing.sender_address),
    )


def messages_of(mailing: Mailing) -> MailingMessages:
    """Return the message builder of ``mailing``, built once per worker and From policy."""
    settings = server_settings()
    key = (
        str(db.engine.url),
        mailing.id,
        mailing.created_at,
        settings.sender_name,
        settings.sender_address,
        settings.allowed_domains,
    )
    with _cache_lock:
        cached = _messages_cache.get(key)
        if cached is not None:
            _messages_cache.move_to_end(key)
            return cached
    attachments = db.session.scalars(
        select(MailingAttachment)
        .where(MailingAttachment.mailing_id == mailing.id)
        .order_by(MailingAttachment.id)
    ).all()
    parts = [
        Part(
            item.filename,
            item.content_type,
            read_attachment(item.attachment),
            item.content_id,
        )
        for item in attachments
    ]
    built = mailing_messages(
        mailing, settings, text_body=mailing.text_body, html_body=mailing.html_body, parts=parts
    )
    with _cache_lock:
        _messages_cache[key] = built
        while len(_messages_cache) > _CACHE_SIZE:
            _messages_cache.popitem(last=False)
    return built


def sender_refusal(mailing: Mailing) -> str | None:
    """Return the first reason a registered sender check gives to refuse ``mailing``."""
    for check in current_app.extensions.get(SENDER_CHECKS, ()):
        reason = check(mailing)
        if reason:
            return reason
    return None


def deliver(email_ids, *, final: bool = False, timeout: float | None = None) -> Delivery:
    """Claim and send the due e-mails among ``email_ids``, recording every answer.

    ``final`` is for sending inside a request: a failure is reported, not retried later.
    """
    delivery = Delivery()
    email_ids = list(email_ids)
    now = clock.now()
    claimed = claim(email_ids, now)
    delivery.not_claimed = len(email_ids) - len(claimed)
    if not claimed:
        return delivery
    pending = _load(claimed)
    recorder = Recorder(now, final, delivery)
    by_transport: dict[int | None, list[Pending]] = defaultdict(list)
    for email in pending:
        by_transport[email.transport_id].append(email)
    try:
        for transport_id, emails in by_transport.items():
            try:
                _deliver_through(transport_id, emails, recorder, timeout)
            except Exception as error:  # noqa: BLE001 - recorded on the e-mails it stopped
                _interrupted(emails, recorder, error)
    finally:
        recorder.flush()
    log.info(
        "delivered %s: %s sent, %s deferred, %s failed",
        len(claimed),
        delivery.sent,
        delivery.deferred,
        delivery.failed,
    )
    return delivery


def _interrupted(emails: list[Pending], recorder: Recorder, error: Exception) -> None:
    """Record the e-mails an unexpected error stopped before their outcome was known.

    Left as claimed, they would be taken again when their lease ends, meet the same error, and
    never reach the give-up time: recorded as a temporary failure, they are retried with the
    growing delay, then failed with this reason.
    """
    log.exception("delivery of %s e-mails interrupted", len(emails))
    db.session.rollback()
    failure = Failure(False, _("Unexpected error: %(text)s", text=getattr(error, "orig", error)))
    for email in emails:
        if email.id not in recorder.recorded:
            recorder.failed(email, failure)


def build_failure(error: Exception) -> Failure:
    """Say why an e-mail could not be built: its own content is final, anything else is retried.

    A value the MIME builder refuses (a header holding a line break, ``InvalidHeader``), a text
    that cannot be encoded or an attachment gone from the store fails the same way every time.
    """
    if isinstance(error, UnicodeError):  # an accented address: said as when SMTP refuses it
        return classify(error)
    if isinstance(error, OSError | ValueError | LookupError):
        return Failure(True, _("The e-mail could not be built: %(text)s", text=error))
    log.error("unexpected error building an e-mail", exc_info=error)
    return Failure(False, _("Unexpected error: %(text)s", text=error))


def _prepare(mailing: Mailing) -> MailingMessages | Failure:
    """Run the sender checks on ``mailing`` and build its messages, or say why it cannot go."""
    try:
        reason = sender_refusal(mailing)
    except Exception as error:  # a check that breaks must not stop the worker: retry later
        log.exception("sender check failed on mailing %s", mailing.id)
        return Failure(False, _("Unexpected error: %(text)s", text=error))
    if reason:
        return Failure(True, reason)
    try:
        return messages_of(mailing)
    except Exception as error:  # noqa: BLE001 - one mailing that cannot be built stops no other
        log.warning("mailing %s cannot be built: %s", mailing.id, error)
        return build_failure(error)


def _deliver_through(transport_id, emails: list[Pending], recorder: Recorder, timeout) -> None:
    transport = db.session.get(Transport, transport_id) if transport_id else None
    if transport is None or not transport.host:
        failure = Failure(False, _("No SMTP server is configured for these e-mails."))
        for email in emails:
            recorder.failed(email, failure)
        return
    ready: list[tuple[Pending, MailingMessages]] = []
    prepared: dict[int, MailingMessages | Failure] = {}
    for email in emails:
        if email.mailing_id not in prepared:
            prepared[email.mailing_id] = _prepare(db.session.get(Mailing, email.mailing_id))
        builder = prepared[email.mailing_id]
        if isinstance(builder, Failure):
            recorder.failed(email, builder)
        elif not email.recipients:
            recorder.sent(email, {})
        else:
            ready.append((email, builder))
    if transport.per_minute or transport.per_day:
        allowed, reopens = reserve(transport, len(ready), recorder.now)
        for email, _builder in ready[allowed:]:
            recorder.held_back(
                email,
                reopens,
                _(
                    "Held back by the sending limit until %(time)s UTC.",
                    time=reopens.strftime("%H:%M"),
                ),
            )
        ready = ready[:allowed]
        commit_patiently()
        recorder.flush()
    if ready:
        _send_batch(transport, ready, recorder, timeout)


def _reset(smtp: smtplib.SMTP) -> bool:
    """End the transaction a failed e-mail may have left open; tell whether the link still works."""
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        return False
    return True


def _send_batch(transport: Transport, ready, recorder: Recorder, timeout) -> None:
    """Send over one connection; after a drop, reconnect once for the rest, else defer them."""
    smtp = None
    reconnects = 0
    renew_every = current_app.config["DELIVERY_LEASE_SECONDS"] / 3
    renew_at = time.monotonic() + renew_every
    try:
        for index, (email, builder) in enumerate(ready):
            if time.monotonic() >= renew_at:
                recorder.renew_leases([rest.id for rest, _builder in ready[index:]])
                renew_at = time.monotonic() + renew_every
            message = _message(email, builder, recorder)
            if message is None:
                continue
            if smtp is None:
                try:
                    smtp = connect(transport, timeout)
                except Exception as error:  # noqa: BLE001 - every failure is classified
                    # Refused credentials or a missing STARTTLS are the server's setup, not the
                    # e-mails' fault: keep them (deferred) until it is fixed or time runs out.
                    failure = replace(classify(error), permanent=False)
                    for rest, _builder in ready[index:]:
                        recorder.failed(rest, failure)
                    return
            failure = _send(smtp, email, builder, message, recorder)
            if failure is not None:  # the connection is gone
                smtp = None
                reconnects += 1
                if reconnects > 1:
                    for rest, _builder in ready[index + 1 :]:
                        recorder.failed(rest, failure)
                    return
    finally:
        close_quietly(smtp)


def _message(email: Pending, builder: MailingMessages, recorder: Recorder) -> bytes | None:
    """Return the message of one e-mail, or record why it cannot be built and return None."""
    # Headers name every To/Cc recipient; the envelope only those still to reach (a retry after
    # a 4xx for some recipients goes to them alone, same Message-ID).
    to = [(name, address) for field, name, address in email.shown if field == "to"]
    cc = [(name, address) for field, name, address in email.shown if field == "cc"]
    try:
        return builder.message_bytes(email.message_id, to, cc)
    except Exception as error:  # noqa: BLE001 - one e-mail that cannot be built stops no other
        log.warning("e-mail %s cannot be built: %s", email.id, error)
        recorder.failed(email, build_failure(error))
        return None


def _send(
    smtp, email: Pending, builder: MailingMessages, message: bytes, recorder: Recorder
) -> Failure | None:
    """Send one e-mail and record the answer; return what lost the connection, if it was lost."""
    envelope = [address for _i, _f, _n, address in email.recipients]
    try:
        refused = smtp.sendmail(builder.identity.envelope_from, envelope, message)
    except smtplib.SMTPRecipientsRefused as error:
        recorder.recipients_refused(email, error.recipients)
        closing = [(code, text) for code, text in error.recipients.values() if code == 421]
        if closing:
            smtp.close()  # 421: the server is closing; smtplib has hung up already
            return server_answer(*closing[0])
        return None
    except Exception as error:  # noqa: BLE001 - every failure is classified
        failure = classify(error)
        recorder.failed(email, failure)
        if failure.code == 421:
            close_quietly(smtp)
        elif failure.connection_lost or not _reset(smtp):
            smtp.close()
        else:
            return None
        return replace(failure, permanent=False, connection_lost=True)
    recorder.sent(email, refused)
    return None
