"""What the sent-mail archive shows: the mailings a user may see, sorted, searched, in detail."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from flask import abort
from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased, selectinload

from hpmail.accounts.models import Account
from hpmail.accounts.service import may_send_as, visible_accounts
from hpmail.archive import search
from hpmail.extensions import db
from hpmail.outbox.api import mailing_messages, resend_failed_recipients
from hpmail.outbox.models import (
    EmailAttachment,
    EmailRecipient,
    EmailState,
    Mailing,
    MailingAttachment,
    OutboundEmail,
    RecipientState,
)
from hpmail.outbox.settings import server_settings

log = logging.getLogger(__name__)

# A mailing's state is its least advanced e-mail's: failed, then deferred, waiting, then sent.
STATE_RANK = {
    EmailState.FAILED: 0,
    EmailState.DEFERRED: 1,
    EmailState.QUEUED: 2,
    EmailState.SENDING: 2,
    EmailState.SENT: 3,
    EmailState.CANCELLED: 4,
}
RANK_STATE = {0: "failed", 1: "deferred", 2: "queued", 3: "sent", 4: "cancelled"}
STATE_LABELS = {
    "sent": _l("Sent"),
    "queued": _l("Pending"),
    "sending": _l("Pending"),
    "deferred": _l("Deferred"),
    "failed": _l("Failed"),
    "cancelled": _l("Cancelled"),
    "pending": _l("Pending"),
    "accepted": _l("Sent"),
    "refused": _l("Failed"),
}
# The headers the detail pane shows, in this order, each with its label in the reader's language.
HEADER_LABELS = {
    "From": _l("From"),
    "To": _l("To"),
    "Cc": _l("Cc"),
    "Reply-To": _l("Reply to"),
    "Subject": _l("Subject"),
    "Date": _l("Date"),
    "Message-ID": _l("Message-ID"),
}
SORTS = ("date", "from", "subject", "recipients", "state")
SERVER_MAILINGS = "none"  # the account filter value for the server's own e-mails (admin only)


@dataclass
class ArchiveQuery:
    """What the archive list shows: account filter, search text, sort column and order, page."""

    account: str = ""
    q: str = ""
    sort: str = "date"
    descending: bool = True
    page: int = 1


@dataclass
class Row:
    mailing: Mailing
    recipient_count: int
    state: str
    counts: dict[str, int]
    first_recipients: list[str] = field(default_factory=list)


@dataclass
class ArchivePage:
    rows: list[Row]
    page: int
    has_next: bool


def visibility(user, account: str = ""):
    """Return the WHERE clause of the mailings ``user`` may see, narrowed to one account.

    Everyone sees the mail of the accounts ``visible_accounts`` gives them; the admin also sees the
    server's own e-mails (tests, codes), which belong to no account.
    """
    if user.is_admin and account == SERVER_MAILINGS:
        return Mailing.account_id.is_(None)
    ids = [a.id for a in visible_accounts(user)]
    if account.isdigit():
        return Mailing.account_id.in_([i for i in ids if i == int(account)])
    if user.is_admin:
        return or_(Mailing.account_id.in_(ids), Mailing.account_id.is_(None))
    return Mailing.account_id.in_(ids)


def can_see(user, mailing: Mailing) -> bool:
    """Tell whether ``user`` may read this mailing (their accounts'; the admin: the server's)."""
    if mailing.account_id is None:
        return user.is_admin
    return mailing.account_id in {a.id for a in visible_accounts(user)}


def mailing_for(user, mailing_id: int) -> Mailing:
    """Return the mailing if ``user`` may see it, else 404 (no hint that it exists)."""
    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None or not can_see(user, mailing):
        abort(404)
    return mailing


def _recipient_count():
    return (
        select(func.count(EmailRecipient.id))
        .join(OutboundEmail, OutboundEmail.id == EmailRecipient.email_id)
        .where(OutboundEmail.mailing_id == Mailing.id)
        .scalar_subquery()
    )


def _state_rank():
    rank = case(
        *((OutboundEmail.state == state, value) for state, value in STATE_RANK.items()), else_=4
    )
    return select(func.min(rank)).where(OutboundEmail.mailing_id == Mailing.id).scalar_subquery()


def archive_page(user, query: ArchiveQuery, page_size: int) -> ArchivePage:
    """Return one page of the mailings ``user`` may see, searched and sorted."""
    search.refresh_index()
    statement = select(Mailing.id).where(visibility(user, query.account))
    if query.q.strip():
        matching = search.matching_ids(query.q)
        if matching is not None:
            statement = statement.where(Mailing.id.in_(matching))
    column = {
        "date": Mailing.created_at,
        "from": func.lower(Mailing.sender_name + " " + Mailing.sender_address),
        "subject": func.lower(Mailing.subject),
        "recipients": _recipient_count(),
        "state": _state_rank(),
    }.get(query.sort, Mailing.created_at)
    order = column.desc() if query.descending else column.asc()
    tie = Mailing.id.desc() if query.descending else Mailing.id.asc()
    page = max(query.page, 1)
    ids = list(
        db.session.scalars(
            statement.order_by(order, tie).offset((page - 1) * page_size).limit(page_size + 1)
        )
    )
    has_next = len(ids) > page_size
    ids = ids[:page_size]
    return ArchivePage(rows_of(ids), page, has_next)


def rows_of(ids: list[int]) -> list[Row]:
    """Return the archive rows of these mailings, in this order, with their counts."""
    if not ids:
        return []
    mailings = {m.id: m for m in db.session.scalars(select(Mailing).where(Mailing.id.in_(ids)))}
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    for mailing_id, state, count in db.session.execute(
        select(OutboundEmail.mailing_id, OutboundEmail.state, func.count())
        .where(OutboundEmail.mailing_id.in_(ids))
        .group_by(OutboundEmail.mailing_id, OutboundEmail.state)
    ):
        counts[mailing_id][state] = count
    recipient_counts = dict(
        db.session.execute(
            select(OutboundEmail.mailing_id, func.count(EmailRecipient.id))
            .join(EmailRecipient, EmailRecipient.email_id == OutboundEmail.id)
            .where(OutboundEmail.mailing_id.in_(ids))
            .group_by(OutboundEmail.mailing_id)
        ).all()
    )
    numbered = (
        select(
            OutboundEmail.mailing_id,
            EmailRecipient.name,
            EmailRecipient.address,
            func.row_number()
            .over(partition_by=OutboundEmail.mailing_id, order_by=EmailRecipient.id)
            .label("n"),
        )
        .join(EmailRecipient, EmailRecipient.email_id == OutboundEmail.id)
        .where(OutboundEmail.mailing_id.in_(ids))
        .subquery()
    )
    first: dict[int, list[str]] = {i: [] for i in ids}
    for mailing_id, name, address in db.session.execute(
        select(numbered.c.mailing_id, numbered.c.name, numbered.c.address).where(numbered.c.n <= 3)
    ):
        first[mailing_id].append(name or address)
    failures = unresolved_failures(ids)
    rows = []
    for mailing_id in ids:
        by_state = counts[mailing_id]
        # Failed when a recipient is still refused or failed; failures sent again do not count.
        rank = min((STATE_RANK.get(s, 4) for s in by_state if s != "failed"), default=4)
        if failures.get(mailing_id):
            rank = 0
        rows.append(
            Row(
                mailings[mailing_id],
                recipient_counts.get(mailing_id, 0),
                RANK_STATE[rank],
                by_state,
                first[mailing_id],
            )
        )
    return rows


def account_choices(user) -> list[tuple[str, str]]:
    """Return the account drop-down: (value, label), the admin's with the server's e-mails."""
    choices = [(str(a.id), f"{a.label} <{a.address}>") for a in visible_accounts(user)]
    if user.is_admin:
        choices.append((SERVER_MAILINGS, str(_l("Server e-mails (tests, codes)"))))
    return choices


def labelled(headers: list[tuple[str, object]]) -> list[tuple[str, str]]:
    """Return the headers with their labels and dates in the reader's language."""
    return [
        (
            str(HEADER_LABELS.get(name, name)),
            format_datetime(value, "long") if isinstance(value, datetime) else str(value),
        )
        for name, value in headers
    ]


def headers_as_sent(mailing: Mailing, email: OutboundEmail) -> list[tuple[str, str]]:
    """Return the labelled headers of ``email`` as the delivery engine builds them (Bcc never
    shown): the values are those sent, the date shown in the reader's language and time zone."""
    to = [(r.name, r.address) for r in email.recipients if r.field == "to"]
    cc = [(r.name, r.address) for r in email.recipients if r.field == "cc"]
    try:
        # The engine's own builder, without the body or files: only the headers are read.
        raw = mailing_messages(mailing, server_settings()).message_bytes(email.message_id, to, cc)
    except (ValueError, TypeError) as error:  # an address the builder no longer accepts
        log.warning("mailing %s: headers not rebuilt: %s", mailing.id, error)
        return labelled(headers_from_rows(mailing, email, to, cc))
    message = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    headers = []
    for name in HEADER_LABELS:
        value = message[name]
        if value is not None:
            headers.append((name, value.datetime if name == "Date" else str(value)))
    return labelled(headers)


def headers_from_rows(mailing: Mailing, email: OutboundEmail, to, cc) -> list[tuple[str, object]]:
    """Return the main headers as the rows hold them (when the message cannot be rebuilt)."""

    def shown(pairs) -> str:
        return ", ".join(str(HeaderAddress(name, addr_spec=address)) for name, address in pairs)

    headers = [("From", shown([(mailing.sender_name, mailing.sender_address)]))]
    if to and not mailing.hide_recipients:
        headers.append(("To", shown(to)))
    if cc and not mailing.hide_recipients:
        headers.append(("Cc", shown(cc)))
    if mailing.reply_to:
        headers.append(("Reply-To", mailing.reply_to))
    headers += [
        ("Subject", mailing.subject),
        ("Date", mailing.created_at),
        ("Message-ID", email.message_id),
    ]
    return headers


RECIPIENTS_SHOWN = 1000
# The detail pane lists problems first: refused and failed, then deferred, waiting, sent.
RECIPIENT_ORDER = {
    "refused": 0,
    "failed": 0,
    "deferred": 1,
    "cancelled": 3,
    "accepted": 4,
    "sent": 4,
}


def emails_of(mailing: Mailing) -> list[OutboundEmail]:
    """Return the e-mails of ``mailing`` in the order they were queued, with their recipients
    and the files each one carried alone (a recipient's own document)."""
    return list(
        db.session.scalars(
            select(OutboundEmail)
            .where(OutboundEmail.mailing_id == mailing.id)
            .options(
                selectinload(OutboundEmail.recipients), selectinload(OutboundEmail.attachments)
            )
            .order_by(OutboundEmail.id)
        )
    )


def recipient_lines(
    emails: list[OutboundEmail],
) -> tuple[list[tuple[OutboundEmail, EmailRecipient, str]], int]:
    """Return the (e-mail, recipient, state) lines, problems first, and how many there are."""
    lines = [
        (email, r, r.state if r.state != RecipientState.PENDING else email.state)
        for email in emails
        for r in email.recipients
    ]
    lines.sort(key=lambda line: RECIPIENT_ORDER.get(line[2], 2))
    return lines[:RECIPIENTS_SHOWN], len(lines)  # a 2,000-person mailing shows its first 1,000


def attachment_of(mailing: Mailing, item_id: int) -> MailingAttachment:
    """Return the mailing's attachment of this id, or 404."""
    item = db.session.get(MailingAttachment, item_id)
    if item is None or item.mailing_id != mailing.id:
        abort(404)
    return item


def email_file_of(mailing: Mailing, item_id: int) -> EmailAttachment:
    """Return the file of this id that one e-mail of ``mailing`` carried, or 404."""
    item = db.session.get(EmailAttachment, item_id)
    if item is None or item.email.mailing_id != mailing.id:
        abort(404)
    return item


def may_resend(user, mailing: Mailing) -> bool:
    """Tell whether ``user`` may send the failed e-mails of ``mailing`` again."""
    if mailing.account_id is None:
        return user.is_admin
    return may_send_as(user.id, mailing.account_id)


def unresolved_failures(mailing_ids: list[int]) -> dict[int, int]:
    """Return, by mailing, the recipients refused or of a failed e-mail and not yet resent."""
    if not mailing_ids:
        return {}
    later_recipient, later_email = aliased(EmailRecipient), aliased(OutboundEmail)
    resent = (
        select(later_recipient.id)
        .join(later_email, later_email.id == later_recipient.email_id)
        .where(
            later_email.mailing_id == OutboundEmail.mailing_id,
            later_recipient.address == EmailRecipient.address,
            later_recipient.id > EmailRecipient.id,
        )
        .exists()
    )
    query = (
        select(OutboundEmail.mailing_id, func.count(EmailRecipient.id))
        .join(OutboundEmail, OutboundEmail.id == EmailRecipient.email_id)
        .where(
            OutboundEmail.mailing_id.in_(mailing_ids),
            (EmailRecipient.state == RecipientState.REFUSED)
            | and_(
                OutboundEmail.state == EmailState.FAILED,
                EmailRecipient.state != RecipientState.ACCEPTED,
            ),
            ~resent,
        )
        .group_by(OutboundEmail.mailing_id)
    )
    return dict(db.session.execute(query).all())


def failed_recipient_count(mailing: Mailing) -> int:
    """Return how many recipients were refused or belong to a failed e-mail, not yet resent."""
    return unresolved_failures([mailing.id]).get(mailing.id, 0)


def resend_failed(user, mailing: Mailing) -> list[int]:
    """Queue again the e-mails of refused and failed recipients (flushed); return the new ids."""
    if not failed_recipient_count(mailing):
        return []  # already resent (a second click, a replayed form)
    ids = resend_failed_recipients(mailing)
    log.info(
        "user %s resent mailing %s to failed recipients: %d e-mails",
        user.login,
        mailing.id,
        len(ids),
    )
    return ids


def account_of(mailing: Mailing) -> Account | None:
    return db.session.get(Account, mailing.account_id) if mailing.account_id else None
