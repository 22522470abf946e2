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

    expect(page.locator(".flash-success")).to_contain_text("1 e-mail envoyé")
    (received,) = smtp_server.received
    message = received.message
    assert sorted(received.rcpt_tos) == sorted(p.email for p in good)
    assert message["From"] == f"Sophie Martin <{account.address}>"
    assert message["Reply-To"] == "sophie.reponses@exemple.fr"
    assert message["To"] == "undisclosed-recipients:;"  # recipients hidden (Bcc)
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


@pytest.mark.browser
def test_template_is_saved_chosen_renamed_and_deleted_in_the_browser(
    page, sign_in_page, make_user, make_person, make_cohort, make_course, personal_account
):
    cohort = make_cohort("L2 Chimie")
    teachers = [make_person("teacher"), make_person("teacher")]
    make_person("student", cohort=cohort)
    course = make_course("Chimie organique", teachers=teachers, cohorts=[cohort])
    user = make_user("teacher", display_name="Paul Prof")
    personal_account(user)
    sign_in_page(user)

    page.goto(f"/cours/{course.id}")
    page.get_by_role("button", name="E-mail à toutes les personnes concernées").click()
    expect(page.locator(".recipients")).to_contain_text("Enseignants (2)")
    expect(page.locator(".recipients")).to_contain_text("Étudiants (1)")
    page.fill("#subject", "TP annulé")
    page.locator(".editor-area").click()
    page.keyboard.type("Le TP de jeudi est annulé.")
    page.uncheck("input[name=kinds][value=student]")
    page.fill("#template_label", "Annulation")
    page.get_by_role("button", name="Enregistrer comme modèle").click()
    expect(page.locator(".flash-success")).to_contain_text("Modèle « Annulation » enregistré")

    page.goto(f"/cours/{course.id}")
    page.get_by_role("button", name="E-mail à toutes les personnes concernées").click()
    expect(page.locator("#subject")).to_have_value("Cours de Chimie organique — CM")
    page.get_by_role("link", name="Annulation").click()
    expect(page.locator("#subject")).to_have_value("TP annulé")
    expect(page.locator(".editor-area")).to_contain_text("Le TP de jeudi est annulé.")
    expect(page.locator("input[name=kinds][value=student]")).not_to_be_checked()
    expect(page.locator("input[name=kinds][value=teacher]")).to_be_checked()

    page.locator(".template-list summary").click()
    page.fill(".template-list input[name=label]", "Annulation de TP")
    page.get_by_role("button", name="Renommer").click()
    expect(page.locator(".template-list")).to_contain_text("Annulation de TP")
    page.locator(".template-list summary").click()
    page.get_by_role("button", name="Supprimer").click()
    expect(page.locator(".templates")).to_contain_text("Aucun modèle pour l'instant.")


@pytest.mark.browser
def test_a_send_that_waits_for_the_smtp_server_shows_its_progress_and_cannot_be_sent_twice(
    page, sign_in_page, make_user, make_person, personal_account, delivery_settings, smtp_server, db
):
    from hpmail.outbox.models import UserTransport

    settings = delivery_settings(smtp_server, delegate=False)  # sent within the request
    smtp_server.recorder.data_delay = 1.5
    user = make_user("staff")
    db.session.add(UserTransport(user_id=user.id, transport_id=settings.transport_id))
    personal_account(user)
    make_person("student", last_name="Destinataire")
    sign_in_page(user)

    page.goto("/e-mail/nouveau")
    page.fill("input[name=q]", "destinataire")
    page.locator("#people-found input[name=other_ids]").check()
    page.fill("#subject", "Réunion")
    page.locator(".editor-area").click()
    page.keyboard.type("Bonjour")
    # Note in the tab's storage what the page shows while the request waits for the server.
    page.evaluate(
        """() => {
          const form = document.querySelector("#composer");
          const status = form.querySelector("[data-send-progress]");
          const send = form.querySelector("button.primary");
          new MutationObserver(() => {
            if (!status.hidden) sessionStorage.setItem("progress", status.textContent.trim());
            if (send.disabled) sessionStorage.setItem("disabled", "yes");
          }).observe(form, {attributes: true, subtree: true});
        }"""
    )
    page.get_by_role("button", name="Envoyer l'e-mail").click()

    expect(page.locator(".flash-success")).to_contain_text("1 e-mail envoyé", timeout=15_000)
    assert page.evaluate("() => sessionStorage.getItem('progress')").startswith("Envoi en cours…")
    assert page.evaluate("() => sessionStorage.getItem('disabled')") == "yes"
    assert len(smtp_server.received) == 1


@pytest.mark.browser
def test_the_draft_survives_saving_a_template_and_uploading_the_signature_in_the_browser(
    page, sign_in_page, make_user, make_person, personal_account
):
    user = make_user("staff")
    personal_account(user, hide_recipients=True)
    make_person("teacher", last_name="Collegue")
    sign_in_page(user)

    page.goto("/e-mail/nouveau")
    page.fill("input[name=q]", "collegue")
    page.locator("#people-found input[name=other_ids]").check()
    page.uncheck("input[name=hide_recipients]")
    page.fill("#subject", "Réunion pédagogique")
    page.locator(".editor-area").click()
    page.keyboard.type("Ordre du jour en pièce jointe.")
    page.fill("#template_label", "Réunion")
    page.get_by_role("button", name="Enregistrer comme modèle").click()

    expect(page.locator(".flash-success")).to_contain_text("Modèle « Réunion » enregistré")
    expect(page.locator("#people-picked")).to_contain_text("COLLEGUE")
    expect(page.locator("#people-picked input[name=other_ids]")).to_be_checked()
    expect(page.locator("input[name=hide_recipients]")).not_to_be_checked()

    page.get_by_text("Déposer votre signature scannée").click()
    page.set_input_files(
        "#signature", files=[{"name": "scan.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.get_by_role("button", name="Enregistrer ma signature").click()

    expect(page.locator(".flash-success")).to_contain_text("signature a été enregistrée")
    expect(page.locator("#subject")).to_have_value("Réunion pédagogique")
    expect(page.locator(".editor-area")).to_contain_text("Ordre du jour en pièce jointe.")
    expect(page.locator("#people-picked input[name=other_ids]")).to_be_checked()
    expect(page.locator("input[name=hide_recipients]")).not_to_be_checked()
    expect(page.locator("input[name=insert_signature]")).to_be_checked()


@pytest.mark.browser
def test_the_editor_toolbar_speaks_the_language_of_the_page(
    page, fresh_page, make_user, personal_account
):
    from tests.conftest import PASSWORD

    user = make_user("staff")
    personal_account(user)
    # The shared page is French; English needs a context of its own.
    for tab, bold, link in (
        (fresh_page(locale="en-US"), "Bold", "Insert a link"),
        (page, "Gras", "Insérer un lien"),
    ):
        tab.goto("/connexion")
        tab.fill("input[name=login]", user.login)
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url("**/")
        tab.goto("/e-mail/nouveau")
        toolbar = tab.locator(".editor-toolbar")
        expect(toolbar.get_by_role("button", name=bold, exact=True)).to_be_visible()
        expect(toolbar.get_by_role("button", name=link, exact=True)).to_be_visible()
