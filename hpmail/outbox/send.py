"""Deliver claimed e-mails: build MIME once per mailing, one SMTP connection per batch, record.

An e-mail with files of its own gets the mailing's shared content plus those files, built for it.

``deliver`` takes only the rows it claimed (``claim.claim``), groups them by transport, applies
the sender checks and the sending limits, and hands every server answer to ``record.Recorder``.
A worker asked to stop (SIGTERM) ends the e-mail in flight and gives the others back.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from collections import OrderedDict, defaultdict
from dataclasses import replace

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from hpmail import queue
from hpmail.extensions import db
from hpmail.outbox import clock, dkim, health
from hpmail.outbox.attachments import attachment_path, read_attachment
from hpmail.outbox.claim import claim, give_back
from hpmail.outbox.limits import reserve
from hpmail.outbox.mime import MailingMessages, Part
from hpmail.outbox.models import (
    GENERATED_KINDS,
    Attachment,
    EmailAttachment,
    EmailRecipient,
    Mailing,
    MailingAttachment,
    OutboundEmail,
    RecipientState,
    ServerSettings,
    Transport,
)
from hpmail.outbox.policy import sending_identity
from hpmail.outbox.record import Delivery, Pending, Recorder, commit_patiently
from hpmail.outbox.settings import server_settings
from hpmail.outbox.smtp import (
    Failure,
    classify,
    close_quietly,
    connect,
    server_answer,
    server_failing,
)

log = logging.getLogger(__name__)

# The app's sender checks (``api.register_sender_check``): fn(mailing) -> reason, or None.
SENDER_CHECKS = "hpmail.sender_checks"


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
            EmailRecipient.person_id,
        )
        .where(EmailRecipient.email_id.in_(ids))
        .order_by(EmailRecipient.id)
    ):
        email = pending[row.email_id]
        if row.field != "bcc":
            email.shown.append((row.field, row.name, row.address))
        if row.state == RecipientState.PENDING:
            email.recipients.append((row.id, row.field, row.name, row.address))
            if row.person_id is not None:
                email.people[row.id] = row.person_id
    for row in db.session.execute(
        select(
            EmailAttachment.email_id,
            EmailAttachment.filename,
            EmailAttachment.content_type,
            EmailAttachment.content_id,
            Attachment.sha256,
        )
        .join(Attachment, Attachment.id == EmailAttachment.attachment_id)
        .where(EmailAttachment.email_id.in_(ids))
        .order_by(EmailAttachment.id)
    ):
        pending[row.email_id].files.append(tuple(row[1:]))
    return list(pending.values())


def own_parts(email: Pending) -> list[Part]:
    """Return the files of this e-mail alone, read from the store (only when it is built)."""
    return [
        Part(filename, content_type, attachment_path(sha256).read_bytes(), content_id)
        for filename, content_type, content_id, sha256 in email.files
    ]


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
        # The app's language: the composer's text and the generated ones are the school's.
        language=current_app.config["BABEL_DEFAULT_LOCALE"],
        generated=mailing.kind in GENERATED_KINDS,
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
    if not claimed:
        return delivery
    pending = _load(claimed)
    recorder = Recorder(now, final, delivery)
    by_transport: dict[int | None, list[Pending]] = defaultdict(list)
    for email in pending:
        by_transport[email.transport_id].append(email)
    try:
        for transport_id, emails in by_transport.items():
            if queue.stopping():
                break
            try:
                _deliver_through(transport_id, emails, recorder, timeout)
            except Exception as error:  # noqa: BLE001 - recorded on the e-mails it stopped
                _interrupted(emails, recorder, error)
    finally:
        recorder.flush()
    unsent = [email_id for email_id in claimed if email_id not in recorder.recorded]
    if unsent:  # only when asked to stop: every other path records each e-mail
        delivery.given_back = give_back(unsent, now)
        log.info("stopping: %s e-mails given back", len(delivery.given_back))
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
    # A database error's first line only: PostgreSQL adds the statement and a caret under it.
    words = (str(getattr(error, "orig", error)).splitlines() or [""])[0]
    failure = Failure(False, _("Unexpected error: %(text)s", text=words))
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
    if (
        transport.failing_since is not None
        and not recorder.final
        and not health.claim_probe(transport.id, recorder.now)
    ):
        # Its server is failing and another worker probes it: wait for it without connecting
        # (a server that times out would hold this worker for every batch). With the probe
        # due, this delivery is the probe.
        failure = Failure(
            False, transport.last_failure or _("The SMTP server is failing."), server=True
        )
        for email in emails:
            recorder.failed(email, failure)
        return
    ready: list[tuple[Pending, MailingMessages]] = []
    prepared: dict[int, MailingMessages | Failure] = {}
    signing: dict[int, list[dkim.SigningKey]] = {}  # each mailing's DKIM keys, read per batch
    for email in emails:
        if email.mailing_id not in prepared:
            prepared[email.mailing_id] = _prepare(db.session.get(Mailing, email.mailing_id))
        builder = prepared[email.mailing_id]
        if isinstance(builder, Failure):
            recorder.failed(email, builder)
        elif not email.recipients:
            recorder.sent(email, {})
        else:
            if email.mailing_id not in signing:  # only for a mailing with e-mails to send
                signing[email.mailing_id] = dkim.signing_keys(builder.identity.from_address.domain)
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
        _send_batch(transport, ready, recorder, timeout, signing)


def _reset(smtp: smtplib.SMTP) -> bool:
    """End the transaction a failed e-mail may have left open; tell whether the link still works."""
    try:
        smtp.rset()
    except (smtplib.SMTPException, OSError):
        return False
    return True


def _send_batch(transport: Transport, ready, recorder: Recorder, timeout, signing) -> None:
    """Send over one connection; after a drop, reconnect once for the rest, else defer them."""
    smtp = None
    reconnects = 0
    renew_every = current_app.config["DELIVERY_LEASE_SECONDS"] / 3
    renew_at = time.monotonic() + renew_every
    try:
        for index, (email, builder) in enumerate(ready):
            if queue.stopping():
                return  # the e-mail in flight is sent and recorded; ``deliver`` gives the rest back
            if time.monotonic() >= renew_at:
                recorder.renew_leases([rest.id for rest, _builder in ready[index:]])
                renew_at = time.monotonic() + renew_every
            message = _message(email, builder, recorder, signing[email.mailing_id])
            if message is None:
                continue
            if smtp is None:
                try:
                    smtp = connect(transport, timeout)
                except Exception as error:  # noqa: BLE001 - every failure is classified
                    # Refused credentials or a missing STARTTLS are the server's setup, not the
                    # e-mails' fault: keep them (deferred) until it is fixed or time runs out.
                    failure = replace(
                        classify(error), permanent=False, server=server_failing(error)
                    )
                    _server_failed(transport, failure, recorder)
                    for rest, _builder in ready[index:]:
                        recorder.failed(rest, failure)
                    return
                _server_answers(transport, recorder)
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


def _server_failed(transport: Transport, failure: Failure, recorder: Recorder) -> None:
    """Mark the transport failing when ``failure`` is its server's (before its e-mails wait)."""
    if failure.server:
        recorder.flush()
        health.mark_failing(transport.id, failure, recorder.now)


def _server_answers(transport: Transport, recorder: Recorder) -> None:
    """The server took a session: if it was failing, it is back and its e-mails go now."""
    if transport.failing_since is not None:
        recorder.flush()
        recorder.delivery.released += health.mark_healthy(transport.id, clock.now())


def _message(
    email: Pending, builder: MailingMessages, recorder: Recorder, keys: list[dkim.SigningKey]
) -> bytes | None:
    """Return the message of one e-mail, signed with ``keys`` (DKIM), or record why it cannot be
    built and return None. A key that cannot sign leaves the e-mail unsigned (``outbox.dkim``)."""
    # Headers name every To/Cc recipient; the envelope only those still to reach (a retry after
    # a 4xx for some recipients goes to them alone, same Message-ID).
    to = [(name, address) for field, name, address in email.shown if field == "to"]
    cc = [(name, address) for field, name, address in email.shown if field == "cc"]
    try:
        message = builder.message_bytes(email.message_id, to, cc, own_parts(email))
    except Exception as error:  # noqa: BLE001 - one e-mail that cannot be built stops no other
        log.warning("e-mail %s cannot be built: %s", email.id, error)
        recorder.failed(email, build_failure(error))
        return None
    return dkim.sign(message, keys)


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
