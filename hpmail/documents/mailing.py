"""Imprimer / Mailer: each person's document in their own e-mail, written in the composer.

The composer's draft is checked by compose's rules and kept on the job (``MailDraft``); each
person's e-mail is then queued as soon as their document is ready (``queue_ready_emails``), by
whoever holds the job's lease, so that no e-mail is queued twice. The mailing is of kind
``document``: the shared HTML refers to each e-mail's own preview as ``cid:document-preview``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

from flask_babel import format_date
from flask_babel import gettext as _
from markupsafe import escape
from sqlalchemy import or_, select, update
from sqlalchemy.orm import selectinload

from hpmail.accounts.service import sender_for
from hpmail.compose import service as compose
from hpmail.compose.richtext import html_to_text
from hpmail.core.time import utcnow
from hpmail.directory.models import Person
from hpmail.directory.reach import reachability, unreachable_reason
from hpmail.documents.content import OwnerKind
from hpmail.documents.jobs import period_of
from hpmail.documents.kinds import kind_of
from hpmail.documents.layout import DOCUMENT_KIND_LABELS, DocumentKind, Output, PrintCopy
from hpmail.documents.models import DocumentJob, DocumentJobItem, ItemState, JobState
from hpmail.documents.printing import file_name
from hpmail.extensions import db
from hpmail.outbox.api import (
    DOCUMENT_PREVIEW,
    OWN_BODY,
    OWN_BODY_MARK,
    Address,
    AttachmentSpec,
    EmailSpec,
    Sender,
    queue_mailing,
    queue_more_emails,
)
from hpmail.outbox.attachments import read_attachment, store_attachments
from hpmail.outbox.models import Attachment, Mailing, MailingKind, OutboundEmail
from hpmail.outbox.policy import InvalidHeader, checked_address
from hpmail.outbox.settings import transport_for

log = logging.getLogger(__name__)


@dataclass
class MailDraft:
    """The e-mail the user wrote for a job, as every person's e-mail is queued from it."""

    subject: str
    text_body: str
    html_body: str
    sender: dict  # outbox.api.Sender's fields
    files: list[dict] = field(default_factory=list)  # the signature: attachment id, name, cid
    hide_recipients: bool = False
    cc: list[list] = field(default_factory=list)  # [name, address, person id]
    bcc: list[list] = field(default_factory=list)
    # Each e-mail copied to the addresses of its own item (``kinds.JobKind.copies_of``).
    item_copies: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MailDraft:
        return cls(**json.loads(text))


def _when(job: DocumentJob) -> tuple[bool, str, str]:
    period = period_of(job)
    week = period.days == 7 and period.start.weekday() == 0
    return week, format_date(period.start, "d MMMM y"), format_date(period.end, "d MMMM y")


def default_subject(job: DocumentJob) -> str:
    """Return the composer's first subject: « Emploi du temps — semaine du 7 décembre 2026 »."""
    if (registered := kind_of(job)) is not None:
        return registered.subject(job)
    label = str(DOCUMENT_KIND_LABELS[DocumentKind(job.kind)])
    week, start, end = _when(job)
    if week:
        return _("%(document)s — week of %(day)s", document=label, day=start)
    return _("%(document)s — from %(start)s to %(end)s", document=label, start=start, end=end)


def default_introduction(job: DocumentJob) -> str:
    """Return the introduction the composer starts with (HTML)."""
    if (registered := kind_of(job)) is not None:
        return registered.introduction(job)
    week, start, end = _when(job)
    if week:
        line = _("Please find your document for the week of %(day)s.", day=start)
    else:
        line = _(
            "Please find your document for the period from %(start)s to %(end)s.",
            start=start,
            end=end,
        )
    return f"<p>{escape(_('Hello,'))}</p><p>{escape(line)}</p>"


def people_of(job: DocumentJob) -> list[Person]:
    """Return the people of the job's items, in the order of the list printed from."""
    ids = list(
        db.session.scalars(
            select(DocumentJobItem.owner_id)
            .where(DocumentJobItem.job_id == job.id, DocumentJobItem.owner_kind == OwnerKind.PERSON)
            .order_by(DocumentJobItem.position)
        )
    )
    found = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        people = db.session.scalars(select(Person).where(Person.id.in_(chunk)))
        found.update((person.id, person) for person in people)
    return [found[pid] for pid in ids if pid in found]


def address_of(person: Person) -> str | None:
    """Return the address this person's document goes to, or None when they get no e-mail."""
    if unreachable_reason(person) is not None:
        return None
    try:
        return checked_address(person.email, compose.person_name(person))
    except InvalidHeader:
        return None


def prepare_mail(
    user, job: DocumentJob, draft: compose.Draft, item_copies: bool = False
) -> MailDraft:
    """Check the composer's draft for this job with compose's rules; return what to keep.

    Raise ``compose.ComposeRefused`` with every problem, ``accounts.service.NotAuthorised`` for
    an account the user may not send as.
    """
    people = people_of(job)
    cc, cc_errors = compose.parse_addresses(draft.cc, "Cc")
    bcc, bcc_errors = compose.parse_addresses(draft.bcc, _("Bcc"))
    kinds = [t.kind for t in compose.recipient_types(people)]
    recipients = compose.resolve_recipients(
        compose.recipient_types(people), kinds, compose.others_by_id(draft.other_ids), cc, bcc
    )
    if not recipients.to:
        raise compose.ComposeRefused(
            {"recipients": [_("Nobody selected can receive an e-mail: print the documents.")]}
        )
    html, text = compose.check_draft(
        draft, recipients, [], [], {"cc": cc_errors, "bcc": bcc_errors}
    )
    if transport_for(user.id, MailingKind.DOCUMENT) is None:
        message = _("No SMTP server is configured: set one in the sending settings before sending.")
        raise compose.ComposeRefused({"recipients": [message]})
    sender = sender_for(user, draft.account_id)
    if job.inline_png and kind_of(job) is not None:
        # Each e-mail's own content (a letter) goes there, before the signature.
        html, text = f"{html}{OWN_BODY_MARK}", f"{text}\n\n{OWN_BODY_MARK}\n"
    elif job.inline_png:
        html, text = _with_preview(job, html, text)
    files = []
    signature = compose.signature_of(user.id) if draft.insert_signature else None
    if signature is not None:
        content_id = f"signature.{signature.attachment.sha256[:16]}@hpmail"
        html, text = compose.with_signature(html, text, content_id)
        files.append(
            {
                "attachment_id": signature.attachment.id,
                "filename": signature.filename,
                "cid": content_id,
            }
        )
    return MailDraft(
        subject=draft.subject.strip(),
        text_body=text,
        html_body=html,
        sender=asdict(sender),
        files=files,
        hide_recipients=draft.hide_recipients,
        cc=[[a.name, a.address, a.person_id] for a in recipients.cc],
        bcc=[[a.name, a.address, a.person_id] for a in recipients.bcc],
        item_copies=item_copies and _offers_copies(job),
    )


def _with_preview(job: DocumentJob, html: str, text: str) -> tuple[str, str]:
    """Return the bodies with each person's preview in the HTML, and words saying what it is.

    An HTML part that is little more than an image is what spam looks like (SpamAssassin's
    ``HTML_IMAGE_ONLY`` rules); the caption also tells every reader what the e-mail carries.
    """
    label = str(DOCUMENT_KIND_LABELS[DocumentKind(job.kind)])
    caption = _("Above, the first page of your %(document)s.", document=label.lower())
    html = f'{html}<p><img src="cid:{DOCUMENT_PREVIEW}" alt="{escape(label)}"></p>'
    if job.attach_pdf:
        attached = _("The whole document is attached as a PDF file, to open, print or keep.")
        caption = f"{caption} {attached}"
        text = f"{text}\n\n{attached}\n"
    return f"{html}<p>{escape(caption)}</p>", text


def _offers_copies(job: DocumentJob) -> bool:
    registered = kind_of(job)
    return bool(registered and registered.copies_label and registered.copies_label(job))


def save_mail(job: DocumentJob, mail: MailDraft) -> bool:
    """Keep the e-mail on the job, once (flushed); False when it was already sent."""
    saved = db.session.execute(
        update(DocumentJob)
        .where(DocumentJob.id == job.id, DocumentJob.mail.is_(None))
        .values(mail=mail.to_json())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(job)
    return saved.rowcount == 1


def _addresses(rows: list[list]) -> list[Address]:
    return [Address(address, name, person_id) for name, address, person_id in rows]


def waiting_emails(job: DocumentJob) -> list[tuple[DocumentJobItem, Person, str]]:
    """Return the ready items of people who get an e-mail and whose e-mail is not queued yet."""
    rows = db.session.execute(
        select(DocumentJobItem, Person)
        .join(Person, Person.id == DocumentJobItem.owner_id)
        .options(
            selectinload(DocumentJobItem.pdf),
            selectinload(DocumentJobItem.png),
            selectinload(DocumentJobItem.body),
        )
        .where(
            DocumentJobItem.job_id == job.id,
            DocumentJobItem.owner_kind == OwnerKind.PERSON,
            DocumentJobItem.state == ItemState.READY,
            DocumentJobItem.email_id.is_(None),
        )
        .order_by(DocumentJobItem.position)
    ).all()
    waiting = []
    for item, person in rows:
        address = address_of(person)
        if address is not None:
            waiting.append((item, person, address))
    return waiting


def _files_of(job: DocumentJob, item: DocumentJobItem, text) -> list[AttachmentSpec]:
    """Return the item's files in its e-mail: its PDF, its preview, its content in the body
    (HTML and ``text``, the stored plain text of it)."""
    files = []
    if job.attach_pdf and item.pdf is not None:
        files.append(AttachmentSpec(item.pdf, file_name(job, item.name), None, "application/pdf"))
    if job.inline_png and item.png is not None:
        name = file_name(job, item.name, "png")
        files.append(AttachmentSpec(item.png, name, DOCUMENT_PREVIEW, "image/png"))
    if job.inline_png and item.body is not None:
        html_name, text_name = file_name(job, item.name, "html"), file_name(job, item.name, "txt")
        files.append(AttachmentSpec(item.body, html_name, OWN_BODY, "text/html"))
        files.append(AttachmentSpec(text, text_name, OWN_BODY, "text/plain"))
    return files


def _texts_of(items: list[DocumentJobItem]) -> dict[int, Attachment]:
    """Store the plain text of each item's content in the body, at once; by item id."""
    bodied = [item for item in items if item.body is not None]
    texts = [
        (html_to_text(read_attachment(i.body).decode()).encode(), "text/plain") for i in bodied
    ]
    return {item.id: stored for item, stored in zip(bodied, store_attachments(texts), strict=True)}


def _copies_of(job: DocumentJob, item: DocumentJobItem, mail: MailDraft) -> list[Address]:
    """Return the addresses this item's own e-mail is copied to (a tutor), the valid ones."""
    registered = kind_of(job)
    if not mail.item_copies or registered is None or registered.copies_of is None:
        return []
    copies = []
    for name, address in registered.copies_of(job, item):
        try:
            copies.append(Address(checked_address(address, name), name, None))
        except InvalidHeader:
            log.info("print job %s: the copy of %s to %r left out", job.id, item.name, address)
    return copies


def queue_ready_emails(job: DocumentJob) -> list[int]:
    """Queue the e-mails of the job's ready documents not queued yet; return their ids (flushed).

    Only the holder of the job's lease calls this. The first call writes the mailing.
    """
    if not job.mail or job.output != Output.EMAIL:
        return []
    waiting = waiting_emails(job)
    if not waiting:
        return []
    mail = MailDraft.from_json(job.mail)
    cc, bcc = _addresses(mail.cc), _addresses(mail.bcc)
    texts = _texts_of([item for item, _person, _address in waiting]) if job.inline_png else {}
    emails = [
        EmailSpec(
            to=[Address(address, compose.person_name(person), person.id)],
            cc=[*cc, *_copies_of(job, item, mail)],
            bcc=bcc,
            attachments=_files_of(job, item, texts.get(item.id)),
        )
        for item, person, address in waiting
    ]
    if job.mailing_id is None:
        files = [
            AttachmentSpec(db.session.get(Attachment, f["attachment_id"]), f["filename"], f["cid"])
            for f in mail.files
        ]
        mailing = queue_mailing(
            author_id=job.user_id,
            sender=Sender(**mail.sender),
            subject=mail.subject,
            text_body=mail.text_body,
            html_body=mail.html_body,
            emails=emails,
            kind=MailingKind.DOCUMENT,
            attachments=files,
            hide_recipients=mail.hide_recipients,
        )
        job.mailing_id = mailing.id
        email_ids = list(
            db.session.scalars(
                select(OutboundEmail.id)
                .where(OutboundEmail.mailing_id == mailing.id)
                .order_by(OutboundEmail.id)
            )
        )
    else:
        email_ids = queue_more_emails(db.session.get(Mailing, job.mailing_id), emails)
    for (item, _person, _address), email_id in zip(waiting, email_ids, strict=True):
        item.email_id = email_id
    db.session.flush()
    log.info("print job %s: %s e-mails queued", job.id, len(email_ids))
    return email_ids


def jobs_with_mail_to_queue() -> list[int]:
    """Return the finished jobs whose e-mail was sent but whose mailing was never written."""
    return list(
        db.session.scalars(
            select(DocumentJob.id).where(
                DocumentJob.mail.is_not(None),
                DocumentJob.mailing_id.is_(None),
                DocumentJob.error.is_(None),
                DocumentJob.state == JobState.DONE,
                or_(DocumentJob.lease_until.is_(None), DocumentJob.lease_until < utcnow()),
            )
        )
    )


def printed_items(job: DocumentJob) -> list[DocumentJobItem]:
    """Return the ready items of the printed copy of an e-mail job: everyone's, or only those of
    people who get no e-mail (no valid address), in list order."""
    if job.output != Output.EMAIL or job.print_copy == PrintCopy.NONE:
        return []
    ready = [i for i in job.items if i.state == ItemState.READY and i.pdf_id is not None]
    if job.print_copy == PrintCopy.ALL:
        return ready
    people = {p.id: p for p in people_of(job)}
    return [
        item
        for item in ready
        if item.owner_kind == OwnerKind.PERSON
        and (item.owner_id not in people or address_of(people[item.owner_id]) is None)
    ]


def recipients_summary(job: DocumentJob):
    """Return who the job's e-mails go to, as the composer counts them (``directory.reach``)."""
    return reachability(people_of(job))
