"""In a browser, with a real worker and a real SMTP server: select students, Imprimer, E-mail,
Imprimer / Mailer, Envoyer, watch the progress, receive the e-mails, download the printed copy."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.fixtures.worker import wait_until, worker_app_config

pytestmark = [pytest.mark.browser, pytest.mark.worker]


@pytest.fixture
def app_config(tmp_path):
    return worker_app_config(tmp_path, DOCUMENT_JOB_CHUNK=1)


def test_a_secretary_mails_each_student_their_timetable_and_prints_the_others(
    page, sign_in_page, sender, school, smtp_server, worker
):
    worker().wait_ready()
    sign_in_page(sender)

    page.goto("/plannings/student")
    page.locator("button[value=all]").click()
    expect(page.locator("#selection-counter")).to_contain_text("3")
    page.get_by_role("link", name="Imprimer", exact=True).click()

    expect(page.locator(".lead")).to_contain_text("3 personnes sélectionnées")
    page.get_by_label("E-mail", exact=True).check()
    page.get_by_label("Insérer un aperçu (image PNG) dans le corps").check()
    page.get_by_label("Uniquement à ceux qui ne reçoivent pas d'e-mail").check()
    page.fill("input[name=week]", "2026-12-09")
    page.get_by_role("button", name="Imprimer / Mailer").click()

    expect(page.locator("h1")).to_contain_text("Envoyer à chacun par e-mail")
    expect(page.locator(".recipient-count")).to_contain_text("2 peuvent recevoir l'e-mail")
    expect(page.locator(".unreachable")).to_contain_text("SANSMAIL Chloé")
    expect(page.locator("#subject")).to_have_value("Emploi du temps — semaine du 7 décembre 2026")
    page.get_by_role("button", name="Envoyer l'e-mail").click()

    expect(page.locator(".mailing-state")).to_contain_text("2 envoyés", timeout=60_000)
    expect(page.locator(".progress-count")).to_contain_text("3 / 3 documents prêts")
    wait_until(lambda: len(smtp_server.received) == 2, timeout=10, message="not delivered")
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == sorted(
        [school.alice.email, school.bruno.email]
    )
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger l'exemplaire à imprimer (PDF)").click()
    text = "\n".join(p.extract_text() for p in PdfReader(download.value.path()).pages)
    assert "Chloé Sansmail" in text
    assert "Alice" not in text and "Bruno" not in text
