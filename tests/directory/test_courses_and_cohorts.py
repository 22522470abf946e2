"""Course list, fiche cours, cohorts and their teaching team; the one reachability count."""

from __future__ import annotations

from datetime import date, time

from hpmail.directory.models import Course, CourseSession
from hpmail.directory.reach import reachability
from hpmail.directory.service import course_audience, teaching_team

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}


def school(make_person, make_cohort, make_course):
    l1 = make_cohort("L1 Informatique", groups=("TD1", "TD2"))
    bts = make_cohort("BTS SIO 1")
    ada = make_person("teacher", last_name="Lovelace", first_name="Ada")
    alan = make_person("teacher", last_name="Turing", first_name="Alan", email="alan@@x")
    grace = make_person("teacher", last_name="Hopper", first_name="Grace")
    s1 = make_person(last_name="Arnaud", first_name="Léo", cohort=l1, groups=[l1.groups[0]])
    s2 = make_person(
        last_name="Blanc", first_name="Inès", cohort=l1, groups=[l1.groups[1]], email=None
    )
    s3 = make_person(last_name="Colin", first_name="Jade", cohort=bts)
    cm = make_course("Algorithmique", "CM", teachers=[ada], cohorts=[l1], room="Amphi A")
    td = make_course("Algorithmique", "TD", teachers=[alan], groups=[l1.groups[1]])
    net = make_course("Réseaux", "TP", teachers=[grace, ada], cohorts=[bts])
    return locals()


def test_course_audience_is_its_teachers_and_the_students_of_its_cohorts_and_groups(
    db, make_person, make_cohort, make_course
):
    s = school(make_person, make_cohort, make_course)
    teachers, students = course_audience(s["cm"])
    assert teachers == [s["ada"]]
    assert students == [s["s1"], s["s2"]]
    teachers, students = course_audience(s["td"])
    assert teachers == [s["alan"]] and students == [s["s2"]]


def test_teaching_team_is_the_teachers_of_the_cohort_and_its_groups_courses(
    db, make_person, make_cohort, make_course
):
    s = school(make_person, make_cohort, make_course)
    assert teaching_team(s["l1"]) == [s["ada"], s["alan"]]
    assert teaching_team(s["bts"]) == [s["grace"], s["ada"]]  # Hopper before Lovelace


def test_reachability_counts_each_person_once_with_a_french_reason(
    app, db, make_person, make_cohort, make_course
):
    s = school(make_person, make_cohort, make_course)
    with app.test_request_context(headers=FR):
        reach = reachability([s["ada"], s["alan"], s["s1"], s["s2"], s["ada"]])
        assert reach.reachable == [s["ada"], s["s1"]]
        assert reach.unreachable == [
            (s["alan"], "Adresse e-mail invalide : alan@@x"),
            (s["s2"], "Pas d'adresse e-mail"),
        ]
        assert reach.count_by_kind() == {"teacher": (1, 2), "student": (1, 2)}


def test_course_list_filters_by_text_cohort_and_type(
    client, login_as, make_person, make_cohort, make_course
):
    s = school(make_person, make_cohort, make_course)
    login_as("teacher")
    page = client.get("/cours", headers=FR)
    assert "<h1>Cours</h1>" in page.text
    assert "Algorithmique" in page.text and "Réseaux" in page.text
    assert "lundi 08:30–10:30" in page.text
    assert "3 cours correspondent au filtre." in client.get("/cours", headers=FR).text
    assert "1 cours correspondent" in client.get("/cours?q=turing", headers=FR).text
    assert "1 cours correspondent" in client.get("/cours?q=amphi", headers=FR).text
    assert "2 cours correspondent" in client.get(f"/cours?cohort={s['l1'].id}", headers=FR).text
    assert "1 cours correspondent" in client.get("/cours?type=TP", headers=FR).text
    assert "0 cours correspondent" in client.get("/cours?q=%25_", headers=FR).text
    fragment = client.get("/cours?q=reseaux", headers={**FR, "HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="results">')


def test_course_sheet_shows_teachers_audience_and_reach(
    client, login_as, db, make_person, make_cohort, make_course
):
    s = school(make_person, make_cohort, make_course)
    s["td"].sessions = [CourseSession(day=date(2026, 3, 2), start_time=time(14), end_time=time(16))]
    db.session.commit()
    login_as("staff")
    page = client.get(f"/cours/{s['td'].id}", headers=FR)
    assert page.status_code == 200
    assert "Fiche cours" in page.text
    assert "TURING" in page.text and "alan@@x" in page.text
    assert "Adresse invalide" in page.text
    assert "L1 Informatique · TD2" in page.text
    assert "Étudiants concernés (1)" in page.text
    assert "02/03/2026 14:00–16:00" in page.text
    assert "Enseignants : 0 joignable(s) sur 1" in page.text
    assert "Adresse e-mail invalide : alan@@x" in page.text
    assert client.get("/cours/999999", headers=FR).status_code == 404


def test_cohort_pages_list_groups_counts_and_teaching_team(
    client, login_as, make_person, make_cohort, make_course
):
    s = school(make_person, make_cohort, make_course)
    login_as("staff")
    listing = client.get("/promotions", headers=FR)
    assert "<h1>Promotions</h1>" in listing.text
    assert "L1 Informatique" in listing.text and "BTS SIO 1" in listing.text
    page = client.get(f"/promotions/{s['l1'].id}", headers=FR)
    assert "Équipe pédagogique (2)" in page.text
    assert "LOVELACE Ada" not in page.text  # names are shown in columns
    assert "Lovelace" in page.text and "Turing" in page.text and "Hopper" not in page.text
    assert "2 étudiant(s)" in page.text
    assert "TD1</a> — 1 étudiant(s)" in page.text
    assert client.get("/promotions/424242", headers=FR).status_code == 404


def test_sheets_and_lists_link_to_the_composer_when_it_exists(
    app, client, login_as, make_person, make_cohort, make_course
):
    s = school(make_person, make_cohort, make_course)
    login_as("staff")
    assert "compose.quick_course" in app.view_functions  # the composer is built
    course = client.get(f"/cours/{s['cm'].id}", headers=FR).text
    assert f'action="/e-mail/cours/{s["cm"].id}"' in course
    assert "E-mail à toutes les personnes concernées" in course
    cohort = client.get(f"/promotions/{s['l1'].id}", headers=FR).text
    assert f'action="/e-mail/promotion/{s["l1"].id}/equipe"' in cohort
    assert "E-mail à l'équipe pédagogique</button>" in cohort
    location = client.get("/plannings/student", headers=FR).headers["Location"]
    listing = client.get(location, headers=FR).text
    token = location.split("selection=")[1].split("&")[0]
    assert f'href="/e-mail/nouveau?selection={token}"' in listing
    assert "Envoyer un e-mail" in listing


def test_course_pager_keeps_the_filter_and_leaves_the_first_page_out(
    client, db, login_as, make_course
):
    db.session.add_all(Course(subject=f"Option {n:02d}", course_type="TD") for n in range(51))
    db.session.commit()
    make_course("Algorithmique", "CM")
    login_as("teacher")
    first = client.get("/cours?q=option&type=TD", headers=FR).text
    assert "Page 1 sur 2" in first
    assert 'href="/cours?q=option&amp;type=TD&amp;page=2"' in first
    second = client.get("/cours?q=option&type=TD&page=2", headers=FR).text
    assert "Option 50" in second and "Option 49" not in second
    assert 'href="/cours?q=option&amp;type=TD"' in second


def test_the_course_list_pages_by_the_configured_list_size(app, client, db, login_as):
    app.config["LIST_PAGE_SIZE"] = 10
    db.session.add_all(Course(subject=f"Option {n:02d}", course_type="TD") for n in range(11))
    db.session.commit()
    login_as("teacher")
    first = client.get("/cours?q=option", headers=FR).text
    assert "Page 1 sur 2" in first and "Option 09" in first and "Option 10" not in first


def test_each_kind_of_person_and_address_status_has_one_name_for_every_page():
    from hpmail.directory.models import (
        EMAIL_STATUS_LABELS,
        KIND_NAMES,
        KIND_PLURALS,
        EmailStatus,
        PersonKind,
    )

    assert set(KIND_PLURALS) == set(KIND_NAMES) == set(PersonKind)
    assert set(EMAIL_STATUS_LABELS) == set(EmailStatus)
