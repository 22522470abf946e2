"""Plannings › Étudiants / Enseignants / Personnels › Liste: filters, sort, paging, e-mails."""

from __future__ import annotations

import re

import pytest

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LIST_PAGE_SIZE": 5}


def open_list(client, kind="student", **args):
    """Open a list the way the menu does (it redirects to the user's current selection)."""
    response = client.get(f"/plannings/{kind}", query_string=args, headers=FR)
    assert response.status_code == 302
    page = client.get(response.headers["Location"], headers=FR)
    assert page.status_code == 200
    return page


def names_in(page) -> list[str]:
    return re.findall(r'aria-label="Sélectionner ([^"]+)"', page.text)


def test_student_list_is_in_french_with_email_state_column(
    client, login_as, make_person, make_cohort
):
    login_as("staff")
    l1 = make_cohort("L1 Informatique", groups=("TD1",))
    make_person(last_name="Dupont", first_name="Élodie", cohort=l1, groups=l1.groups)
    make_person(last_name="Martin", first_name="Hugo", email=None, cohort=l1)
    make_person(last_name="Durand", first_name="Léa", email="lea.durand@@exemple", cohort=l1)
    page = open_list(client)
    assert "<h1>Étudiants</h1>" in page.text
    for text in ("Filtrer", "Promotion", "Groupe", "Toutes", "Tous", "0 sélectionné(s)"):
        assert text in page.text
    assert "Sélectionner tout ce qui correspond au filtre (3)" in page.text
    assert "Adresse valide" in page.text
    assert "Adresse absente" in page.text
    assert "Adresse invalide" in page.text
    # The invalid address is kept and shown, never dropped.
    assert "lea.durand@@exemple" in page.text
    assert "L1 Informatique" in page.text and "TD1" in page.text


def test_teacher_and_staff_lists_show_only_their_kind(client, login_as, make_person):
    login_as("teacher")
    make_person(kind="teacher", last_name="Lefèvre", first_name="Anne")
    make_person(kind="staff", last_name="Roux", first_name="Paul")
    make_person(kind="student", last_name="Petit", first_name="Zoé")
    teachers = open_list(client, "teacher")
    assert "<h1>Enseignants</h1>" in teachers.text
    assert names_in(teachers) == ["LEFÈVRE Anne"]
    staff = open_list(client, "staff")
    assert "<h1>Personnels</h1>" in staff.text
    assert names_in(staff) == ["ROUX Paul"]


def test_unknown_kind_is_a_french_404(client, login_as):
    login_as("staff")
    response = client.get("/plannings/parents", headers=FR)
    assert response.status_code == 404
    assert "Page introuvable" in response.text


def test_text_filter_ignores_accents_and_case(client, login_as, make_person):
    login_as("staff")
    make_person(last_name="Lefèvre", first_name="Élodie")
    make_person(last_name="Lefevre", first_name="Marc")
    make_person(last_name="Martin", first_name="Eloïse")
    assert names_in(open_list(client, q="LEFEVRE")) == ["LEFÈVRE Élodie", "LEFEVRE Marc"]
    assert names_in(open_list(client, q="élo")) == ["LEFÈVRE Élodie", "MARTIN Eloïse"]
    assert names_in(open_list(client, q="lefevre elodie")) == ["LEFÈVRE Élodie"]
    # LIKE wildcards typed by the user are plain characters.
    assert names_in(open_list(client, q="%")) == []


def test_cohort_and_group_filters(client, login_as, make_person, make_cohort):
    login_as("staff")
    l1 = make_cohort("L1 Informatique", groups=("TD1", "TD2"))
    bts = make_cohort("BTS SIO 1")
    make_person(last_name="Arnaud", first_name="Léo", cohort=l1, groups=[l1.groups[0]])
    make_person(last_name="Blanc", first_name="Inès", cohort=l1, groups=[l1.groups[1]])
    make_person(last_name="Colin", first_name="Jade", cohort=bts)
    assert names_in(open_list(client, cohort=l1.id)) == ["ARNAUD Léo", "BLANC Inès"]
    assert names_in(open_list(client, cohort=bts.id)) == ["COLIN Jade"]
    assert names_in(open_list(client, group=l1.groups[1].id)) == ["BLANC Inès"]
    # Nonsense filter values are ignored, not a server error.
    assert len(names_in(open_list(client, cohort="abc", group="99999999999999999999"))) == 3


def test_sort_by_each_column_both_ways(client, login_as, make_person, make_cohort):
    login_as("staff")
    a, b = make_cohort("A cohort"), make_cohort("B cohort")
    make_person(last_name="Émery", first_name="Zoé", email="b@exemple.fr", cohort=b)
    make_person(last_name="Durand", first_name="Adèle", email="c@exemple.fr", cohort=a)
    make_person(last_name="Fabre", first_name="Éric", email="a@exemple.fr", cohort=b)
    # Accented names sort with their letter, not after Z.
    assert names_in(open_list(client)) == ["DURAND Adèle", "ÉMERY Zoé", "FABRE Éric"]
    assert names_in(open_list(client, order="desc")) == ["FABRE Éric", "ÉMERY Zoé", "DURAND Adèle"]
    assert names_in(open_list(client, sort="first_name")) == [
        "DURAND Adèle",
        "FABRE Éric",
        "ÉMERY Zoé",
    ]
    assert names_in(open_list(client, sort="email")) == ["FABRE Éric", "ÉMERY Zoé", "DURAND Adèle"]
    assert names_in(open_list(client, sort="cohort")) == ["DURAND Adèle", "ÉMERY Zoé", "FABRE Éric"]
    page = open_list(client, sort="cohort", order="desc")
    assert names_in(page) == ["FABRE Éric", "ÉMERY Zoé", "DURAND Adèle"]
    assert 'aria-sort="descending"' in page.text
    assert names_in(open_list(client, sort="'; drop table person")) == names_in(open_list(client))


def test_paging_shows_page_size_people_and_links(client, login_as, make_person):
    login_as("staff")
    for n in range(12):
        make_person(last_name=f"Nom{n:02d}", first_name="X")
    first = open_list(client)
    assert len(names_in(first)) == 5
    assert "Page 1 sur 3" in first.text
    assert "Page suivante" in first.text and "Page précédente" not in first.text
    last = open_list(client, page=3)
    assert names_in(last) == ["NOM10 X", "NOM11 X"]
    assert "Page précédente" in last.text
    # A page beyond the end shows the last one.
    assert names_in(open_list(client, page=40)) == ["NOM10 X", "NOM11 X"]


def test_htmx_filter_gets_only_the_results_fragment(client, login_as, make_person):
    login_as("staff")
    make_person(last_name="Dupont", first_name="Élodie")
    full = open_list(client)
    url = re.search(r'action="(/plannings/student/selection/[^"]+)"', full.text).group(1)
    token = url.rsplit("/", 1)[1]
    fragment = client.get(
        "/plannings/student",
        query_string={"q": "dupont", "selection": token},
        headers={**FR, "HX-Request": "true"},
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="results">')
    assert "<html" not in fragment.text
    assert "DUPONT Élodie" in fragment.text
    assert "HX-Request" in fragment.headers["Vary"]


def test_signed_out_visitor_is_sent_to_sign_in(client):
    response = client.get("/plannings/student")
    assert response.status_code == 302
    assert "/connexion" in response.headers["Location"]


def test_group_menu_lists_the_chosen_cohorts_groups_and_follows_htmx_changes(
    client, login_as, make_person, make_cohort
):
    login_as("staff")
    l1 = make_cohort("L1 Informatique", groups=("TD1", "TD2"))
    bts = make_cohort("BTS SIO 1", groups=("G-SIO",))
    make_person(last_name="Arnaud", cohort=l1, groups=[l1.groups[0]])
    make_person(last_name="Colin", cohort=bts, groups=[bts.groups[0]])
    page = open_list(client)
    menu = page.text.split('id="group-filter"')[1].split("</label>")[0]
    assert 'disabled title="Choisissez d\'abord une promotion"' in menu
    assert "G-SIO" not in page.text.split("<table")[0]
    page = open_list(client, cohort=l1.id)
    menu = page.text.split('id="group-filter"')[1].split("</label>")[0]
    assert "TD1" in menu and "TD2" in menu and "G-SIO" not in menu
    token = re.search(r"selection=([\w-]+)", page.text).group(1)
    # Changing the cohort with htmx: the group of the other cohort is dropped, the menu swapped.
    fragment = client.get(
        "/plannings/student",
        query_string={"selection": token, "cohort": bts.id, "group": l1.groups[0].id},
        headers={**FR, "HX-Request": "true"},
    )
    assert 'id="group-filter" hx-swap-oob="true"' in fragment.text
    assert "G-SIO" in fragment.text and "TD1</option>" not in fragment.text
    assert re.findall(r'aria-label="Sélectionner ([^"]+)"', fragment.text) == [f"COLIN Prénom{2}"]
