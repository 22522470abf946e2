"""The school's letterhead, and print jobs: documents rendered in the worker, with progress."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hpmail.core.time import utcnow
from hpmail.extensions import db
from hpmail.outbox.models import Attachment


class Letterhead(db.Model):
    """The one row (id 1) of the school's header on every printed document, set by the admin."""

    __tablename__ = "letterhead"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(Text, default="")  # a few lines
    town: Mapped[str] = mapped_column(String(120), default="")  # for "Fait à …, le …"
    # The logo, stored once by content hash like every file (PNG or JPEG).
    logo_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"))


class JobState(StrEnum):
    WAITING = "waiting"  # made by the print dialog, not yet started
    RENDERING = "rendering"  # in the worker
    DONE = "done"
    FAILED = "failed"  # nothing could be rendered; the reason is in ``error``
    CANCELLED = "cancelled"


class ItemState(StrEnum):
    PENDING = "pending"
    READY = "ready"  # rendered, files stored
    FAILED = "failed"  # this person's document could not be rendered; ``error`` says why


class DocumentJob(db.Model):
    """One click on "Imprimer": a document kind, its layout, its people, and where it goes."""

    __tablename__ = "document_job"
    __table_args__ = (
        CheckConstraint(
            "state IN ('waiting', 'rendering', 'done', 'failed', 'cancelled')", name="state"
        ),
        CheckConstraint("kind IN ('timetable', 'summary')", name="kind"),
        CheckConstraint("output IN ('printer', 'pdf', 'email')", name="output"),
        CheckConstraint("print_copy IN ('none', 'all', 'without_email')", name="print_copy"),
        Index("ix_document_job_state_lease", "state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # The print dialog's one-time token: a replayed POST finds this job instead of a second.
    request_token: Mapped[str | None] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    output: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[datetime] = mapped_column(DateTime)
    period_end: Mapped[datetime] = mapped_column(DateTime)
    layout: Mapped[str] = mapped_column(Text, default="{}")  # documents.layout.Layout as JSON
    attach_pdf: Mapped[bool] = mapped_column(Boolean, default=True)
    inline_png: Mapped[bool] = mapped_column(Boolean, default=False)
    print_copy: Mapped[str] = mapped_column(String(15), default="none")
    state: Mapped[str] = mapped_column(String(10), default=JobState.WAITING, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    # A worker holds the job until then; past it, the sweeper hands the job to another worker.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    # For an e-mail output, the message the user wrote and pressed "Envoyer" on (JSON: subject,
    # bodies, sender, files, copies, ``documents.mailing.MailDraft``): each person's e-mail is
    # queued from it as soon as their document is ready, by the worker or the request.
    mail: Mapped[str | None] = mapped_column(Text)
    # The mailing queued for an e-mail output, once the user has pressed "Envoyer".
    mailing_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing.id", ondelete="SET NULL"), index=True
    )
    # The printed copy (one PDF) or the ZIP of PDFs, once ready.
    output_file_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"))
    output_filename: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    output_file: Mapped[Attachment | None] = relationship(foreign_keys=[output_file_id])
    items: Mapped[list[DocumentJobItem]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="DocumentJobItem.position"
    )


class DocumentJobItem(db.Model):
    """One document of a job: whose it is, and its rendered files once ready."""

    __tablename__ = "document_job_item"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'ready', 'failed')", name="state"),
        CheckConstraint("owner_kind IN ('person', 'cohort', 'group')", name="owner_kind"),
        Index("ix_document_job_item_job_state", "job_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("document_job.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # the order of the list the user printed from
    owner_kind: Mapped[str] = mapped_column(String(10), default="person")
    owner_id: Mapped[int] = mapped_column(Integer)  # a person, cohort or group id
    name: Mapped[str] = mapped_column(String(300))  # as shown in progress and error reports
    state: Mapped[str] = mapped_column(String(10), default=ItemState.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    pdf_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"))
    png_id: Mapped[int | None] = mapped_column(ForeignKey("attachment.id"))
    # The e-mail that carries this document, once queued.
    email_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbound_email.id", ondelete="SET NULL"), index=True
    )

    job: Mapped[DocumentJob] = relationship(back_populates="items")
    pdf: Mapped[Attachment | None] = relationship(foreign_keys=[pdf_id])
    png: Mapped[Attachment | None] = relationship(foreign_keys=[png_id])
