"""What a document says: a timetable (week grids) or a summary (courses over a period), as data.

The print templates and the browser pages read these; nothing here knows HTML or PDF. A document
is made for an *owner*: a person (teacher or student), a cohort or a group.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, time
from enum import StrEnum

from sqlalchemy import select

from hpmail.directory.models import KIND_NAMES, Cohort, Group, Person, PersonKind
from hpmail.documents.layout import DocumentKind, Period
from hpmail.documents.schedule import (
    CourseInfo,
    Occurrence,
    Schedule,
    courses_of_person,
    memberships,
)
from hpmail.extensions import db

COURSE_TYPES = ("CM", "TD", "TP")
# Heures équivalent TD: a lecture hour counts one and a half (French rule for teaching load).
TD_EQUIVALENT = {"CM": 1.5, "TD": 1.0, "TP": 1.0}


class OwnerKind(StrEnum):
    PERSON = "person"
    COHORT = "cohort"
    GROUP = "group"


@dataclass(frozen=True)
class Owner:
    """Whom a document is for: its name as printed, and what it says under the name."""

    kind: OwnerKind
    id: int
    name: str
    detail: str = ""  # "Étudiant — L2 Droit, TD1, TP2", "Enseignant", "Promotion"…
    person_kind: str | None = None  # teacher, student or staff, for a person


@dataclass(frozen=True)
class WeekGrid:
    """One week of a timetable: Monday's date and the courses of Monday to Saturday."""

    monday: date
    occurrences: tuple[Occurrence, ...]

    def on(self, weekday: int) -> list[Occurrence]:
        return [o for o in self.occurrences if o.day.weekday() == weekday]

    @property
    def hours(self) -> float:
        return sum(o.hours for o in self.occurrences)


@dataclass(frozen=True)
class Timetable:
    owner: Owner
    period: Period
    weeks: tuple[WeekGrid, ...]
    kind: DocumentKind = DocumentKind.TIMETABLE

    @property
    def is_empty(self) -> bool:
        return not any(week.occurrences for week in self.weeks)

    def first_and_last_hours(self) -> tuple[time, time]:
        """The day's span to draw: 8:00–18:00 at least, wider when a course needs it."""
        starts = [o.start for w in self.weeks for o in w.occurrences] + [time(8)]
        ends = [o.end for w in self.weeks for o in w.occurrences] + [time(18)]
        first, last = min(starts), max(ends)
        return time(first.hour), time(min(23, last.hour + (1 if last.minute else 0)))

    def shared_key(self) -> tuple:
        """What the document shows apart from its owner: equal keys draw the same grid."""
        return (self.kind, self.period, self.weeks)


@dataclass(frozen=True)
class SummaryLine:
    """One course over the period."""

    course: CourseInfo
    weekly_hours: float
    sessions: int
    total_hours: float


@dataclass(frozen=True)
class Summary:
    owner: Owner
    period: Period
    lines: tuple[SummaryLine, ...]
    kind: DocumentKind = DocumentKind.SUMMARY
    totals_by_type: dict[str, float] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def total_hours(self) -> float:
        return sum(line.total_hours for line in self.lines)

    @property
    def teaching_load(self) -> float | None:
        """A teacher's load in heures équivalent TD over the period; None for others."""
        if self.owner.person_kind != PersonKind.TEACHER:
            return None
        return sum(
            TD_EQUIVALENT.get(line.course.course_type, 1.0) * line.total_hours
            for line in self.lines
        )

    def shared_key(self) -> tuple:
        return (self.kind, self.period, self.lines, self.owner.person_kind)


Document = Timetable | Summary


def _timetable(owner: Owner, occurrences: list[Occurrence], period: Period) -> Timetable:
    by_week: dict[date, list[Occurrence]] = defaultdict(list)
    for occurrence in occurrences:
        if occurrence.day.weekday() < 6:  # Monday to Saturday
            by_week[Period.week_of(occurrence.day).start].append(occurrence)
    weeks = tuple(WeekGrid(monday, tuple(by_week.get(monday, ()))) for monday in period.mondays())
    return Timetable(owner, period, weeks)


def _summary(
    owner: Owner, schedule: Schedule, occurrences: list[Occurrence], period: Period
) -> Summary:
    counts: dict[int, list[Occurrence]] = defaultdict(list)
    for occurrence in occurrences:
        counts[occurrence.course.id].append(occurrence)
    lines = tuple(
        sorted(
            (
                SummaryLine(
                    course=found[0].course,
                    weekly_hours=schedule.weekly_hours(course_id),
                    sessions=len(found),
                    total_hours=sum(o.hours for o in found),
                )
                for course_id, found in counts.items()
            ),
            key=lambda line: (
                line.course.subject,
                COURSE_TYPES.index(line.course.course_type)
                if line.course.course_type in COURSE_TYPES
                else 9,
                line.course.id,
            ),
        )
    )
    totals: dict[str, float] = {}
    for line in lines:
        totals[line.course.course_type] = (
            totals.get(line.course.course_type, 0.0) + line.total_hours
        )
    return Summary(owner, period, lines, totals_by_type=totals)


def _make(
    kind: DocumentKind, owner: Owner, schedule: Schedule, course_ids: set[int], period: Period
) -> Document:
    occurrences = schedule.occurrences(course_ids, period)
    if kind == DocumentKind.TIMETABLE:
        return _timetable(owner, occurrences, period)
    return _summary(owner, schedule, occurrences, period)


def person_documents(
    kind: DocumentKind, person_ids: list[int], period: Period, schedule: Schedule | None = None
) -> dict[int, Document]:
    """Return each person's document, keyed by person id (unknown ids are left out)."""
    schedule = schedule or Schedule.load()
    found = memberships(person_ids)
    names = _person_owners(person_ids, found)
    documents = {}
    for pid in person_ids:
        if pid not in found or pid not in names:
            continue
        person_kind, cohort_id, group_ids = found[pid]
        course_ids = courses_of_person(schedule, person_kind, cohort_id, group_ids, pid)
        documents[pid] = _make(kind, names[pid], schedule, course_ids, period)
    return documents


def cohort_document(
    kind: DocumentKind, cohort: Cohort, period: Period, schedule: Schedule | None = None
) -> Document:
    """Return the document of a whole cohort (its courses and all its groups')."""
    schedule = schedule or Schedule.load()
    owner = Owner(OwnerKind.COHORT, cohort.id, cohort.name)
    return _make(kind, owner, schedule, schedule.courses_of_cohort(cohort.id), period)


def group_document(
    kind: DocumentKind, group: Group, period: Period, schedule: Schedule | None = None
) -> Document:
    """Return the document of a group (its courses and its cohort's lectures)."""
    schedule = schedule or Schedule.load()
    owner = Owner(OwnerKind.GROUP, group.id, f"{group.cohort.name} — {group.name}")
    return _make(kind, owner, schedule, schedule.courses_of_group(group.id), period)


def _person_owners(
    person_ids: list[int], found: dict[int, tuple[str, int | None, list[int]]]
) -> dict[int, Owner]:
    """The name and the line under it of each person (kind, cohort and groups for a student).

    ``found`` is their ``memberships``, already read by the caller.
    """
    cohort_names = dict(db.session.execute(select(Cohort.id, Cohort.name)).all())
    group_names = dict(db.session.execute(select(Group.id, Group.name)).all())
    owners = {}
    for chunk_start in range(0, len(person_ids), 500):
        chunk = person_ids[chunk_start : chunk_start + 500]
        for person in db.session.scalars(select(Person).where(Person.id.in_(chunk))):
            _kind, cohort_id, group_ids = found.get(person.id, (person.kind, None, []))
            parts = [cohort_names.get(cohort_id, "")] if cohort_id else []
            parts += sorted(group_names[g] for g in group_ids if g in group_names)
            detail = str(KIND_NAMES.get(person.kind, ""))
            if parts:
                detail += " — " + ", ".join(parts)
            owners[person.id] = Owner(
                OwnerKind.PERSON,
                person.id,
                f"{person.first_name} {person.last_name}".strip(),
                detail,
                person.kind,
            )
    return owners
