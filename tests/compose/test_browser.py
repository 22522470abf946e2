"""In a browser: select a cohort, see who can receive, write, attach, sign, send, find it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.compose.conftest import PNG


@pytest.mark.browser
def test_secretary_sends_to_a_cohort_and_finds_the_email_in_the_archive(
    page,
    sign_in_page,
    make_user,
    make_person,
    make_cohort,
    personal_account,
    delivery_settings,
    smtp_server,
):
    delivery_settings(smtp_server)  # delegated; HUEY_IMMEDIATE delivers in the request
    cohort = make_cohort("BTS SIO 1")
    make_cohort("Autre promotion")
    good = [make_person("student", cohort=cohort, last_name=f"Bon{n}") for n in range(3)]
    make_person("student", cohort=cohort, last_name="Sansadresse", email=None)
    make_person("student", cohort=cohort, last_name="Malecrit", email="jean@@exemple")
    make_person("student", last_name="Ailleurs")
    user = make_user("staff", display_name="Sophie Martin")
    account = personal_account(user, reply_to="sophie.reponses@exemple.fr", hide_recipients=True)
    sign_in_page(user)

    page.goto("/e-mail/signature")
    page.set_input_files(
        "input[name=signature]",
        files=[{"name": "scan.png", "mimeType": "image/png", "buffer": PNG}],
    )
    page.get_by_role("button", name="Enregistrer ma signature").click()
    expect(page.locator(".flash-success")).to_contain_text("signature a été enregistrée")

    page.goto("/plannings/student")
    page.select_option("select[name=cohort]", label="BTS SIO 1")
    expect(page.locator("table.people tbody tr")).to_have_count(5)
    page.locator("button[value=all]").click()
    expect(page.locator("#selection-counter")).to_contain_text("5")
    page.get_by_role("link", name="Envoyer un e-mail").click()

    expect(page.locator(".recipient-type")).to_contain_text("Étudiants (3)")
    page.locator(".unreachable summary").click()
    expect(page.locator(".unreachable")).to_contain_text("Sans adresse")
    expect(page.locator(".unreachable")).to_contain_text("SANSADRESSE")
    expect(page.locator(".unreachable")).to_contain_text("Adresse invalide")
    expect(page.locator("input[name=hide_recipients]")).to_be_checked()
    page.fill("#subject", "Visite de l'entreprise")
    page.locator(".editor-area").click()
    page.keyboard.type("Bonjour, la visite chez Ubisoft aura lieu jeudi.")
    page.get_by_role("button", name="Gras").click()
    page.keyboard.type(" Soyez à l'heure.")
    page.set_input_files(
        "#attachments",
        files=[
            {
                "name": "programme visite.pdf",
                "mimeType": "application/pdf",
                "buffer": b"%PDF-1.4 visite",
            }
        ],
    )
    page.check("input[name=insert_signature]")
    page.get_by_role("button", name="Envoyer l'e-mail").click()

    expect(page.locator(".flash-success")).to_contain_text("1 e-mail mis en file d'attente")
    (received,) = smtp_server.received
    message = received.message
    assert sorted(received.rcpt_tos) == sorted(p.email for p in good)
    assert message["From"] == f"Sophie Martin <{account.address}>"
    assert message["Reply-To"] == "sophie.reponses@exemple.fr"
    assert message["To"] == f"Sophie Martin <{account.address}>"  # recipients hidden (Bcc)
    assert not any(p.email in received.data.decode() for p in good)
    assert message["Subject"] == "Visite de l'entreprise"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "la visite chez Ubisoft aura lieu jeudi." in text
    assert "<b>" in html and "Soyez à l'heure." in html
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    assert f"cid:{image['Content-ID'].strip('<>')}" in html and image.get_content() == PNG
    (attached,) = list(message.iter_attachments())
    assert attached.get_filename() == "programme visite.pdf"
    assert attached.get_content() == b"%PDF-1.4 visite"

    page.get_by_role("link", name="Le voir dans les e-mails envoyés").click()
    expect(page.locator("#pane h2")).to_have_text("Visite de l'entreprise")
    page.goto("/e-mails")
    page.fill("#q", "ubiso")
    expect(page.locator("table.mailings tbody tr")).to_have_count(1)
    expect(page.locator("table.mailings")).to_contain_text("Visite de l'entreprise")
    page.fill("#q", "inexistant")
    expect(page.locator("table.mailings")).to_contain_text("Aucun e-mail trouvé")
    page.fill("#q", "jeudi")
    page.get_by_role("link", name="Visite de l'entreprise").click()
    expect(page.locator("#pane")).to_contain_text("programme visite.pdf")
    expect(page.locator("#pane")).to_contain_text("Envoyé")
    assert re.search(r"/e-mails/\d+$", page.url)
