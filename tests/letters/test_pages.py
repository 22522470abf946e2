"""Configuration › Lettres types: the list, the editor, its live preview, and who may use them."""

from __future__ import annotations

import html
import io
import json
import re
from datetime import date

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from hpmail.documents.print_html import french_date
from hpmail.letters.demo import load_demo_letters
from hpmail.letters.fields import records_for
from hpmail.letters.models import Category, LetterTemplate
from hpmail.letters.render import letter_pdf
from tests.core.test_time import AHEAD, BEHIND, days_around

FR = {"Accept-Language": "fr"}
HTMX = {**FR, "HX-Request": "true"}


def letter_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(LetterTemplate))


@pytest.mark.parametrize("role", ["admin", "staff"])
def test_admin_and_staff_see_the_letters_by_category_in_french(client, login_as, make_letter, role):
    make_letter(Category.ABSENCES, "<p>{{ nom }}</p>", title="Absences non justifiées")
    login_as(role)
    page = client.get("/configuration/lettres-types", headers=FR).text
    for label in ("Étudiants", "Enseignants", "Personnels", "Absences", "Stages"):
        assert f">{label}</h2>" in page
    assert "Absences non justifiées" in page
    assert "Lettres types" in client.get("/", headers=FR).text  # in the Configuration menu


def test_a_teacher_may_neither_see_nor_edit_nor_preview_letters(client, login_as, make_letter):
    letter = make_letter(Category.STUDENTS, "<p>{{ nom }}</p>")
    login_as("teacher")
    assert client.get("/configuration/lettres-types").status_code == 403
    assert client.get(f"/configuration/lettres-types/{letter.id}").status_code == 403
    assert client.get("/configuration/lettres-types/nouvelle/students").status_code == 403
    data = {"title": "x", "body": "<p>{{ nom }}</p>"}
    assert client.post("/configuration/lettres-types/apercu/students", data=data).status_code == 403
    assert "Lettres types" not in client.get("/", headers=FR).text


def test_the_editor_lists_the_category_s_fields_in_french(client, login_as):
    login_as("staff")
    page = client.get("/configuration/lettres-types/nouvelle/internships", headers=FR).text
    assert 'data-editor-fields-label="Insérer un champ"' in page
    menu = json.loads(html.unescape(re.search(r"data-editor-fields='([^']*)'", page).group(1)))
    assert ["Entreprise", "{{ entreprise }}"] in menu
    assert ["Adresse de l'entreprise", "{{ adresse_entreprise }}"] in menu
    assert [label for label, _text in menu] == [
        "Nom",
        "Prénom",
        "E-mail",
        "Date du jour",
        "Établissement",
        "Promotion",
        "Groupes",
        "Entreprise",
        "Adresse de l'entreprise",
        "Tuteur",
        "E-mail du tuteur",
        "Début",
        "Fin",
        "Sujet",
    ]


def test_a_letter_is_saved_sanitised_and_a_hostile_one_is_refused_in_french(client, login_as, db):
    user = login_as("staff")
    hostile = {
        "title": "Piège",
        "subject": "Bonjour",
        "body": "<p>Bonjour</p><p>{{ ''.__class__.__mro__ }}</p>",
    }
    response = client.post(
        "/configuration/lettres-types/nouvelle/students", data=hostile, headers=FR
    )
    assert response.status_code == 422
    assert "Ligne 2 : « ….__mro__ » n&#39;est pas un champ de cette lettre." in response.text
    assert letter_count(db) == 0

    good = {
        "title": "Convocation",
        "subject": "Convocation — {{ nom }}",
        "body": '<p onclick="x()">Bonjour {{ prenom }}</p><script>alert(1)</script>',
    }
    response = client.post("/configuration/lettres-types/nouvelle/students", data=good)
    assert response.status_code == 303
    letter = db.session.scalars(select(LetterTemplate)).one()
    assert letter.body_html == "<p>Bonjour {{ prenom }}</p>"
    assert (letter.category, letter.created_by_id, letter.updated_by_id) == (
        "students",
        user.id,
        user.id,
    )


def test_an_edited_letter_keeps_its_author_and_records_who_changed_it(
    client, login_as, make_letter, db
):
    letter = make_letter(Category.TEACHERS, "<p>{{ nom }}</p>", title="Réunion")
    author = letter.created_by_id
    editor = login_as("admin")
    page = client.get(f"/configuration/lettres-types/{letter.id}", headers=FR).text
    assert "Réunion" in page and "{{ nom }}" in page
    data = {"title": "Réunion de rentrée", "subject": "", "body": "<p>{{ prenom }}</p>"}
    assert client.post(f"/configuration/lettres-types/{letter.id}", data=data).status_code == 303
    db.session.refresh(letter)
    assert (letter.title, letter.created_by_id, letter.updated_by_id) == (
        "Réunion de rentrée",
        author,
        editor.id,
    )
    refused = {"title": "", "subject": "", "body": "<p>{{ promotion }}</p>"}
    response = client.post(f"/configuration/lettres-types/{letter.id}", data=refused, headers=FR)
    assert response.status_code == 422
    assert "Donnez un titre à la lettre." in response.text
    assert "Ligne 1 : champ inconnu « promotion »." in response.text
    db.session.refresh(letter)
    assert letter.title == "Réunion de rentrée"


def test_the_preview_writes_the_letter_for_the_first_record_or_the_one_picked(
    client, login_as, make_person
):
    make_person("student", last_name="Zola", first_name="Émile")
    first = make_person("student", last_name="Abadie", first_name="Léa")
    login_as("staff")
    data = {
        "title": "",
        "subject": "Pour {{ nom }}",
        "body": "<p>Bonjour {{ prenom }} {{ nom }}</p>",
    }
    url = "/configuration/lettres-types/apercu/students"
    response = client.post(url, data=data, headers=HTMX)
    assert response.status_code == 200
    assert "Bonjour Léa Abadie" in response.text and "Objet : Pour Abadie" in response.text
    assert "<html" not in response.text  # the preview's fragment only
    picked = client.post(url, data={**data, "record": "1"}, headers=HTMX).text
    assert "Bonjour Émile Zola" in picked
    assert first.id != 1

    wrong = client.post(url, data={**data, "body": "<p>{{ nom }</p>"}, headers=HTMX)
    assert wrong.status_code == 422
    assert "Ligne 1 : un champ ou une instruction est mal écrit" in wrong.text


class TestTheSchoolsDay:
    """At any moment one of the two zones is on another day than a server kept in UTC."""

    @pytest.fixture(params=[AHEAD, BEHIND])
    def zone(self, request) -> str:
        return request.param

    @pytest.fixture
    def app_config(self, app_config, zone):
        return {**app_config, "BABEL_DEFAULT_TIMEZONE": zone}

    def test_the_preview_is_dated_on_the_schools_day_whatever_the_servers(
        self, client, login_as, make_person, zone
    ):
        make_person("student", last_name="Abadie", first_name="Léa")
        login_as("staff")
        data = {"title": "", "subject": "Le {{ date_du_jour }}", "body": "<p>{{ nom }}</p>"}

        url = "/configuration/lettres-types/apercu/students"
        response, days = days_around(zone, lambda: client.post(url, data=data, headers=HTMX))

        assert response.status_code == 200
        assert any(f"Objet : Le {french_date(day)}" in response.text for day in days), response.text


def test_the_pdf_preview_prints_the_letter_for_a_real_record(client, login_as, make_person):
    make_person("teacher", last_name="Œuvrard", first_name="Noël")
    login_as("admin")
    data = {"title": "Réunion", "subject": "", "body": "<p>Cher {{ prenom }} {{ nom }},</p>"}
    response = client.post("/configuration/lettres-types/apercu/teachers/pdf", data=data)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    text = PdfReader(io.BytesIO(response.data)).pages[0].extract_text()
    assert "Cher Noël Œuvrard," in text


def test_the_demo_letters_pass_the_checks_and_print_for_real_records(
    app, db, make_user, make_person, make_absence, make_internship
):
    student = make_person("student", last_name="Durand", first_name="Inès")
    absences = [
        make_absence(student, date(2026, 11, 2), course_label="Droit civil", reason=""),
        make_absence(student, date(2026, 11, 5), (10, 0), (12, 30), course_label="Anglais"),
    ]
    internship = make_internship(student, "Mairie de Lyon", date(2027, 1, 4), date(2027, 2, 26))
    load_demo_letters(make_user("staff"))
    db.session.commit()
    letters = {letter.title: letter for letter in db.session.scalars(select(LetterTemplate))}
    assert set(letters) == {
        "Convocation",
        "Absences non justifiées",
        "Convention de stage",
        "Attestation de scolarité",
    }
    absence_ids = [a.id for a in absences]
    records = {
        "Convocation": student,
        "Attestation de scolarité": student,
        "Absences non justifiées": records_for(Category.ABSENCES, absence_ids)[0],
        "Convention de stage": internship,
    }
    with app.test_request_context():
        texts = {
            title: " ".join(
                PdfReader(io.BytesIO(letter_pdf(letters[title], record, _letterhead())))
                .pages[0]
                .extract_text()
                .split()
            )
            for title, record in records.items()
        }
    assert "Inès Durand" in texts["Convocation"]
    assert "2 fois, soit 4,5 h de cours" in texts["Absences non justifiées"]
    assert "Droit civil" in texts["Absences non justifiées"]
    assert "Mairie de Lyon" in texts["Convention de stage"]
    assert "Attestation de scolarité" in texts["Attestation de scolarité"]


def _letterhead():
    from hpmail.documents.layout import LetterheadInfo

    return LetterheadInfo(school_name="Lycée Démo", town="Lyon")


def test_a_name_written_in_html_stays_text_in_the_preview(client, login_as, make_person):
    make_person("staff", last_name="<script>alert(1)</script>", first_name="<b>Eve</b>")
    login_as("staff")
    data = {"title": "", "subject": "{{ nom }}", "body": "<p>{{ prenom }} {{ nom }}</p>"}
    response = client.post("/configuration/lettres-types/apercu/staff", data=data, headers=HTMX)
    assert "<script>alert(1)" not in response.text and "<b>Eve" not in response.text
    assert "&lt;b&gt;Eve&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;" in response.text
