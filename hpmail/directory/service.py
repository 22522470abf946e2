"""The directory's questions: a cohort's teaching team, a course's audience, the course list."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from sqlalchemy import Select, func, or_, select, union
from sqlalchemy.orm import selectinload

from hpmail.core.text import fold
from hpmail.directory.models import (
    Cohort,
    Course,
    Group,
    Person,
    PersonKind,
    course_cohort,
    course_group,
    course_teacher,
    person_group,
)
from hpmail.directory.people import MAX_QUERY_LENGTH, positive_int
from hpmail.extensions import db


def _by_name(query: Select) -> Select:
    return query.order_by(Person.last_name_key, Person.first_name_key, Person.id)


def cohort_course_ids(cohort: Cohort) -> Select:
    """Return the SELECT of the ids of the courses given to the cohort or one of its groups."""
    direct = select(course_cohort.c.course_id).where(course_cohort.c.cohort_id == cohort.id)
    through_groups = (
        select(course_group.c.course_id)
        .join(Group, Group.id == course_group.c.group_id)
        .where(Group.cohort_id == cohort.id)
    )
    return union(direct, through_groups)


def teaching_team(cohort: Cohort) -> list[Person]:
    """Return the teachers of the cohort's courses (and of its groups' courses), by name."""
    course_ids = cohort_course_ids(cohort).subquery()
    teacher_ids = select(course_teacher.c.person_id).where(
        course_teacher.c.course_id.in_(select(course_ids.c.course_id))
    )
    return list(db.session.scalars(_by_name(select(Person).where(Person.id.in_(teacher_ids)))))


def course_students(course: Course) -> Select:
    """Return the SELECT of the students of the course's cohorts and groups."""
    cohort_ids = select(course_cohort.c.cohort_id).where(course_cohort.c.course_id == course.id)
    group_ids = select(course_group.c.group_id).where(course_group.c.course_id == course.id)
    in_groups = select(person_group.c.person_id).where(person_group.c.group_id.in_(group_ids))
    return select(Person).where(
        Person.kind == PersonKind.STUDENT,
        or_(Person.cohort_id.in_(cohort_ids), Person.id.in_(in_groups)),
    )


def course_audience(course: Course) -> tuple[list[Person], list[Person]]:
    """Return (teachers, students) concerned by the course, each by name."""
    teacher_ids = select(course_teacher.c.person_id).where(course_teacher.c.course_id == course.id)
    teachers = db.session.scalars(_by_name(select(Person).where(Person.id.in_(teacher_ids))))
    students = db.session.scalars(
        _by_name(course_students(course)).options(selectinload(Person.cohort))
    )
    return list(teachers), list(students)


@dataclass(frozen=True)
class CourseFilter:
    """What the course list shows: text (subject, room, teacher), cohort, type, page."""

    q: str = ""
    cohort_id: int | None = None
    course_type: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args) -> CourseFilter:
        """Read a course filter from the query string, ignoring what makes no sense."""
        course_type = args.get("type", "")
        return cls(
            q=(args.get("q") or "").strip()[:MAX_QUERY_LENGTH],
            cohort_id=positive_int(args.get("cohort")),
            course_type=course_type if course_type in ("CM", "TD", "TP") else "",
            page=positive_int(args.get("page")) or 1,
        )

    def as_args(self, **changes) -> dict:
        """Return the query-string values of this filter (defaults left out)."""
        that = replace(self, **changes)
        values = {
            "q": that.q,
            "cohort": that.cohort_id,
            "type": that.course_type,
            "page": that.page if that.page != 1 else None,
        }
        return {name: value for name, value in values.items() if value}


@dataclass
class CoursePage:
    courses: list[Course]
    total: int
    page: int
    pages: int


def courses_page(flt: CourseFilter, page_size: int) -> CoursePage:
    """Return one page of the courses matching ``flt``, by subject, with what the list shows."""
    query = select(Course)
    for raw in flt.q.lower().split():
        words = {raw, fold(raw)}
        teacher_match = (
            select(course_teacher.c.course_id)
            .join(Person, Person.id == course_teacher.c.person_id)
            .where(Person.search_text.contains(fold(raw), autoescape=True))
        )
        query = query.where(
            or_(
                *(func.lower(Course.subject).contains(w, autoescape=True) for w in words),
                *(func.lower(Course.room).contains(w, autoescape=True) for w in words),
                Course.id.in_(teacher_match),
            )
        )
    if flt.cohort_id:
        cohort = db.session.get(Cohort, flt.cohort_id)
        if cohort is not None:
            query = query.where(Course.id.in_(cohort_course_ids(cohort)))
    if flt.course_type:
        query = query.where(Course.course_type == flt.course_type)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    pages = max(1, math.ceil(total / page_size))
    page = min(flt.page, pages)
    query = query.order_by(Course.subject, Course.course_type, Course.id).options(
        selectinload(Course.slots),
        selectinload(Course.teachers),
        selectinload(Course.cohorts),
        selectinload(Course.groups).selectinload(Group.cohort),
    )
    courses = db.session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    return CoursePage(list(courses), total, page, pages)


def cohorts_with_counts() -> list[tuple[Cohort, int, int]]:
    """Return every cohort with its number of students and of groups, by name."""
    students = (
        select(Person.cohort_id, func.count(Person.id).label("n"))
        .where(Person.kind == PersonKind.STUDENT)
        .group_by(Person.cohort_id)
        .subquery()
    )
    groups = (
        select(Group.cohort_id, func.count(Group.id).label("n"))
        .group_by(Group.cohort_id)
        .subquery()
    )
    query = (
        select(Cohort, func.coalesce(students.c.n, 0), func.coalesce(groups.c.n, 0))
        .outerjoin(students, students.c.cohort_id == Cohort.id)
        .outerjoin(groups, groups.c.cohort_id == Cohort.id)
        .order_by(Cohort.name)
    )
    return [
        (cohort, n_students, n_groups) for cohort, n_students, n_groups in db.session.execute(query)
    ]


def group_sizes(cohort: Cohort) -> dict[int, int]:
    """Return {group id: number of members} for the cohort's groups."""
    query = (
        select(person_group.c.group_id, func.count())
        .join(Group, Group.id == person_group.c.group_id)
        .where(Group.cohort_id == cohort.id)
        .group_by(person_group.c.group_id)
    )
    return dict(db.session.execute(query).all())


def student_count(cohort: Cohort) -> int:
    """Return the number of students in the cohort."""
    query = select(func.count()).where(
        Person.cohort_id == cohort.id, Person.kind == PersonKind.STUDENT
    )
    return db.session.scalar(query)
