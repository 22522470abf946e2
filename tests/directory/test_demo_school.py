"""The demo school: realistic, deterministic, with the share of missing and malformed addresses."""

from __future__ import annotations

from sqlalchemy import func, select

from hpmail import create_app
from hpmail.directory.demo import build_school
from hpmail.directory.models import (
    Absence,
    Cohort,
    Course,
    CourseSlot,
    Group,
    Internship,
    Person,
    course_cohort,
    course_group,
    person_group,
)
from hpmail.extensions import db as _db


def snapshot(db) -> list[tuple]:
    query = select(Person.kind, Person.last_name, Person.first_name, Person.email).order_by(
        Person.id
    )
    return list(db.session.execute(query))


def records(db) -> list[tuple]:
    absences = select(
        Absence.person_id, Absence.day, Absence.start_time, Absence.course_id, Absence.reason
    ).order_by(Absence.id)
    internships = select(
        Internship.person_id, Internship.company, Internship.tutor_email, Internship.start_date
    ).order_by(Internship.id)
    return [*db.session.execute(absences), *db.session.execute(internships)]


def test_demo_school_has_the_expected_size_and_french_data(db):
    school = build_school(scale=1)
    db.session.commit()
    assert 1_300 <= school.students <= 1_700
    assert school.teachers == 90 and school.staff == 25
    assert school.cohorts == 12
    assert 380 <= school.courses <= 450
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    assert count(Cohort) == 12 and count(Group) == 12 * 12 and count(Course) == school.courses
    statuses = dict(
        db.session.execute(
            select(Person.email_status, func.count()).group_by(Person.email_status)
        ).all()
    )
    total = sum(statuses.values())
    assert 0.03 <= statuses["missing"] / total <= 0.08
    assert 0.003 <= statuses["invalid"] / total <= 0.02
    names = {row.last_name for row in snapshot(db)}
    assert {"Lefèvre", "Guérin"} <= names
    cohorts = set(db.session.scalars(select(Cohort.name)))
    assert {"L1 Informatique", "BTS SIO 1", "Terminale STMG"} <= cohorts
    julien = db.session.get(Person, school.person_ids["julien.petit@lycee-demo.fr"])
    assert (julien.kind, julien.first_name, julien.last_name) == ("teacher", "Julien", "Petit")
    # Everyone can be found by the accent-free text filter.
    assert db.session.scalar(select(func.count()).where(Person.search_text == "")) == 0


def test_demo_school_is_deterministic(db, tmp_path):
    build_school(scale=1)
    db.session.commit()
    first = snapshot(db)
    first_records = records(db)
    other = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "other"),
            "SECRET_KEY": "x",
            "DEMO": False,
            "QUEUE_URL": "memory",
            "TESTING": True,
        }
    )
    with other.app_context():
        _db.create_all()
        build_school(scale=1)
        _db.session.commit()
        second = snapshot(_db)
        second_records = records(_db)
        _db.session.remove()
        _db.engine.dispose()
    assert first == second
    assert first_records == second_records


def test_demo_absences_are_realistic_on_the_students_own_courses(db):
    school = build_school(scale=1)
    db.session.commit()
    assert 2_700 <= school.absences <= 3_500
    per_student = dict(
        db.session.execute(
            select(Absence.person_id, func.count()).group_by(Absence.person_id)
        ).all()
    )
    counts = [
        per_student.get(pid, 0)
        for pid in db.session.scalars(select(Person.id).where(Person.kind == "student"))
    ]
    assert sum(1 for n in counts if n <= 3) / len(counts) > 0.8
    assert 5 <= sum(1 for n in counts if n >= 10) <= 100
    reasons = dict(
        db.session.execute(select(Absence.reason, func.count()).group_by(Absence.reason)).all()
    )
    assert {"Maladie", "Transport", "Rendez-vous médical", "Non justifiée"} <= set(reasons)
    assert (
        db.session.scalar(
            select(func.count()).where(Absence.reason == "Non justifiée", Absence.justified)
        )
        == 0
    )
    # Every absence is on a course of the student's cohort or groups, on its weekday and time.
    attended = set(
        db.session.execute(
            select(Person.id, course_cohort.c.course_id).join(
                course_cohort, course_cohort.c.cohort_id == Person.cohort_id
            )
        )
    ) | set(
        db.session.execute(
            select(person_group.c.person_id, course_group.c.course_id).join(
                course_group, course_group.c.group_id == person_group.c.group_id
            )
        )
    )
    slots = {
        (s.course_id, s.weekday, s.start_time, s.end_time)
        for s in db.session.scalars(select(CourseSlot))
    }
    for absence in db.session.scalars(select(Absence)):
        assert (absence.person_id, absence.course_id) in attended
        key = (absence.course_id, absence.day.weekday(), absence.start_time, absence.end_time)
        assert key in slots
        assert absence.course_label == absence.course.subject


def test_demo_internships_have_companies_tutors_and_dates(db):
    school = build_school(scale=1)
    db.session.commit()
    assert 250 <= school.internships <= 350
    internships = db.session.scalars(select(Internship)).all()
    statuses = {i.tutor_email_status for i in internships}
    assert statuses == {"valid", "missing", "invalid"}
    assert all(i.start_date < i.end_date and i.company_address for i in internships)
    assert all(i.person.kind == "student" for i in internships)
    assert len({i.company for i in internships}) >= 15
