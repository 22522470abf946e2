"""Plannings › Étudiants › Absences: filters, sorts, pages, the selection, who may see it."""

from __future__ import annotations

import re
from datetime import date

import pytest

from hpmail.directory import selection as selections
from hpmail.directory.models import Absence, Internship, Selection, SelectionAbsence

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}
HTMX = {**FR, "HX-Request": "true"}
LIST = "/plannings/etudiants/absences"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LIST_PAGE_SIZE": 5}


@pytest.fixture
def school(make_person, make_cohort, make_absence):
    l1 = make_cohort("L1 Informatique")
    bts = make_cohort("BTS SIO 1")
    zoe = make_person(last_name="Zola", first_name="Zoé", cohort=l1)
    elodie = make_person(last_name="Éluard", first_name="Élodie", cohort=bts)
    absences = [
        make_absence(zoe, date(2026, 1, 5), (8, 0), (10, 0), course_label="Réseaux"),
        make_absence(zoe, date(2026, 1, 12), (14, 0), (17, 0), justified=True, reason="Transport"),
        make_absence(elodie, date(2026, 2, 2), (10, 0), (11, 0), course_label="Anglais"),
        make_absence(elodie, date(2026, 3, 9), (8, 0), (12, 0), justified=True),
    ]
    return {"l1": l1, "bts": bts, "zoe": zoe, "elodie": elodie, "absences": absences}


def current_token(client) -> str:
    response = client.get(LIST, headers=FR)
    assert response.status_code == 302
    return re.search(r"selection=([\w-]+)", response.headers["Location"]).group(1)


def shown_ids(client, token, **args) -> list[int]:
    response = client.get(LIST, query_string={"selection": token, **args}, headers=FR)
    assert response.status_code == 200
    return [int(n) for n in re.findall(r'name="item_id" value="(\d+)"', response.text)]


def member_ids(db, token) -> set[int]:
    selection = db.session.query(Selection).filter_by(token=token).one()
    rows = db.session.query(SelectionAbsence).filter_by(selection_id=selection.id)
    return {row.absence_id for row in rows}


def test_absences_list_is_in_french_with_every_column(client, login_as, school):
    login_as("staff")
    token = current_token(client)
    page = client.get(LIST, query_string={"selection": token}, headers=FR)
    assert "<h1>Absences</h1>" in page.text
    for column in ("Date", "Étudiant", "Cours", "Heures", "Motif", "Justifiée", "Promotion"):
        assert column in page.text
    assert "ZOLA Zoé" in page.text and "Réseaux" in page.text and "05/01/2026" in page.text
    assert "4 absences correspondent." in page.text


def test_each_filter_keeps_only_the_matching_absences(client, login_as, school):
    login_as("staff")
    token = current_token(client)
    zoe_1, zoe_2, elodie_1, elodie_2 = (a.id for a in school["absences"])
    assert shown_ids(client, token, q="eluard") == [elodie_1, elodie_2]
    assert shown_ids(client, token, cohort=school["l1"].id) == [zoe_1, zoe_2]
    assert shown_ids(client, token, justified="yes") == [zoe_2, elodie_2]
    assert shown_ids(client, token, justified="no") == [zoe_1, elodie_1]
    assert shown_ids(client, token, start="2026-01-10", end="2026-02-28") == [zoe_2, elodie_1]
    assert shown_ids(client, token, justified="no", cohort=school["bts"].id) == [elodie_1]
    # What makes no sense is ignored, not an error.
    assert len(shown_ids(client, token, justified="maybe", start="hier", cohort="x")) == 4


def test_sort_by_each_column_both_ways(client, login_as, school):
    login_as("staff")
    token = current_token(client)
    zoe_1, zoe_2, elodie_1, elodie_2 = (a.id for a in school["absences"])
    assert shown_ids(client, token) == [zoe_1, zoe_2, elodie_1, elodie_2]
    assert shown_ids(client, token, order="desc") == [elodie_2, elodie_1, zoe_2, zoe_1]
    assert shown_ids(client, token, sort="student") == [elodie_1, elodie_2, zoe_1, zoe_2]
    assert shown_ids(client, token, sort="hours") == [elodie_1, zoe_1, zoe_2, elodie_2]
    assert shown_ids(client, token, sort="hours", order="desc") == [
        elodie_2,
        zoe_2,
        zoe_1,
        elodie_1,
    ]
    assert shown_ids(client, token, sort="course") == [zoe_2, elodie_2, elodie_1, zoe_1]
    assert shown_ids(client, token, sort="justified") == [zoe_1, elodie_1, zoe_2, elodie_2]


def test_pages_of_absences_follow_the_page_size(client, login_as, school, make_absence):
    for day in range(1, 7):
        make_absence(school["zoe"], date(2026, 4, day))
    login_as("staff")
    token = current_token(client)
    first = client.get(LIST, query_string={"selection": token}, headers=FR)
    assert "Page 1 sur 2" in first.text
    assert len(shown_ids(client, token)) == 5
    assert len(shown_ids(client, token, page=2)) == 5
    assert len(shown_ids(client, token, page=99)) == 5


def test_htmx_filter_gets_only_the_results_fragment(client, login_as, school):
    login_as("staff")
    token = current_token(client)
    response = client.get(LIST, query_string={"selection": token, "q": "zola"}, headers=HTMX)
    assert response.text.lstrip().startswith('<div id="results">')
    assert "<h1>" not in response.text
    assert "ZOLA Zoé" in response.text and "ÉLUARD" not in response.text


def test_ticking_absences_and_selecting_all_that_match(client, login_as, school, db):
    login_as("staff")
    token = current_token(client)
    zoe_1, zoe_2, elodie_1, elodie_2 = (a.id for a in school["absences"])
    url = f"{LIST}/selection/{token}"
    ticked = client.post(
        url, data={"shown": [zoe_1, zoe_2, elodie_1], "item_id": [zoe_1, elodie_1]}, headers=HTMX
    )
    assert ticked.text.strip().startswith('<strong id="selection-counter"')
    assert "2 sélectionné(s)" in ticked.text
    assert member_ids(db, token) == {zoe_1, elodie_1}

    everything = client.post(url, data={"action": "all", "justified": "yes"}, headers=HTMX)
    assert "4 sélectionné(s)" in everything.text
    assert member_ids(db, token) == {zoe_1, zoe_2, elodie_1, elodie_2}
    client.post(url, data={"action": "none"})
    assert member_ids(db, token) == set()
    client.post(url, data={"action": "all", "cohort": school["bts"].id, "justified": "no"})
    assert member_ids(db, token) == {elodie_1}


def test_selected_absences_give_their_students_and_the_absences_by_student(
    client, login_as, school, db, make_user
):
    user = make_user("staff")
    zoe_1, _zoe_2, elodie_1, elodie_2 = school["absences"]
    selection = selections.create_selection(
        user, [zoe_1.id, elodie_2.id, elodie_1.id], kind="absence"
    )
    db.session.commit()
    assert selections.selected_count(selection) == 3
    assert selections.selected_people(selection) == [school["elodie"], school["zoe"]]
    assert selections.selected_absences(selection) == [elodie_1, elodie_2, zoe_1]


def test_a_people_selection_or_another_users_is_a_404_here(client, login_as, school, make_user, db):
    owner = make_user("staff")
    theirs = selections.create_selection(owner, [school["absences"][0].id], kind="absence")
    db.session.commit()
    login_as("staff")
    assert client.get(LIST, query_string={"selection": theirs.token}).status_code == 404
    post = client.post(f"{LIST}/selection/{theirs.token}", data={"action": "none"})
    assert post.status_code == 404
    assert member_ids(db, theirs.token) == {school["absences"][0].id}
    people = client.get("/plannings/student", headers=FR).headers["Location"]
    people_token = re.search(r"selection=([\w-]+)", people).group(1)
    assert client.get(LIST, query_string={"selection": people_token}).status_code == 404


def test_selection_post_without_csrf_changes_nothing(client, login_as, school, db):
    login_as("staff")
    token = current_token(client)
    absence = school["absences"][0]
    response = client.post(
        f"{LIST}/selection/{token}",
        data={"shown": [absence.id], "item_id": [absence.id]},
        csrf=False,
    )
    assert response.status_code == 400
    assert member_ids(db, token) == set()


@pytest.mark.parametrize("role", ["teacher", "staff", "admin"])
def test_every_signed_in_role_sees_the_list_like_the_people_lists(client, login_as, school, role):
    login_as(role)
    token = current_token(client)
    assert client.get(LIST, query_string={"selection": token}).status_code == 200
    assert client.get("/plannings/student").status_code == 302


def test_signed_out_visitor_is_sent_to_sign_in(client, school):
    response = client.get(LIST)
    assert response.status_code == 302
    assert "/connexion" in response.headers["Location"]


def test_menu_lists_absences_and_internships_under_schedules(client, login_as):
    login_as("teacher")
    page = client.get("/", headers=FR, follow_redirects=True)
    assert "Étudiants › Absences" in page.text
    assert "Étudiants › Stages" in page.text


def test_a_deleted_course_leaves_its_absences_with_their_label_and_a_deleted_student_none(
    db, make_person, make_cohort, make_course, make_absence, make_internship, make_user
):
    student = make_person(cohort=make_cohort("L1"))
    course = make_course(subject="Réseaux")
    absence = make_absence(student, date(2026, 1, 5), course=course, course_label="Réseaux")
    make_internship(student, "Airbus", date(2026, 4, 6), date(2026, 6, 12))
    selection = selections.create_selection(make_user("staff"), [absence.id], kind="absence")
    db.session.commit()
    db.session.delete(course)
    db.session.commit()
    db.session.refresh(absence)
    assert absence.course_id is None and absence.course_label == "Réseaux"
    db.session.delete(student)
    db.session.commit()
    assert db.session.query(Absence).count() == 0
    assert db.session.query(Internship).count() == 0
    assert selections.selected_count(selection) == 0
