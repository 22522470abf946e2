"""Quick e-mails: a course's teachers and students, a cohort's teaching team, prefilled."""

from __future__ import annotations

from sqlalchemy import select

from hpmail.outbox.models import Mailing
from tests.compose.conftest import FR


def test_course_quick_email_is_prefilled_with_its_teachers_and_students(
    client, sender, make_person, make_cohort, make_course, smtp_server, db
):
    cohort = make_cohort("L2 Maths", groups=("TD1",))
    students = [make_person("student", cohort=cohort) for _ in range(4)]
    students.append(make_person("student", cohort=cohort, email=None))
    make_person("student")  # another cohort's student
    teachers = [make_person("teacher"), make_person("teacher")]
    course = make_course("Analyse", teachers=teachers, cohorts=[cohort])

    opened = client.post(f"/e-mail/cours/{course.id}", headers=FR, follow_redirects=True)

    assert "Enseignants (2)" in opened.text
    assert "Étudiants (4)" in opened.text
    assert 'name="kind" value="quick"' in opened.text
    token = opened.request.args["selection"]
    client.post(
        "/e-mail/nouveau",
        data={
            "selection": token,
            "kind": "quick",
            "kinds": ["teacher", "student"],
            "subject": "Analyse : salle changée",
            "body": "En B204.",
        },
        headers=FR,
    )
    mailing = db.session.scalar(select(Mailing))
    assert mailing.kind == "quick"
    assert sorted(smtp_server.received[0].rcpt_tos) == sorted(
        p.email for p in teachers + students[:4]
    )


def test_cohort_quick_email_goes_to_its_teaching_team(
    client, sender, make_person, make_cohort, make_course
):
    cohort = make_cohort("L3 Physique")
    team = [make_person("teacher") for _ in range(3)]
    make_course("Optique", teachers=team[:2], cohorts=[cohort])
    make_course("Mécanique", teachers=team[2:], cohorts=[cohort])
    make_course("Autre", teachers=[make_person("teacher")], cohorts=[make_cohort("Autre")])

    opened = client.post(f"/e-mail/promotion/{cohort.id}/equipe", headers=FR, follow_redirects=True)

    assert "Enseignants (3)" in opened.text
    assert 'name="kinds" value="student"' not in opened.text


def test_unknown_course_or_cohort_is_not_found(client, sender):
    assert client.post("/e-mail/cours/999").status_code == 404
    assert client.post("/e-mail/promotion/999/equipe").status_code == 404


def test_course_quick_email_names_the_course_in_its_subject_and_says_what_was_chosen(
    client, sender, make_person, make_cohort, make_course
):
    cohort = make_cohort("L1 Droit", groups=("TD1", "TD2"))
    td2 = [group for group in cohort.groups if group.name == "TD2"]
    course = make_course("Droit civil", "TD", teachers=[make_person("teacher")], groups=td2)

    opened = client.post(f"/e-mail/cours/{course.id}", headers=FR, follow_redirects=True)

    assert 'id="subject" name="subject" value="Cours de Droit civil — TD2"' in opened.text
    assert "E-mail rapide : Cours de Droit civil — TD2" in opened.text


def test_cohort_quick_email_names_the_teaching_team_in_its_subject(
    client, sender, make_person, make_cohort, make_course
):
    cohort = make_cohort("L3 Physique")
    make_course("Optique", teachers=[make_person("teacher")], cohorts=[cohort])

    opened = client.post(f"/e-mail/promotion/{cohort.id}/equipe", headers=FR, follow_redirects=True)

    assert 'name="subject" value="Équipe pédagogique de L3 Physique"' in opened.text
    assert "E-mail rapide : Équipe pédagogique de L3 Physique" in opened.text


def test_the_quick_email_keeps_saying_what_was_chosen_when_the_form_is_refused(
    client, sender, make_person, make_cohort, make_course
):
    course = make_course("Droit civil", "CM", teachers=[make_person("teacher")])
    opened = client.post(f"/e-mail/cours/{course.id}", headers=FR, follow_redirects=True)
    token = opened.request.args["selection"]

    refused = client.post(
        "/e-mail/nouveau",
        data={
            "selection": token,
            "kind": "quick",
            "about": "Cours de Droit civil — CM",
            "kinds": ["teacher"],
            "subject": "Cours de Droit civil — CM",
            "body": "",
        },
        headers=FR,
    )

    assert refused.status_code == 422
    assert "E-mail rapide : Cours de Droit civil — CM" in refused.text


def test_opening_a_quick_email_is_a_post_since_it_writes_the_selection(
    client, login_as, make_person, make_cohort, make_course
):
    course = make_course("Droit civil", teachers=[make_person("teacher")])
    cohort = make_cohort("L1")
    login_as("staff")
    assert client.get(f"/e-mail/cours/{course.id}").status_code == 405
    assert client.get(f"/e-mail/promotion/{cohort.id}/equipe").status_code == 405
    assert client.post(f"/e-mail/cours/{course.id}", csrf=False).status_code == 400
    assert client.post(f"/e-mail/cours/{2**64}").status_code == 404
