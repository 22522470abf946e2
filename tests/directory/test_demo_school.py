"""The demo school: realistic, deterministic, with the share of missing and malformed addresses."""

from __future__ import annotations

from sqlalchemy import func, select

from hpmail import create_app
from hpmail.directory.demo import build_school
from hpmail.directory.models import Cohort, Course, Group, Person
from hpmail.extensions import db as _db


def snapshot(db) -> list[tuple]:
    query = select(Person.kind, Person.last_name, Person.first_name, Person.email).order_by(
        Person.id
    )
    return list(db.session.execute(query))


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
        _db.session.remove()
        _db.engine.dispose()
    assert first == second
