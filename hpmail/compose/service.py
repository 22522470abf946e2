"""The composer's logic: who receives the e-mail, what it holds, and how it is queued."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from email.utils import parseaddr

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from hpmail.accounts.service import sender_for
from hpmail.compose.models import Signature
from hpmail.compose.richtext import html_to_text, sanitize_html
from hpmail.compose.uploads import KeptFile, Upload, upload_errors
from hpmail.core.addresses import EmailNotValidError, normalized_address
from hpmail.core.forms import InputRefused
from hpmail.core.text import fold, is_header_safe, unsafe_message
from hpmail.directory.models import KIND_PLURALS, EmailStatus, Person, PersonKind
from hpmail.directory.reach import reachability
from hpmail.extensions import db
from hpmail.outbox.api import (
    Address,
    AttachmentSpec,
    Delivery,
    EmailSpec,
    queue_mailing,
)
from hpmail.outbox.attachments import store_attachment
from hpmail.outbox.models import EmailState, Mailing, OutboundEmail
from hpmail.outbox.policy import InvalidHeader, checked_address

log = logging.getLogger(__name__)

KIND_ORDER = (PersonKind.TEACHER, PersonKind.STUDENT, PersonKind.STAFF)
SUBJECT_MAX = 255


@dataclass
class RecipientType:
    """A kind of person among the selected ones, with who can and cannot receive the e-mail."""

    kind: str
    reachable_count: int
    total: int
    reachable: list[Person]
    unreachable: list[tuple[Person, str]]

    @property
    def label(self) -> str:
        return str(KIND_PLURALS[self.kind])


@dataclass
class Draft:
    """What the user wrote in the composer, as plain values."""

    kinds: list[str] = field(default_factory=list)
    other_ids: list[int] = field(default_factory=list)
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    insert_signature: bool = False
    account_id: int | None = None
    hide_recipients: bool = False
    one_per_recipient: bool = False
    confirm_empty_subject: bool = False
    kind: str = "email"
    # The form's one-time token (a uuid): the mailing it queued is found again, never doubled.
    request_token: str = ""
    # What a quick e-mail's people were chosen for ("Cours de Droit civil — TD2"), shown on top.
    about: str = ""


@dataclass
class Recipients:
    """The resolved addresses of an e-mail, each once, by header field."""

    to: list = field(default_factory=list)
    cc: list = field(default_factory=list)
    bcc: list = field(default_factory=list)
    # Addresses the directory takes as valid but the sending engine cannot put in a header.
    refused: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.to) + len(self.cc) + len(self.bcc)


class ComposeRefused(InputRefused):
    """The e-mail cannot be sent as written: ``errors`` maps a field to its messages, and
    ``warnings`` a field to a question the user may answer by sending again (no subject)."""

    def __init__(self, errors: dict[str, list[str]], warnings: dict[str, str] | None = None):
        super().__init__(errors)
        self.warnings = warnings or {}


def recipient_types(people: list[Person]) -> list[RecipientType]:
    """Return the direct recipient types of the selected people, counted by ``reachability``."""
    reach = reachability(people)
    counts = reach.count_by_kind()
    types = []
    for kind in KIND_ORDER:
        if kind not in counts:
            continue
        reachable_count, total = counts[kind]
        types.append(
            RecipientType(
                kind=str(kind),
                reachable_count=reachable_count,
                total=total,
                reachable=[p for p in reach.reachable if p.kind == kind],
                unreachable=[(p, why) for p, why in reach.unreachable if p.kind == kind],
            )
        )
    return types


def person_name(person: Person) -> str:
    return f"{person.first_name} {person.last_name}".strip()


def parse_addresses(text: str, field: str = "Cc") -> tuple[list[tuple[str, str]], list[str]]:
    """Return the (name, address) pairs typed in a Cc/Bcc field, and a message per bad one."""
    pairs, errors = [], []
    if not is_header_safe(re.sub(r"[\r\n]+", "", text or "")):
        # parseaddr keeps control characters in names: they would end the header line.
        return [], [unsafe_message(field)]
    for chunk in re.split(r"[,;\r\n]+", text or ""):
        chunk = chunk.strip()
        if not chunk:
            continue
        name, address = parseaddr(chunk) if "<" in chunk else ("", chunk)
        try:
            valid = normalized_address(address or chunk)
        except EmailNotValidError:
            errors.append(_("« %(address)s » is not a valid e-mail address.", address=chunk))
            continue
        pairs.append((name.strip(), valid))
    return pairs, errors


def resolve_recipients(
    types: list[RecipientType],
    kinds: list[str],
    others: list[Person],
    cc: list[tuple[str, str]],
    bcc: list[tuple[str, str]],
) -> Recipients:
    """Return the addresses: ticked types in To, others and Cc in Cc, Cci in Bcc, each once."""
    recipients, seen = Recipients(), set()

    def add(where: list, address: str, name: str, person_id: int | None = None) -> None:
        key = address.strip().lower()
        if key and key not in seen:
            seen.add(key)
            try:
                checked_address(address, name)
            except InvalidHeader as refused:
                recipients.refused.append((name or address, str(refused)))
                return
            where.append(Address(address.strip(), name, person_id))

    for recipient_type in types:
        if recipient_type.kind in kinds:
            for person in recipient_type.reachable:
                add(recipients.to, person.email, person_name(person), person.id)
    for person in others:
        if person.email_status == EmailStatus.VALID and person.email:
            add(recipients.cc, person.email, person_name(person), person.id)
    for name, address in cc:
        add(recipients.cc, address, name)
    for name, address in bcc:
        add(recipients.bcc, address, name)
    return recipients


def split_emails(recipients: Recipients, one_per_recipient: bool, limit: int) -> list:
    """Return the EmailSpecs: one per person, or groups of at most ``limit`` addresses."""
    if one_per_recipient:
        # Each person gets their own e-mail, copies included, so nobody sees another's address.
        return [
            EmailSpec(to=[address]) for address in recipients.to + recipients.cc + recipients.bcc
        ]
    flat = (
        [("to", a) for a in recipients.to]
        + [("cc", a) for a in recipients.cc]
        + [("bcc", a) for a in recipients.bcc]
    )
    emails = []
    for start in range(0, len(flat), max(limit, 1)):
        chunk = flat[start : start + limit]
        emails.append(
            EmailSpec(
                to=[a for f, a in chunk if f == "to"],
                cc=[a for f, a in chunk if f == "cc"],
                bcc=[a for f, a in chunk if f == "bcc"],
            )
        )
    return emails


def others_by_id(ids: list[int]) -> list[Person]:
    """Return the people picked by name under "Autres"."""
    if not ids:
        return []
    return list(db.session.scalars(select(Person).where(Person.id.in_(ids[:2000]))))


def search_people(text: str, kind: str | None = None, limit: int = 20) -> list[Person]:
    """Return the people whose name or address contains every word of ``text``."""
    query = select(Person).order_by(Person.last_name, Person.first_name).limit(limit)
    if kind in {k.value for k in PersonKind}:
        query = query.where(Person.kind == kind)
    words = fold(text).split()
    if not words:
        return []
    for word in words[:5]:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Person.search_text.like(f"%{escaped}%", escape="\\"))
    return list(db.session.scalars(query))


def signature_of(user_id: int) -> Signature | None:
    return db.session.get(Signature, user_id)


def check_draft(
    draft: Draft,
    recipients: Recipients,
    uploads: list[Upload],
    kept: list[KeptFile],
    address_errors: dict[str, list[str]],
) -> tuple[str, str]:
    """Return the sanitised HTML and text bodies, or raise ComposeRefused with every problem."""
    errors: dict[str, list[str]] = {k: v for k, v in address_errors.items() if v}
    warnings: dict[str, str] = {}
    subject = draft.subject
    if not is_header_safe(subject):
        errors.setdefault("subject", []).append(unsafe_message(_("Subject")))
    elif len(subject) > SUBJECT_MAX:
        errors.setdefault("subject", []).append(
            _("The subject is too long (%(max)s characters at most).", max=SUBJECT_MAX)
        )
    html = sanitize_html(draft.body)
    text = html_to_text(html)
    if not html and not uploads and not kept:
        errors.setdefault("body", []).append(_("Write a message or attach a file."))
    problems = upload_errors(uploads, kept)
    if problems:
        errors["attachments"] = problems
    if recipients.count == 0 and "cc" not in errors and "bcc" not in errors:
        errors.setdefault("recipients", []).append(
            _("Choose at least one recipient who has a valid address.")
        )
    if not subject.strip() and not draft.confirm_empty_subject:
        warnings["subject"] = _("This e-mail has no subject. Send it anyway?")
    if errors or warnings:
        raise ComposeRefused(errors, warnings)
    return html, text


def prepare_email(
    draft: Draft, people: list[Person], uploads: list[Upload], kept: list[KeptFile]
) -> tuple[Recipients, str, str]:
    """Return the recipients and bodies of the draft, or raise ComposeRefused with every problem."""
    cc, cc_errors = parse_addresses(draft.cc, "Cc")
    bcc, bcc_errors = parse_addresses(draft.bcc, _("Bcc"))
    recipients = resolve_recipients(
        recipient_types(people), draft.kinds, others_by_id(draft.other_ids), cc, bcc
    )
    html, text = check_draft(draft, recipients, uploads, kept, {"cc": cc_errors, "bcc": bcc_errors})
    return recipients, html, text


def with_signature(html: str, text: str, content_id: str) -> tuple[str, str]:
    """Return the bodies with the signature image (referenced by Content-ID) at the end."""
    html = f'{html}<p><img src="cid:{content_id}" alt="Signature"></p>'
    return html, text


def queue_email(
    user,
    draft: Draft,
    recipients: Recipients,
    html: str,
    text: str,
    uploads: list[Upload],
    kept: list[KeptFile],
):
    """Store the files and queue the mailing (flushed, not committed); return the Mailing."""
    sender = sender_for(user, draft.account_id)
    attachments = [
        AttachmentSpec(
            store_attachment(u.data, u.accepted_type), u.filename, content_type=u.accepted_type
        )
        for u in uploads
    ] + [AttachmentSpec(k.attachment, k.filename, content_type=k.content_type) for k in kept]
    signature = signature_of(user.id) if draft.insert_signature else None
    if signature is not None:
        content_id = f"signature.{signature.attachment.sha256[:16]}@hpmail"
        html, text = with_signature(html, text, content_id)
        attachments.append(AttachmentSpec(signature.attachment, signature.filename, content_id))
    limit = current_app.config["MAX_RECIPIENTS_PER_MESSAGE"]
    emails = split_emails(recipients, draft.one_per_recipient, limit)
    mailing = queue_mailing(
        author_id=user.id,
        sender=sender,
        subject=draft.subject.strip(),
        text_body=text,
        html_body=html,
        emails=emails,
        kind=draft.kind if draft.kind in ("email", "quick") else "email",
        attachments=attachments,
        hide_recipients=draft.hide_recipients,
    )
    # Flushed with the mailing: the unique column stops a second mailing of the same form.
    mailing.request_token = draft.request_token or None
    db.session.flush()
    log.info(
        "user %s queued mailing %s: %d e-mails, %d recipients",
        user.login,
        mailing.id,
        len(emails),
        recipients.count,
    )
    return mailing


def course_about(course) -> str:
    """Return what a course's quick e-mail is about: its subject and its groups (or type)."""
    what = ", ".join(group.name for group in course.groups) or course.course_type
    return _("Course of %(subject)s — %(what)s", subject=course.subject, what=what)


def cohort_about(cohort) -> str:
    """Return what a cohort's quick e-mail (to its teaching team) is about."""
    return _("Teaching team of %(cohort)s", cohort=cohort.name)


def about_text(value: str | None) -> str:
    """Return a quick e-mail's "about" line as it may be shown: one line, subject-sized."""
    return " ".join((value or "").split())[:SUBJECT_MAX]


def request_token(value: str | None) -> str:
    """Return the composer's one-time token as a canonical uuid, or "" when it is not one."""
    try:
        return str(uuid.UUID(value or ""))
    except ValueError:
        return ""


def mailing_of_request(token: str) -> Mailing | None:
    """Return the mailing that the composer form of this token already queued, if any."""
    if not token:
        return None
    return db.session.scalar(select(Mailing).where(Mailing.request_token == token))


def outcome_of(mailing: Mailing) -> Delivery:
    """Return where the mailing's e-mails stand now, as the confirmation page counts them."""
    counts = dict(
        db.session.execute(
            select(OutboundEmail.state, func.count())
            .where(OutboundEmail.mailing_id == mailing.id)
            .group_by(OutboundEmail.state)
        ).all()
    )
    waiting = (EmailState.QUEUED, EmailState.SENDING, EmailState.DEFERRED)
    return Delivery(
        queued=sum(counts.get(state, 0) for state in waiting),
        sent=counts.get(EmailState.SENT, 0),
        failed=counts.get(EmailState.FAILED, 0),
    )


def people_of_kind(kind: str, limit: int = 300) -> list[Person]:
    """Return the people of a kind by name, for picking them under "Autres"."""
    if kind not in {k.value for k in PersonKind}:
        return []
    query = select(Person).where(Person.kind == kind).order_by(Person.last_name, Person.first_name)
    return list(db.session.scalars(query.limit(limit)))
