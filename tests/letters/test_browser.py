"""In a browser: a secretary writes a letter, inserts a field from the menu, sees the preview."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from hpmail.letters.models import LetterTemplate


@pytest.mark.browser
def test_secretary_writes_a_letter_with_a_field_and_sees_it_written_for_a_real_student(
    page, sign_in_page, make_person, make_cohort, db
):
    cohort = make_cohort("L2 Droit", groups=("TD1",))
    make_person(last_name="Zéphyr", first_name="Agathe", cohort=cohort)
    make_person(last_name="Œuvray", first_name="Zoë", cohort=cohort)
    sign_in_page("staff")

    page.get_by_text("Configuration").first.click()
    page.get_by_role("navigation").get_by_role("link", name="Lettres types").click()
    expect(page.locator("h1")).to_have_text("Lettres types")
    page.get_by_role("region", name="Étudiants").get_by_role("link", name="Nouvelle lettre").click()

    page.get_by_label("Titre").fill("Convocation")
    page.get_by_label("Objet").fill("Convocation au secrétariat")
    area = page.locator(".editor-area")
    area.click()
    area.press_sequentially("Bonjour ")
    page.locator(".editor-fields summary").click()
    page.get_by_role("menuitem", name="Prénom").click()
    area.press_sequentially(" ")
    page.locator(".editor-fields summary").click()
    page.get_by_role("menuitem", name="Promotion").click()

    preview = page.locator("#letter-preview")
    # The first student in the list's order is Zoë Œuvray (Œ sorts as OE).
    expect(preview).to_contain_text("Bonjour Zoë L2 Droit")
    expect(preview).to_contain_text("Objet : Convocation au secrétariat")

    page.select_option("select[name=record]", label="ZÉPHYR Agathe")
    expect(preview).to_contain_text("Bonjour Agathe L2 Droit")

    # A field the category does not have: the preview says where, in French.
    area.press_sequentially(" {{ entreprise }}")
    expect(preview).to_contain_text("Ligne 1 : champ inconnu « entreprise ».")
    for _ in range(len(" {{ entreprise }}")):
        area.press("Backspace")
    expect(preview).to_contain_text("Bonjour Agathe L2 Droit")

    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#flashes")).to_contain_text("La lettre « Convocation » est enregistrée.")
    expect(page).to_have_url(re.compile(r"/configuration/lettres-types/\d+$"))
    letter = db.session.scalars(select(LetterTemplate)).one()
    assert "Bonjour {{ prenom }} {{ promotion }}" in letter.body_html


@pytest.mark.browser
def test_the_list_of_absences_inserted_from_the_menu_lists_the_student_s_absences(
    page, sign_in_page, make_person, make_absence
):
    from datetime import date

    student = make_person(last_name="Durand", first_name="Inès")
    make_absence(student, date(2026, 11, 2), course_label="Droit civil")
    make_absence(student, date(2026, 11, 9), (14, 0), (15, 30), course_label="Anglais")
    sign_in_page("admin", at="/configuration/lettres-types/nouvelle/absences")
    area = page.locator(".editor-area")
    area.click()
    area.press_sequentially("Absences : ")
    page.locator(".editor-fields summary").click()
    page.get_by_role("menuitem", name="Liste des absences").click()
    page.locator(".editor-fields summary").click()
    page.get_by_role("menuitem", name="Total des heures").click()

    preview = page.locator("#letter-preview")
    expect(preview).to_contain_text("2 novembre 2026, 8 h 00 – 10 h 00 : Droit civil (2 h)")
    expect(preview).to_contain_text("9 novembre 2026, 14 h 00 – 15 h 30 : Anglais (1,5 h)")
    expect(preview).to_contain_text("3,5 h")
    expect(preview.locator("li")).to_have_count(2)
