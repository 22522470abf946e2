"""A user's saved e-mails (modèles) and scanned signature: save, fill, rename, delete."""

from __future__ import annotations

import logging

from flask import abort, current_app
from flask_babel import gettext as _
from sqlalchemy import select

from hpmail.compose.models import Signature, Template, TemplateAttachment
from hpmail.compose.richtext import sanitize_html
from hpmail.compose.service import Draft
from hpmail.compose.uploads import KeptFile, Upload, image_type
from hpmail.core.forms import InputRefused
from hpmail.core.text import is_header_safe, without_unsafe_characters
from hpmail.core.time import utcnow
from hpmail.extensions import db
from hpmail.outbox.attachments import store_attachment

log = logging.getLogger(__name__)
LABEL_MAX = 120


class TemplateRefused(InputRefused):
    """A template label or signature that cannot be saved."""


def templates_of(user) -> list[Template]:
    """Return the user's templates, by label."""
    return list(
        db.session.scalars(
            select(Template).where(Template.owner_id == user.id).order_by(Template.label)
        )
    )


def template_for(user, template_id: int) -> Template:
    """Return the user's template of this id, or 404 (another user's templates do not exist)."""
    template = db.session.get(Template, template_id)
    if template is None or template.owner_id != user.id:
        abort(404)
    return template


def checked_label_text(label: str) -> str:
    """Return the label stripped if it is a one-line name of the allowed length, or refuse it.

    Checked before any query looks the label up: PostgreSQL refuses a NUL character in a
    parameter outright, where SQLite would only find nothing.
    """
    label = (label or "").strip()
    if not label:
        raise TemplateRefused(_("Give the template a name."), field="template_label")
    if len(label) > LABEL_MAX or not is_header_safe(label):
        raise TemplateRefused(
            _("The name must fit on one line (%(max)s characters at most).", max=LABEL_MAX),
            field="template_label",
        )
    return label


def check_label(user, label: str, keep: Template | None = None) -> str:
    """Return the label stripped, or raise TemplateRefused."""
    label = checked_label_text(label)
    clash = db.session.scalar(
        select(Template).where(Template.owner_id == user.id, Template.label == label)
    )
    if clash is not None and clash is not keep:
        raise TemplateRefused(
            _("You already have a template named « %(label)s ».", label=label),
            field="template_label",
        )
    return label


def save_template(
    user, label: str, draft: Draft, uploads: list[Upload], kept: list[KeptFile]
) -> Template:
    """Save the composer's content under ``label`` (replacing the user's template of that name)."""
    label = checked_label_text(label)
    existing = db.session.scalar(
        select(Template).where(Template.owner_id == user.id, Template.label == label)
    )
    template = existing or Template(owner_id=user.id, label=label)
    template.subject = without_unsafe_characters(draft.subject)[:998]
    template.html_body = sanitize_html(draft.body)
    template.recipient_kinds = ",".join(k for k in draft.kinds if k.isalpha())[:60]
    template.cc, template.bcc = draft.cc, draft.bcc
    template.insert_signature = draft.insert_signature
    template.one_per_recipient = draft.one_per_recipient
    files = [
        (store_attachment(u.data, u.accepted_type), u.filename, u.accepted_type) for u in uploads
    ]
    files += [(k.attachment, k.filename, k.content_type) for k in kept]
    template.attachments = [
        TemplateAttachment(attachment=a, filename=f, content_type=t) for a, f, t in files
    ]
    template.updated_at = utcnow()
    db.session.add(template)
    db.session.flush()
    log.info("user %s saved template %s %r", user.login, template.id, label)
    return template


def rename_template(user, template: Template, label: str) -> None:
    """Give the user's template a new label."""
    template.label = check_label(user, label, keep=template)
    db.session.flush()
    log.info("user %s renamed template %s to %r", user.login, template.id, template.label)


def delete_template(user, template: Template) -> None:
    """Delete the user's template (its stored files stay: e-mails may carry them)."""
    db.session.delete(template)
    db.session.flush()
    log.info("user %s deleted template %s", user.login, template.id)


def draft_of(template: Template) -> Draft:
    """Return the composer's content as the template saved it."""
    return Draft(
        kinds=template.kinds,
        cc=template.cc,
        bcc=template.bcc,
        subject=template.subject,
        body=template.html_body,
        insert_signature=template.insert_signature,
        one_per_recipient=template.one_per_recipient,
    )


def save_signature(user, upload: Upload) -> Signature:
    """Store the user's scanned signature (PNG or JPEG, size-limited), replacing the old one."""
    limit = current_app.config["SIGNATURE_MAX_BYTES"]
    content_type = image_type(upload.data)
    if content_type is None:
        raise TemplateRefused(_("The signature must be a PNG or JPEG image."))
    if upload.size > limit:
        raise TemplateRefused(_("The signature image is over %(limit)s KB.", limit=limit // 1024))
    attachment = store_attachment(upload.data, content_type)
    signature = db.session.get(Signature, user.id) or Signature(user_id=user.id)
    signature.attachment = attachment
    signature.filename = "signature." + ("png" if content_type == "image/png" else "jpg")
    signature.uploaded_at = utcnow()
    db.session.add(signature)
    db.session.flush()
    log.info("user %s uploaded a signature (%d bytes)", user.login, upload.size)
    return signature


def delete_signature(user) -> None:
    """Remove the user's signature."""
    signature = db.session.get(Signature, user.id)
    if signature is not None:
        db.session.delete(signature)
        db.session.flush()
        log.info("user %s removed their signature", user.login)
