"""Emploi du temps and Récapitulatif in the browser: the people list on the left, the document."""

from __future__ import annotations

import re
from datetime import time
from urllib.parse import parse_qs, urlsplit

import pytest

from hpmail.directory.models import CourseSlot

FR = {"Accept-Language": "fr"}
HTMX = {"HX-Request": "true", "Accept-Language": "fr"}
WEEK = "2026-12-07"  # Monday 7 December 2026
NEXT_WEEK = "2026-12-14"


@pytest.fixture
def school(db, make_cohort, make_person, make_course):
    """L2 Droit (TD1, TD2), a teacher, a student in each group, and three courses."""
    cohort = make_cohort("L2 Droit", groups=("TD1", "TD2"))
    td1, td2 = cohort.groups
    teacher = make_person("teacher", first_name="Œdipe", last_name="Ørsted")
    other_teacher = make_person("teacher", first_name="Zélie", last_name="Zola")
    lecture = make_course("Droit civil", "CM", teachers=[teacher], cohorts=[cohort], room="Amphi A")
    make_course("Procédure pénale", "TD", teachers=[teacher], groups=[td1], room="C12")
    tutorial = make_course("Droit fiscal", "TD", teachers=[other_teacher], groups=[td2], room="C14")
    tutorial.slots = [CourseSlot(weekday=2, start_time=time(14), end_time=time(16))]
    alice = make_person(
        "student", first_name="Alice", last_name="Arnaud", cohort=cohort, groups=[td1]
    )
    bruno = make_person(
        "student", first_name="Bruno", last_name="Blanc", cohort=cohort, groups=[td2]
    )
    db.session.commit()
    return {
        "cohort": cohort,
        "td1": td1,
        "td2": td2,
        "teacher": teacher,
        "other_teacher": other_teacher,
        "alice": alice,
        "bruno": bruno,
        "lecture": lecture,
    }


def open_page(client, path, **args):
    """GET the page, following the redirect that gives the list its selection token."""
    response = client.get(path, query_string=args, headers=FR)
    if response.status_code == 302:
        response = client.get(response.headers["Location"], headers=FR)
    return response


def test_a_students_timetable_shows_their_courses_and_not_another_groups(client, login_as, school):
    login_as("staff")

    page = open_page(
        client, "/plannings/student/emploi-du-temps", personne=school["alice"].id, semaine=WEEK
    )

    assert page.status_code == 200
    assert "Emploi du temps — ARNAUD Alice" in page.text
    assert "Droit civil" in page.text and "Amphi A" in page.text
    assert "Procédure pénale" in page.text and "C12" in page.text
    assert "Ørsted" in page.text
    assert "Droit fiscal" not in page.text and "C14" not in page.text
    assert "Lundi 7 décembre" in page.text and "Samedi 12 décembre" in page.text
    # The list stays on the left, each name leading to that person's document.
    assert f"personne={school['bruno'].id}" in page.text


def test_a_teachers_timetable_shows_what_they_teach(client, login_as, school):
    login_as("teacher")

    page = open_page(
        client,
        "/plannings/teacher/emploi-du-temps",
        personne=school["other_teacher"].id,
        semaine=WEEK,
    )

    assert page.status_code == 200
    assert "Droit fiscal" in page.text and "C14" in page.text
    assert "Droit civil" not in page.text and "Procédure pénale" not in page.text


def test_the_week_picker_moves_to_the_next_week_and_any_day_gives_its_week(
    client, login_as, school
):
    login_as("staff")
    alice = school["alice"].id
    page = open_page(client, "/plannings/student/emploi-du-temps", personne=alice, semaine=WEEK)

    next_link = re.search(r'rel="next" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(next_link).query)["semaine"] == [NEXT_WEEK]
    moved = client.get(next_link, headers=FR)
    assert "Lundi 14 décembre" in moved.text and "Droit civil" in moved.text

    thursday = open_page(
        client, "/plannings/student/emploi-du-temps", personne=alice, semaine="2026-12-17"
    )
    assert "Lundi 14 décembre" in thursday.text
    assert f'value="{NEXT_WEEK}"' in thursday.text


def test_an_empty_week_says_aucun_cours_cette_semaine(client, login_as, db, make_person):
    login_as("staff")
    teacher = make_person("teacher", last_name="Libre")

    page = open_page(client, "/plannings/teacher/emploi-du-temps", personne=teacher.id)

    assert page.status_code == 200
    assert "Aucun cours cette semaine." in page.text


def test_a_summary_shows_totals_by_type_and_a_teachers_load(client, login_as, school):
    login_as("staff")

    page = open_page(
        client,
        "/plannings/teacher/recapitulatif",
        personne=school["teacher"].id,
        du="2026-12-07",
        au="2026-12-20",
    )

    assert page.status_code == 200
    assert "Récapitulatif — ØRSTED Œdipe" in page.text
    assert "Droit civil" in page.text and "Procédure pénale" in page.text
    assert "Droit fiscal" not in page.text
    assert "Total CM" in page.text and "Total TD" in page.text
    # Two weeks of 2 h: 4 h of CM and 4 h of TD; load 4 × 1,5 + 4 = 10 h équivalent TD.
    assert "Charge d'enseignement : 10 h" in page.text.replace("&#39;", "'")


def test_a_summary_defaults_to_the_current_term(client, login_as, school):
    login_as("staff")

    page = open_page(client, "/plannings/student/recapitulatif", personne=school["bruno"].id)

    assert page.status_code == 200
    assert "Droit fiscal" in page.text and "Procédure pénale" not in page.text
    assert re.search(r'name="du" value="\d{4}-(09|02)-01"', page.text)


@pytest.mark.parametrize(
    ("path", "args", "message"),
    [
        ("emploi-du-temps", {"semaine": "abc"}, "Choisissez la semaine"),
        ("emploi-du-temps", {"semaine": "99999-01-01"}, "Choisissez la semaine"),
        ("emploi-du-temps", {"semaine": "1066-10-14"}, "Choisissez la semaine"),
        ("recapitulatif", {"du": "2026-12-20", "au": "2026-12-07"}, "se termine avant"),
        ("recapitulatif", {"du": "2026-01-01", "au": "2027-06-30"}, "366 jours au plus"),
        ("recapitulatif", {"du": "demain"}, "date de début n'est pas valide"),
    ],
)
def test_bad_periods_are_answered_422_in_french(client, login_as, school, path, args, message):
    login_as("staff")

    page = open_page(client, f"/plannings/student/{path}", personne=school["alice"].id, **args)

    assert page.status_code == 422
    assert message in page.text.replace("&#39;", "'")


@pytest.mark.parametrize("person", ["abc", str(10**30), "-3", "0", "999999"])
def test_an_unknown_person_is_404(client, login_as, school, person):
    login_as("staff")

    page = open_page(client, "/plannings/student/emploi-du-temps", personne=person)

    assert page.status_code == 404


def test_a_person_of_another_list_or_a_list_without_courses_is_404(client, login_as, school):
    login_as("staff")

    teacher_in_students = open_page(
        client, "/plannings/student/emploi-du-temps", personne=school["teacher"].id
    )
    staff_list = open_page(client, "/plannings/staff/emploi-du-temps")

    assert teacher_in_students.status_code == 404
    assert staff_list.status_code == 404


def test_another_users_selection_token_is_404(client, login_as, make_user, school):
    from hpmail.directory.selection import create_selection

    owner = make_user("staff")
    token = create_selection(owner, [school["alice"].id], kind="student").token
    login_as("staff")

    page = client.get(f"/plannings/student/emploi-du-temps?selection={token}", headers=FR)

    assert page.status_code == 404


def test_the_list_keeps_its_filter_and_selection_beside_the_document(client, login_as, school):
    login_as("staff")
    page = open_page(
        client,
        "/plannings/student/emploi-du-temps",
        personne=school["alice"].id,
        semaine=WEEK,
        q="blanc",
    )
    token = parse_qs(urlsplit(page.request.url).query)["selection"][0]

    # The filter's answer (htmx swaps the list alone) keeps the person and the week in its links.
    results = client.get(
        f"/plannings/student/emploi-du-temps?selection={token}&personne={school['alice'].id}"
        f"&semaine={WEEK}&q=",
        headers={**HTMX, "HX-Target": "results"},
    )
    assert results.text.lstrip().startswith('<div id="results">')
    assert "ARNAUD" in results.text and "BLANC" in results.text
    assert f"semaine={WEEK}" in results.text

    # Ticking a name from this page answers with this page's links.
    ticked = client.post(
        f"/plannings/student/selection/{token}",
        data={
            "action": "all",
            "list_page": "documents.person_timetable",
            "personne": str(school["alice"].id),
            "semaine": WEEK,
        },
        headers=HTMX,
    )
    assert "2 sélectionné(s)" in ticked.text
    assert "/plannings/student/emploi-du-temps?" in ticked.text
    assert f"personne={school['bruno'].id}" in ticked.text


def test_cohort_and_group_pages_show_their_courses(client, login_as, school):
    login_as("teacher")
    cohort, td2 = school["cohort"], school["td2"]

    whole = client.get(f"/promotions/{cohort.id}/emploi-du-temps?semaine={WEEK}", headers=FR)
    group = client.get(f"/groupes/{td2.id}/emploi-du-temps?semaine={WEEK}", headers=FR)
    summary = client.get(f"/groupes/{td2.id}/recapitulatif?du={WEEK}&au=2026-12-13", headers=FR)
    fragment = client.get(f"/groupes/{td2.id}/emploi-du-temps?semaine={NEXT_WEEK}", headers=HTMX)

    assert whole.status_code == group.status_code == summary.status_code == 200
    assert {"Droit civil", "Procédure pénale", "Droit fiscal"} <= set(
        re.findall(r"<strong>([^<]+)</strong>", whole.text)
    )
    assert "Droit fiscal" in group.text and "Procédure pénale" not in group.text
    assert "L2 Droit — TD2" in group.text
    assert "Total TD" in summary.text and "Procédure pénale" not in summary.text
    assert fragment.text.lstrip().startswith('<section id="document"')
    assert "Lundi 14 décembre" in fragment.text


def test_the_cohort_page_links_to_its_documents_and_its_groups(client, login_as, school):
    login_as("staff")
    cohort, td1 = school["cohort"], school["td1"]

    page = client.get(f"/promotions/{cohort.id}", headers=FR)

    assert f'href="/promotions/{cohort.id}/emploi-du-temps"' in page.text
    assert f'href="/promotions/{cohort.id}/recapitulatif"' in page.text
    assert f'href="/groupes/{td1.id}/emploi-du-temps"' in page.text
    assert f'href="/groupes/{td1.id}/recapitulatif"' in page.text


@pytest.mark.parametrize(
    "path",
    ["/promotions/999999/emploi-du-temps", f"/groupes/{10**30}/recapitulatif"],
)
def test_an_unknown_cohort_or_group_is_404(client, login_as, db, path):
    login_as("staff")

    assert client.get(path, headers=FR).status_code == 404


@pytest.mark.parametrize("role", ["teacher", "staff", "admin"])
def test_every_signed_in_role_sees_the_documents_as_it_sees_the_lists(
    client, login_as, school, role
):
    login_as(role)

    for path in ("emploi-du-temps", "recapitulatif"):
        page = open_page(client, f"/plannings/student/{path}", personne=school["alice"].id)
        assert page.status_code == 200


def test_signed_out_visitors_are_sent_to_the_sign_in_page(client, school):
    page = client.get(f"/groupes/{school['td1'].id}/emploi-du-temps")

    assert page.status_code == 302 and "/connexion" in page.headers["Location"]


def test_the_plannings_menu_leads_to_the_documents(client, login_as, db):
    login_as("teacher")

    home = client.get("/", headers=FR)

    assert "Emploi du temps des enseignants" in home.text
    assert "Récapitulatif des étudiants" in home.text


@pytest.mark.browser
def test_clicking_names_in_the_list_changes_the_timetable_then_the_week_moves(
    page, sign_in_page, school
):
    from datetime import timedelta

    from playwright.sync_api import expect

    from hpmail.core.time import school_today

    alice, bruno = school["alice"], school["bruno"]
    today = school_today()  # the day the page opens on (tests/core/test_time.py tests it)
    monday = today - timedelta(days=today.weekday())
    sign_in_page("staff")

    page.get_by_text("Plannings").first.click()
    page.get_by_role("navigation").get_by_role("link", name="Emploi du temps des étudiants").click()
    expect(page.locator("#document")).to_contain_text("Cliquez sur un nom")

    page.get_by_role("link", name="ARNAUD").click()
    document = page.locator("#document")
    expect(document.locator("h2")).to_have_text("Emploi du temps — ARNAUD Alice")
    expect(document).to_contain_text("Procédure pénale")
    expect(document).not_to_contain_text("Droit fiscal")
    expect(page).to_have_url(re.compile(f"personne={alice.id}"))
    # The view is swapped in place, not a page inside the page.
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.locator("#documents-view")).to_have_count(1)

    page.get_by_role("link", name="BLANC").click()
    expect(document.locator("h2")).to_have_text("Emploi du temps — BLANC Bruno")
    expect(document).to_contain_text("Droit fiscal")
    expect(document).not_to_contain_text("Procédure pénale")
    expect(page).to_have_url(re.compile(f"personne={bruno.id}"))
    expect(page.get_by_label("Semaine du")).to_have_value(monday.isoformat())

    page.get_by_role("link", name="Semaine suivante").click()
    next_monday = (monday + timedelta(weeks=1)).isoformat()
    expect(page.get_by_label("Semaine du")).to_have_value(next_monday)
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page).to_have_url(re.compile(f"semaine={next_monday}"))
    expect(document.locator("h2")).to_have_text("Emploi du temps — BLANC Bruno")
    expect(document).to_contain_text("Droit fiscal")

    # The list still leads to the same week: another name keeps it.
    page.get_by_role("link", name="ARNAUD").click()
    expect(document.locator("h2")).to_have_text("Emploi du temps — ARNAUD Alice")
    expect(page.get_by_label("Semaine du")).to_have_value(next_monday)
