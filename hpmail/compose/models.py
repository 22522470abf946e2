"""A user's saved e-mails (templates, "modèles") and their scanned signature."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hpmail.core.time import utcnow
from hpmail.extensions import db
from hpmail.outbox.models import Attachment


class Template(db.Model):
    """A user's saved e-mail: label, subject, body, recipient-type choices, attachments."""

    __tablename__ = "compose_template"
    __table_args__ = (
        UniqueConstraint("owner_id", "label", name="uq_compose_template_owner_label"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(String(998), default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    # Comma-separated person kinds ticked among the direct recipients ("teacher,student").
    recipient_kinds: Mapped[str] = mapped_column(String(60), default="")
    cc: Mapped[str] = mapped_column(Text, default="")
    bcc: Mapped[str] = mapped_column(Text, default="")
    insert_signature: Mapped[bool] = mapped_column(Boolean, default=False)
    one_per_recipient: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    attachments: Mapped[list[TemplateAttachment]] = relationship(
        cascade="all, delete-orphan", order_by="TemplateAttachment.id"
    )

    @property
    def kinds(self) -> list[str]:
        return [k for k in self.recipient_kinds.split(",") if k]


class TemplateAttachment(db.Model):
    """A file a template carries, by the stored Attachment and its file name."""

    __tablename__ = "compose_template_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(
        ForeignKey("compose_template.id", ondelete="CASCADE"), index=True
    )
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachment.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")

    attachment: Mapped[Attachment] = relationship(lazy="joined")


class Signature(db.Model):
    """A user's scanned signature (PNG or JPEG), inserted inline in the e-mails they ask."""

    __tablename__ = "compose_signature"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachment.id"))
    filename: Mapped[str] = mapped_column(String(255))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    attachment: Mapped[Attachment] = relationship(lazy="joined")
