"""What a timetable and a summary say, from the directory's courses."""

from __future__ import annotations

from datetime import date, time

from hpmail.directory.models import CourseSession, CourseSlot
from hpmail.documents.content import cohort_document, group_document, person_documents
from hpmail.documents.layout import DocumentKind, Period

WEEK = Period.week_of(date(2026, 12, 9))  # Monday 7 to Sunday 13 December 2026


def _school(make_cohort, make_person, make_course):
    cohort = make_cohort("L2 Droit", groups=("TD1", "TD2"))
    td1, td2 = cohort.groups
    teacher = make_person("teacher", first_name="Œdipe", last_name="Ørsted")
    lecture = make_course("Droit civil", "CM", teachers=[teacher], cohorts=[cohort])
    tutorial1 = make_course("Droit civil", "TD", teachers=[teacher], groups=[td1], room="C12")
    tutorial2 = make_course("Droit civil", "TD", groups=[td2], room="C14")
    alice = make_person("student", first_name="Alice", cohort=cohort, groups=[td1])
    bruno = make_person("student", first_name="Bruno", cohort=cohort, groups=[td2])
    return cohort, teacher, alice, bruno, (lecture, tutorial1, tutorial2)


def test_a_student_sees_the_cohort_lectures_and_their_own_group_only(
    db, make_cohort, make_person, make_course
):
    _cohort, _teacher, alice, bruno, _courses = _school(make_cohort, make_person, make_course)

    documents = person_documents(DocumentKind.TIMETABLE, [alice.id, bruno.id], WEEK)

    rooms_of_alice = {o.course.room for o in documents[alice.id].weeks[0].occurrences}
    rooms_of_bruno = {o.course.room for o in documents[bruno.id].weeks[0].occurrences}
    assert rooms_of_alice == {"B204", "C12"}
    assert rooms_of_bruno == {"B204", "C14"}
    assert documents[alice.id].owner.name == "Alice " + alice.last_name
    assert "L2 Droit" in documents[alice.id].owner.detail
    assert documents[alice.id].shared_key() != documents[bruno.id].shared_key()


def test_students_of_one_group_share_the_same_grid(db, make_cohort, make_person, make_course):
    cohort, _teacher, alice, _bruno, _courses = _school(make_cohort, make_person, make_course)
    claire = make_person("student", first_name="Claire", cohort=cohort, groups=alice.groups)

    documents = person_documents(DocumentKind.TIMETABLE, [alice.id, claire.id], WEEK)

    assert documents[alice.id].shared_key() == documents[claire.id].shared_key()
    assert documents[alice.id].owner != documents[claire.id].owner


def test_a_dated_session_overrides_the_weekly_slot_in_its_week_only(
    db, make_cohort, make_person, make_course
):
    _cohort, teacher, _alice, _bruno, (lecture, _t1, _t2) = _school(
        make_cohort, make_person, make_course
    )
    lecture.sessions = [
        CourseSession(day=date(2026, 12, 10), start_time=time(14), end_time=time(17))
    ]
    db.session.commit()
    two_weeks = Period(date(2026, 12, 7), date(2026, 12, 20))

    timetable = person_documents(DocumentKind.TIMETABLE, [teacher.id], two_weeks)[teacher.id]

    first, second = timetable.weeks
    lectures_first = [o for o in first.occurrences if o.course.id == lecture.id]
    lectures_second = [o for o in second.occurrences if o.course.id == lecture.id]
    assert [(o.day, o.start) for o in lectures_first] == [(date(2026, 12, 10), time(14))]
    assert [(o.day, o.start) for o in lectures_second] == [(date(2026, 12, 14), time(8, 30))]


def test_a_summary_counts_sessions_hours_and_a_teachers_load(
    db, make_cohort, make_person, make_course
):
    _cohort, teacher, _alice, _bruno, (lecture, _t1, _t2) = _school(
        make_cohort, make_person, make_course
    )
    lecture.slots.append(CourseSlot(weekday=3, start_time=time(10), end_time=time(11)))
    db.session.commit()
    four_weeks = Period(date(2026, 12, 7), date(2027, 1, 3))

    summary = person_documents(DocumentKind.SUMMARY, [teacher.id], four_weeks)[teacher.id]

    by_type = {line.course.course_type: line for line in summary.lines}
    assert by_type["CM"].weekly_hours == 3.0
    assert by_type["CM"].sessions == 8
    assert by_type["CM"].total_hours == 12.0
    assert by_type["TD"].total_hours == 8.0
    assert summary.totals_by_type == {"CM": 12.0, "TD": 8.0}
    assert summary.teaching_load == 12.0 * 1.5 + 8.0


def test_a_period_without_courses_gives_an_empty_document(
    db, make_cohort, make_person, make_course
):
    _cohort, _teacher, alice, _bruno, _courses = _school(make_cohort, make_person, make_course)
    staff = make_person("staff")

    documents = person_documents(DocumentKind.TIMETABLE, [alice.id, staff.id], WEEK)

    assert documents[staff.id].is_empty
    assert not documents[alice.id].is_empty


def test_a_cohort_document_holds_every_group_and_a_group_document_its_lectures(
    db, make_cohort, make_person, make_course
):
    cohort, _teacher, _alice, _bruno, _courses = _school(make_cohort, make_person, make_course)

    whole = cohort_document(DocumentKind.TIMETABLE, cohort, WEEK)
    td2 = group_document(DocumentKind.TIMETABLE, cohort.groups[1], WEEK)

    assert {o.course.room for o in whole.weeks[0].occurrences} == {"B204", "C12", "C14"}
    assert {o.course.room for o in td2.weeks[0].occurrences} == {"B204", "C14"}
    assert td2.owner.name == "L2 Droit — TD2"


def test_the_school_term_runs_september_to_january_then_february_to_june():
    assert Period.term_of(date(2026, 12, 2)) == Period(date(2026, 9, 1), date(2027, 1, 31))
    assert Period.term_of(date(2027, 1, 15)) == Period(date(2026, 9, 1), date(2027, 1, 31))
    assert Period.term_of(date(2027, 3, 1)) == Period(date(2027, 2, 1), date(2027, 6, 30))
