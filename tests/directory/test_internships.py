"""Plannings › Étudiants › Stages: the period they overlap, the company, sorts, the selection."""

from __future__ import annotations

import re
from datetime import date

import pytest

from hpmail.directory import selection as selections
from hpmail.directory.models import Selection, SelectionInternship

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}
HTMX = {**FR, "HX-Request": "true"}
LIST = "/plannings/etudiants/stages"


@pytest.fixture
def school(make_person, make_cohort, make_internship):
    l1 = make_cohort("L3 Informatique")
    bts = make_cohort("BTS SIO 2")
    zoe = make_person(last_name="Zola", first_name="Zoé", cohort=l1)
    elodie = make_person(last_name="Éluard", first_name="Élodie", cohort=bts)
    internships = [
        make_internship(
            zoe,
            "Société Générale",
            date(2026, 4, 6),
            date(2026, 6, 12),
            tutor_email="m.durand@socgen.example",
            company_address="29 boulevard Haussmann, 75009 Paris",
        ),
        make_internship(elodie, "Airbus", date(2026, 1, 5), date(2026, 2, 27)),
        make_internship(zoe, "Crédit Agricole", date(2026, 7, 1), date(2026, 8, 28)),
    ]
    return {"l1": l1, "bts": bts, "zoe": zoe, "elodie": elodie, "internships": internships}


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
    rows = db.session.query(SelectionInternship).filter_by(selection_id=selection.id)
    return {row.internship_id for row in rows}


def test_internships_list_shows_company_tutor_and_dates_in_french(client, login_as, school):
    login_as("staff")
    token = current_token(client)
    page = client.get(LIST, query_string={"selection": token}, headers=FR)
    assert "<h1>Stages</h1>" in page.text
    for text in ("Entreprise", "Tuteur", "Début", "Fin", "Sujet", "Société Générale"):
        assert text in page.text
    assert "m.durand@socgen.example" in page.text and "06/04/2026" in page.text
    assert "Adresse absente" in page.text  # Airbus's tutor has no address
    assert "3 stages correspondent." in page.text


def test_period_filter_keeps_internships_that_overlap_it(client, login_as, school):
    login_as("staff")
    token = current_token(client)
    socgen, airbus, credit = (i.id for i in school["internships"])
    assert shown_ids(client, token, start="2026-02-01", end="2026-04-10") == [airbus, socgen]
    assert shown_ids(client, token, start="2026-06-12") == [socgen, credit]
    assert shown_ids(client, token, end="2026-01-05") == [airbus]
    assert shown_ids(client, token, start="2026-03-01", end="2026-03-31") == []


def test_company_filter_ignores_accents_and_case(client, login_as, school):
    login_as("staff")
    token = current_token(client)
    socgen, _airbus, credit = (i.id for i in school["internships"])
    assert shown_ids(client, token, company="SOCIETE") == [socgen]
    assert shown_ids(client, token, company="crédit agri") == [credit]
    assert shown_ids(client, token, cohort=school["l1"].id) == [socgen, credit]


def test_sort_by_each_column_both_ways(client, login_as, school):
    login_as("staff")
    token = current_token(client)
    socgen, airbus, credit = (i.id for i in school["internships"])
    assert shown_ids(client, token) == [airbus, socgen, credit]
    assert shown_ids(client, token, order="desc") == [credit, socgen, airbus]
    assert shown_ids(client, token, sort="company") == [airbus, credit, socgen]
    assert shown_ids(client, token, sort="student") == [airbus, socgen, credit]
    assert shown_ids(client, token, sort="end", order="desc") == [credit, socgen, airbus]


def test_ticking_and_selecting_all_matching_internships(client, login_as, school, db):
    login_as("staff")
    token = current_token(client)
    socgen, airbus, credit = (i.id for i in school["internships"])
    url = f"{LIST}/selection/{token}"
    ticked = client.post(url, data={"shown": [socgen, airbus], "item_id": [airbus]}, headers=HTMX)
    assert "1 sélectionné(s)" in ticked.text
    client.post(url, data={"action": "all", "cohort": school["l1"].id})
    assert member_ids(db, token) == {socgen, airbus, credit}
    client.post(url, data={"action": "none"})
    client.post(url, data={"action": "all", "company": "airbus"})
    assert member_ids(db, token) == {airbus}


def test_selected_internships_give_their_students(db, school, make_user):
    user = make_user("staff")
    socgen, airbus, credit = school["internships"]
    selection = selections.create_selection(
        user, [credit.id, airbus.id, socgen.id], kind="internship"
    )
    db.session.commit()
    assert selections.selected_people(selection) == [school["elodie"], school["zoe"]]
    assert selections.selected_internships(selection) == [airbus, socgen, credit]
    assert selections.selected_absences(selection) == []


def test_an_absences_selection_is_a_404_on_the_internships_list(client, login_as, school):
    login_as("teacher")
    absences = client.get("/plannings/etudiants/absences").headers["Location"]
    token = re.search(r"selection=([\w-]+)", absences).group(1)
    assert client.get(LIST, query_string={"selection": token}).status_code == 404
    assert client.post(f"{LIST}/selection/{token}", data={"action": "all"}).status_code == 404
