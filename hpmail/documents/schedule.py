"""The school's courses read once, and who attends which: the data every document is made from.

A document mailing may cover 2,000 people: the courses, their slots, sessions, teachers and groups
are loaded in a handful of queries (``Schedule.load``), then each person's timetable or summary is
computed in memory.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from hpmail.directory.models import (
    Cohort,
    Course,
    CourseSession,
    CourseSlot,
    Group,
    Person,
    PersonKind,
    course_cohort,
    course_group,
    course_teacher,
    person_group,
)
from hpmail.documents.layout import Period
from hpmail.extensions import db


@dataclass(frozen=True)
class CourseInfo:
    """A course as documents show it."""

    id: int
    subject: str
    course_type: str  # CM, TD or TP
    room: str
    teachers: tuple[str, ...]
    audience: tuple[str, ...]  # cohort and group names, e.g. ("L2 Droit", "TD1")


@dataclass(frozen=True)
class Occurrence:
    """A course taking place on a day, from ``start`` to ``end``."""

    course: CourseInfo
    day: date
    start: time
    end: time

    @property
    def hours(self) -> float:
        return _hours(self.start, self.end)


def _hours(start: time, end: time) -> float:
    delta = datetime.combine(date.min, end) - datetime.combine(date.min, start)
    return delta.total_seconds() / 3600


class Schedule:
    """Every course with its weekly slots and dated sessions, and the audience of each."""

    def __init__(self) -> None:
        self.courses: dict[int, CourseInfo] = {}
        self.slots: dict[int, list[tuple[int, time, time]]] = defaultdict(list)
        self.sessions: dict[int, list[tuple[date, time, time]]] = defaultdict(list)
        self.by_teacher: dict[int, set[int]] = defaultdict(set)
        self.by_cohort: dict[int, set[int]] = defaultdict(set)
        self.by_group: dict[int, set[int]] = defaultdict(set)
        self.group_cohort: dict[int, int] = {}

    @classmethod
    def load(cls) -> Schedule:
        """Read every course and its audience from the database (six queries)."""
        schedule = cls()
        people = {}
        for course_id, person_id, last, first in db.session.execute(
            select(course_teacher.c.course_id, Person.id, Person.last_name, Person.first_name).join(
                Person, Person.id == course_teacher.c.person_id
            )
        ):
            schedule.by_teacher[person_id].add(course_id)
            people.setdefault(course_id, []).append(f"{first} {last}".strip())
        audience: dict[int, list[str]] = defaultdict(list)
        cohort_names = dict(db.session.execute(select(Cohort.id, Cohort.name)).all())
        for course_id, cohort_id in db.session.execute(select(course_cohort)):
            schedule.by_cohort[cohort_id].add(course_id)
            audience[course_id].append(cohort_names[cohort_id])
        groups = {
            gid: (cid, name)
            for gid, cid, name in db.session.execute(select(Group.id, Group.cohort_id, Group.name))
        }
        schedule.group_cohort = {gid: cid for gid, (cid, _name) in groups.items()}
        for course_id, group_id in db.session.execute(select(course_group)):
            schedule.by_group[group_id].add(course_id)
            cohort_id, name = groups[group_id]
            audience[course_id].append(f"{cohort_names[cohort_id]} {name}")
        for course_id, weekday, start, end in db.session.execute(
            select(
                CourseSlot.course_id, CourseSlot.weekday, CourseSlot.start_time, CourseSlot.end_time
            )
        ):
            schedule.slots[course_id].append((weekday, start, end))
        for course_id, day, start, end in db.session.execute(
            select(
                CourseSession.course_id,
                CourseSession.day,
                CourseSession.start_time,
                CourseSession.end_time,
            )
        ):
            schedule.sessions[course_id].append((day, start, end))
        for course in db.session.scalars(select(Course)):
            schedule.courses[course.id] = CourseInfo(
                id=course.id,
                subject=course.subject,
                course_type=course.course_type,
                room=course.room or "",
                teachers=tuple(sorted(people.get(course.id, ()))),
                audience=tuple(sorted(audience.get(course.id, ()))),
            )
        return schedule

    # Who attends what.

    def courses_of_teacher(self, person_id: int) -> set[int]:
        return set(self.by_teacher.get(person_id, ()))

    def courses_of_cohort(self, cohort_id: int) -> set[int]:
        """The cohort's own courses and those of each of its groups."""
        ids = set(self.by_cohort.get(cohort_id, ()))
        for group_id, owner in self.group_cohort.items():
            if owner == cohort_id:
                ids |= self.by_group.get(group_id, set())
        return ids

    def courses_of_group(self, group_id: int) -> set[int]:
        """The group's courses and its cohort's whole-cohort courses (lectures)."""
        ids = set(self.by_group.get(group_id, ()))
        cohort_id = self.group_cohort.get(group_id)
        if cohort_id is not None:
            ids |= self.by_cohort.get(cohort_id, set())
        return ids

    def courses_of_student(self, cohort_id: int | None, group_ids: list[int]) -> set[int]:
        """The student's cohort's courses and their groups' courses."""
        ids = set(self.by_cohort.get(cohort_id, ())) if cohort_id is not None else set()
        for group_id in group_ids:
            ids |= self.by_group.get(group_id, set())
        return ids

    # When.

    def occurrences(self, course_ids: set[int], period: Period) -> list[Occurrence]:
        """Return each course's occurrences in ``period``, by day and time.

        A course's dated sessions override its weekly slots: in a week where the course has a
        dated session, only its sessions of that week are shown.
        """
        found = []
        for course_id in course_ids:
            course = self.courses.get(course_id)
            if course is None:
                continue
            dated_weeks = {
                day - timedelta(days=day.weekday())
                for day, _s, _e in self.sessions.get(course_id, ())
            }
            for day, start, end in self.sessions.get(course_id, ()):
                if day in period:
                    found.append(Occurrence(course, day, start, end))
            for monday in period.mondays():
                if monday in dated_weeks:
                    continue
                for weekday, start, end in self.slots.get(course_id, ()):
                    day = monday + timedelta(days=weekday)
                    if day in period:
                        found.append(Occurrence(course, day, start, end))
        found.sort(key=lambda o: (o.day, o.start, o.course.subject, o.course.id))
        return found

    def weekly_hours(self, course_id: int) -> float:
        """Hours a week of the course's weekly slots."""
        return sum(_hours(start, end) for _w, start, end in self.slots.get(course_id, ()))


def memberships(person_ids: list[int]) -> dict[int, tuple[str, int | None, list[int]]]:
    """Return, for each person, their kind, cohort and groups, in two queries."""
    found: dict[int, tuple[str, int | None, list[int]]] = {}
    for chunk_start in range(0, len(person_ids), 500):
        chunk = person_ids[chunk_start : chunk_start + 500]
        for pid, kind, cohort_id in db.session.execute(
            select(Person.id, Person.kind, Person.cohort_id).where(Person.id.in_(chunk))
        ):
            found[pid] = (kind, cohort_id, [])
        for pid, group_id in db.session.execute(
            select(person_group.c.person_id, person_group.c.group_id).where(
                person_group.c.person_id.in_(chunk)
            )
        ):
            found[pid][2].append(group_id)
    return found


def courses_of_person(
    schedule: Schedule, kind: str, cohort_id: int | None, group_ids: list[int], person_id: int
) -> set[int]:
    """The courses a person teaches (teacher) or attends (student); staff have none."""
    if kind == PersonKind.TEACHER:
        return schedule.courses_of_teacher(person_id)
    if kind == PersonKind.STUDENT:
        return schedule.courses_of_student(cohort_id, group_ids)
    return set()
