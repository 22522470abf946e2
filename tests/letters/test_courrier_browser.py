"""In a browser, with a real worker and a real SMTP server: select absences, Envoyer un courrier,
choose the letter, E-mail, Imprimer / Mailer, Envoyer; each student receives their own letter and
the printed copy holds the one without e-mail."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.fixtures.worker import wait_until, worker_app_config

pytestmark = [pytest.mark.browser, pytest.mark.worker]

LETTER = (
    "<p>{{ prenom }} {{ nom }} : {{ nombre_absences }} absence(s).</p>"
    "<ul>{% for absence in absences %}<li>{{ absence.cours }}</li>{% endfor %}</ul>"
)


@pytest.fixture
def app_config(tmp_path):
    return worker_app_config(tmp_path, DOCUMENT_JOB_CHUNK=1)


def test_a_secretary_sends_each_student_a_letter_of_their_absences_and_prints_the_others(
    page, sign_in_page, sender, school, make_absence, make_letter, smtp_server, worker
):
    make_absence(school.alice, date(2026, 11, 2), course_label="Droit civil")
    make_absence(school.alice, date(2026, 11, 9), course_label="Anglais")
    make_absence(school.bruno, date(2026, 11, 3), course_label="Droit pénal")
    make_absence(school.chloe, date(2026, 11, 4), course_label="Économie")
    make_letter("absences", LETTER, subject="Vos absences", title="Absences du mois")
    make_letter("students", "<p>{{ nom }}</p>", title="Convocation")
    worker().wait_ready()
    sign_in_page(sender)

    page.goto("/plannings/etudiants/absences")
    page.locator("button[value=all]").click()
    expect(page.locator("#selection-counter")).to_contain_text("4")
    page.get_by_role("link", name="Envoyer un courrier").click()

    expect(page.locator("h1")).to_contain_text("Envoyer un courrier")
    expect(page.locator(".lead")).to_contain_text("3 personnes sélectionnées")
    expect(page.locator("select[name=letter] option")).to_have_text(
        ["Choisissez une lettre…", "Absences du mois"]
    )
    page.get_by_label("Lettre type").select_option(label="Absences du mois")
    page.get_by_label("E-mail", exact=True).check()
    page.get_by_label("Insérer le courrier dans le corps de l'e-mail").check()
    page.get_by_label("Uniquement à ceux qui ne reçoivent pas d'e-mail").check()
    page.get_by_role("button", name="Imprimer / Mailer").click()

    expect(page.locator(".recipient-count")).to_contain_text("2 peuvent recevoir l'e-mail")
    expect(page.locator(".unreachable")).to_contain_text("SANSMAIL Chloé")
    expect(page.locator("#subject")).to_have_value("Vos absences")
    page.get_by_role("button", name="Envoyer l'e-mail").click()

    expect(page.locator(".mailing-state")).to_contain_text("2 envoyés", timeout=60_000)
    wait_until(lambda: len(smtp_server.received) == 2, timeout=10, message="not delivered")
    by_address = {r.rcpt_tos[0]: r.message for r in smtp_server.received}
    alice = by_address[school.alice.email].get_body(("html",)).get_content()
    assert "Alice Martin : 2 absence(s)." in alice and "Anglais" in alice
    assert "Droit pénal" not in alice
    bruno = by_address[school.bruno.email].get_body(("html",)).get_content()
    assert "Bruno Durand : 1 absence(s)." in bruno and "Droit civil" not in bruno
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger l'exemplaire à imprimer (PDF)").click()
    text = "\n".join(p.extract_text() for p in PdfReader(download.value.path()).pages)
    assert "Chloé Sansmail : 1 absence(s)." in text and "Économie" in text
    assert "Alice" not in text and "Bruno" not in text
