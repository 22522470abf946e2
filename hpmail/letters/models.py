"""Letter templates: a category (whose record fills the fields), a title, a subject and a body."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hpmail.auth.models import User
from hpmail.core.time import utcnow
from hpmail.extensions import db


class Category(StrEnum):
    """What a letter is written for: the record its fields are read from."""

    STUDENTS = "students"
    TEACHERS = "teachers"
    STAFF = "staff"
    ABSENCES = "absences"  # a student and their absences in the selection
    INTERNSHIPS = "internships"  # one internship of a student


CATEGORY_LABELS = {
    Category.STUDENTS: _l("Students"),
    Category.TEACHERS: _l("Teachers"),
    Category.STAFF: _l("Staff"),
    Category.ABSENCES: _l("Absences"),
    Category.INTERNSHIPS: _l("Internships"),
}

TITLE_MAX_LENGTH = 200
SUBJECT_MAX_LENGTH = 255
BODY_MAX_LENGTH = 100_000


class LetterTemplate(db.Model):
    """A form letter the admin or the staff wrote, with fields filled for each record."""

    __tablename__ = "letter_template"
    __table_args__ = (
        CheckConstraint(
            "category IN ('students', 'teachers', 'staff', 'absences', 'internships')",
            name="category",
        ),
        Index("ix_letter_template_category_title", "category", "title"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(12))
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX_LENGTH), default="")
    # Sanitised HTML (the composer's rules) holding the fields, one paragraph a line.
    body_html: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    updated_by: Mapped[User | None] = relationship(foreign_keys=[updated_by_id])

    @property
    def category_label(self) -> str:
        return str(CATEGORY_LABELS[Category(self.category)])
