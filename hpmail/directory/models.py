"""People (teachers, students, staff), cohorts, groups and courses."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    Time,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hpmail.core.database import trigram_index
from hpmail.core.text import fold
from hpmail.core.time import utcnow
from hpmail.directory.text import search_text_for
from hpmail.extensions import db


class PersonKind(StrEnum):
    TEACHER = "teacher"
    STUDENT = "student"
    STAFF = "staff"


class EmailStatus(StrEnum):
    """Whether a person's address can receive e-mail: kept even when invalid, never dropped."""

    MISSING = "missing"
    VALID = "valid"
    INVALID = "invalid"
    # Valid, but an SMTP server answered that the mailbox or its domain does not exist (5.1.1,
    # 5.1.2): unreachable until the address changes or an admin clears the mark.
    REFUSED = "refused"


# What each kind and each address status is called: every page, menu and module reads these.
KIND_PLURALS = {
    PersonKind.TEACHER: _l("Teachers"),
    PersonKind.STUDENT: _l("Students"),
    PersonKind.STAFF: _l("Staff"),
}
KIND_NAMES = {
    PersonKind.TEACHER: _l("Teacher"),
    PersonKind.STUDENT: _l("Student"),
    PersonKind.STAFF: _l("Staff member"),
}
EMAIL_STATUS_LABELS = {
    EmailStatus.VALID: _l("Valid address"),
    EmailStatus.INVALID: _l("Invalid address"),
    EmailStatus.MISSING: _l("Address missing"),
    EmailStatus.REFUSED: _l("Refused by the server"),
}


person_group = Table(
    "person_group",
    db.metadata,
    Column("person_id", ForeignKey("person.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("group.id", ondelete="CASCADE"), primary_key=True, index=True),
)
course_teacher = Table(
    "course_teacher",
    db.metadata,
    Column("course_id", ForeignKey("course.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True),
)
course_cohort = Table(
    "course_cohort",
    db.metadata,
    Column("course_id", ForeignKey("course.id", ondelete="CASCADE"), primary_key=True),
    Column("cohort_id", ForeignKey("cohort.id", ondelete="CASCADE"), primary_key=True, index=True),
)
course_group = Table(
    "course_group",
    db.metadata,
    Column("course_id", ForeignKey("course.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("group.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Cohort(db.Model):
    """A promotion: students belong to one; its teaching team is the teachers of its courses."""

    __tablename__ = "cohort"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)

    groups: Mapped[list[Group]] = relationship(back_populates="cohort", order_by="Group.name")
    students: Mapped[list[Person]] = relationship(back_populates="cohort")


class Group(db.Model):
    """A TD/TP group, a subset of a cohort."""

    __tablename__ = "group"
    __table_args__ = (db.UniqueConstraint("cohort_id", "name", name="uq_group_cohort_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))

    cohort: Mapped[Cohort] = relationship(back_populates="groups")
    members: Mapped[list[Person]] = relationship(secondary=person_group, back_populates="groups")


class Person(db.Model):
    """A directory entry. The e-mail is optional and kept as typed, with its validity."""

    __tablename__ = "person"
    __table_args__ = (
        CheckConstraint("kind IN ('teacher', 'student', 'staff')", name="kind"),
        CheckConstraint(
            "email_status IN ('missing', 'valid', 'invalid', 'refused')", name="email_status"
        ),
        db.UniqueConstraint("kind", "external_id", name="uq_person_kind_external_id"),
        Index("ix_person_kind_sort", "kind", "last_name", "first_name"),
        # The lists sort on accent-free keys, filtered by kind and often by cohort.
        Index("ix_person_kind_last_key", "kind", "last_name_key", "first_name_key", "id"),
        Index("ix_person_kind_first_key", "kind", "first_name_key", "last_name_key", "id"),
        Index("ix_person_kind_email", "kind", "email", "id"),
        # Lets the text filter count its matches from the index alone (SQLite scans it); on
        # PostgreSQL the filter's LIKE '%word%' finds its rows in the trigram index.
        Index("ix_person_kind_search", "kind", "search_text"),
        trigram_index("ix_person_search_trgm", "search_text"),
        Index(
            "ix_person_kind_cohort_last_key",
            "kind",
            "cohort_id",
            "last_name_key",
            "first_name_key",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), index=True)
    external_id: Mapped[str | None] = mapped_column(String(64))
    last_name: Mapped[str] = mapped_column(String(120))
    first_name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    email_status: Mapped[str] = mapped_column(String(10), default=EmailStatus.MISSING, index=True)
    # Set with ``EmailStatus.REFUSED``: when the recipient's server refused the address, its words.
    email_refused_at: Mapped[datetime | None] = mapped_column(DateTime)
    email_refused_reply: Mapped[str | None] = mapped_column(Text)
    cohort_id: Mapped[int | None] = mapped_column(
        ForeignKey("cohort.id", ondelete="SET NULL"), index=True
    )
    # Lower-case, accent-free "last first email", for the text filter (kept up to date on flush).
    search_text: Mapped[str] = mapped_column(String(500), default="", index=True)
    # Accent-free sort keys, so that "Élodie" sorts with the E's.
    last_name_key: Mapped[str] = mapped_column(String(120), default="")
    first_name_key: Mapped[str] = mapped_column(String(120), default="")

    cohort: Mapped[Cohort | None] = relationship(back_populates="students")
    groups: Mapped[list[Group]] = relationship(secondary=person_group, back_populates="members")

    @property
    def full_name(self) -> str:
        return f"{self.last_name.upper()} {self.first_name}".strip()

    def __repr__(self) -> str:
        return f"<Person {self.kind} {self.full_name}>"


class Course(db.Model):
    """A course: subject, type, room, weekly slots or dated sessions, teachers, audience."""

    __tablename__ = "course"
    __table_args__ = (CheckConstraint("course_type IN ('CM', 'TD', 'TP')", name="course_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    course_type: Mapped[str] = mapped_column(String(2), default="CM")
    room: Mapped[str] = mapped_column(String(80), default="")

    slots: Mapped[list[CourseSlot]] = relationship(
        back_populates="course", cascade="all, delete-orphan", order_by="CourseSlot.weekday"
    )
    sessions: Mapped[list[CourseSession]] = relationship(
        back_populates="course", cascade="all, delete-orphan", order_by="CourseSession.day"
    )
    teachers: Mapped[list[Person]] = relationship(secondary=course_teacher)
    cohorts: Mapped[list[Cohort]] = relationship(secondary=course_cohort)
    groups: Mapped[list[Group]] = relationship(secondary=course_group)


class CourseSlot(db.Model):
    """A weekly time slot: weekday 0 (Monday) to 6, start and end time."""

    __tablename__ = "course_slot"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("start_time < end_time", name="slot_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int]
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)

    course: Mapped[Course] = relationship(back_populates="slots")


class CourseSession(db.Model):
    """A dated session of a course (optional, for courses that do not repeat weekly)."""

    __tablename__ = "course_session"
    __table_args__ = (CheckConstraint("start_time < end_time", name="session_order"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)

    course: Mapped[Course] = relationship(back_populates="sessions")


@event.listens_for(Person, "before_insert")
@event.listens_for(Person, "before_update")
def _fill_search_keys(_mapper, _connection, person: Person) -> None:
    """Keep the text filter and the sort keys in step with the names (bulk inserts set them)."""
    person.search_text = search_text_for(person.last_name, person.first_name, person.email)
    person.last_name_key = fold(person.last_name)
    person.first_name_key = fold(person.first_name or "")


class Absence(db.Model):
    """A student missing a course (or a slot of the day when no course matches)."""

    __tablename__ = "absence"
    __table_args__ = (
        CheckConstraint("start_time < end_time", name="absence_order"),
        # The list's sorts, each alone and after the justified filter.
        Index("ix_absence_day", "day", "start_time", "id"),
        Index("ix_absence_person_day", "person_id", "day", "start_time"),
        Index("ix_absence_justified_day", "justified", "day", "start_time", "id"),
        Index("ix_absence_course_day", "course_label", "day", "start_time", "id"),
        Index("ix_absence_minutes_day", "minutes", "day", "start_time", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    # How long it lasted, kept so that the list sorts by hours on an index (set on flush).
    minutes: Mapped[int] = mapped_column(default=0)
    course_id: Mapped[int | None] = mapped_column(
        ForeignKey("course.id", ondelete="SET NULL"), index=True
    )
    # The subject as the school's software named it; kept when no course of ours matches.
    course_label: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    justified: Mapped[bool] = mapped_column(Boolean, default=False)
    # The id in the file it was imported from, so that importing again updates it.
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    person: Mapped[Person] = relationship()
    course: Mapped[Course | None] = relationship()

    @property
    def hours(self) -> float:
        return self.minutes / 60


def minutes_between(start: time, end: time) -> int:
    """Return the minutes from ``start`` to ``end`` on the same day."""
    return (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)


class Internship(db.Model):
    """A student's internship: the company, its tutor, the dates and the subject."""

    __tablename__ = "internship"
    __table_args__ = (
        CheckConstraint("start_date <= end_date", name="internship_order"),
        CheckConstraint(
            "tutor_email_status IN ('missing', 'valid', 'invalid')", name="tutor_email_status"
        ),
        Index("ix_internship_start", "start_date", "end_date", "id"),
        Index("ix_internship_end", "end_date", "start_date", "id"),
        Index("ix_internship_company", "company_key", "start_date", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    company: Mapped[str] = mapped_column(String(200))
    # Lower-case, accent-free company name, for the company filter and sort (set on flush).
    company_key: Mapped[str] = mapped_column(String(200), default="")
    company_address: Mapped[str] = mapped_column(String(500), default="")
    tutor_name: Mapped[str] = mapped_column(String(200), default="")
    tutor_email: Mapped[str | None] = mapped_column(String(254))
    tutor_email_status: Mapped[str] = mapped_column(String(10), default=EmailStatus.MISSING)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    subject: Mapped[str] = mapped_column(String(500), default="")
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    person: Mapped[Person] = relationship()


@event.listens_for(Absence, "before_insert")
@event.listens_for(Absence, "before_update")
def _fill_minutes(_mapper, _connection, absence: Absence) -> None:
    absence.minutes = minutes_between(absence.start_time, absence.end_time)


@event.listens_for(Internship, "before_insert")
@event.listens_for(Internship, "before_update")
def _fill_company_key(_mapper, _connection, internship: Internship) -> None:
    internship.company_key = fold(internship.company)[:200]


class SelectionKind(StrEnum):
    """What a selection holds besides people of one kind."""

    ABSENCE = "absence"
    INTERNSHIP = "internship"


class Selection(db.Model):
    """People (or absences, internships) picked in a list, kept on the server.

    Kept on the server so that 2,000 students never make a URL. ``kind`` says what the list was:
    a kind of person (or none: people of every kind), ``absence`` or ``internship``.
    """

    __tablename__ = "selection"
    __table_args__ = (
        CheckConstraint(
            "kind IS NULL OR kind IN ('teacher', 'student', 'staff', 'absence', 'internship')",
            name="kind",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class SelectionMember(db.Model):
    """One person in a selection."""

    __tablename__ = "selection_member"

    selection_id: Mapped[int] = mapped_column(
        ForeignKey("selection.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SelectionAbsence(db.Model):
    """One absence in a selection of absences."""

    __tablename__ = "selection_absence"

    selection_id: Mapped[int] = mapped_column(
        ForeignKey("selection.id", ondelete="CASCADE"), primary_key=True
    )
    absence_id: Mapped[int] = mapped_column(
        ForeignKey("absence.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SelectionInternship(db.Model):
    """One internship in a selection of internships."""

    __tablename__ = "selection_internship"

    selection_id: Mapped[int] = mapped_column(
        ForeignKey("selection.id", ondelete="CASCADE"), primary_key=True
    )
    internship_id: Mapped[int] = mapped_column(
        ForeignKey("internship.id", ondelete="CASCADE"), primary_key=True, index=True
    )


def insert_many(model, rows: list[dict], key: tuple[str, ...] | None = None) -> list[int]:
    """Insert ``rows`` of ``model`` in one bulk statement and return their new ids, in order.

    The ids are read back by ``key`` (columns whose values are unique among the new rows), or,
    without a key, in id order. RETURNING in a guaranteed order would make SQLAlchemy insert row
    by row on SQLite.
    """
    if not rows:
        return []
    before = db.session.scalar(select(func.max(model.id))) or 0
    db.session.execute(insert(model), rows)
    columns = [getattr(model, name) for name in key or ()]
    query = select(model.id, *columns).where(model.id > before).order_by(model.id)
    found = db.session.execute(query).all()
    if key is None:
        ids = [row[0] for row in found]
    else:
        by_key = {tuple(row[1:]): row[0] for row in found}
        ids = [by_key[tuple(values.get(name) for name in key)] for values in rows]
    if len(ids) != len(rows):
        raise RuntimeError(f"{model.__name__}: {len(rows)} rows inserted, {len(ids)} found back")
    return ids
