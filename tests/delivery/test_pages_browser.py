"""In the browser: the admin tests e-mail sending step by step, and manages sending profiles."""

from __future__ import annotations

import pytest

from hpmail.extensions import db as _db
from hpmail.outbox.models import SendingProfile, UserTransport
from tests.fixtures.smtp import free_port

pytestmark = pytest.mark.browser


def test_admin_sees_where_sending_fails_fixes_the_port_and_the_test_email_arrives(
    page, sign_in_page, make_user, delivery_settings, make_transport, smtp_server
):
    delivery_settings(transport=make_transport(port=free_port(), timeout_seconds=3))
    sign_in_page(
        make_user("admin", email="agnes.martin@lycee-demo.fr"), at="/serveur/parametres-envoi"
    )
    page.get_by_role("heading", name="Paramètres d'envoi des e-mails").wait_for()

    test_send = page.locator("section.test-send")
    test_send.get_by_role("button", name="Tester l'envoi d'e-mails").click()
    test_send.get_by_text("L'essai a échoué à l'étape « Connexion »").wait_for()
    failed = test_send.locator("li.step-failed")
    assert "Connexion" in failed.inner_text()
    assert "Rien ne répond sur le port" in failed.locator(".advice").inner_text()
    assert test_send.locator("li[data-status=not_tried]").count() == 5
    assert page.url.endswith("/serveur/parametres-envoi")  # htmx swapped the result in place

    page.get_by_label("Port").fill(str(smtp_server.port))
    page.get_by_role("button", name="Enregistrer").click()
    page.get_by_text("Les paramètres d'envoi des e-mails sont enregistrés.").wait_for()

    test_send.get_by_role("button", name="Tester l'envoi d'e-mails").click()
    test_send.get_by_text(
        "Le serveur a accepté l'e-mail d'essai pour agnes.martin@lycee-demo.fr"
    ).wait_for()
    assert test_send.locator("li.step-failed").count() == 0
    [received] = smtp_server.received
    assert received.rcpt_tos == ["agnes.martin@lycee-demo.fr"]


def test_bad_settings_are_shown_next_to_their_field_in_the_browser(page, sign_in_page):
    sign_in_page("admin", at="/serveur/parametres-envoi")
    page.get_by_label("Nom de l'expéditeur").fill("Lycée")
    page.get_by_label("Adresse de l'expéditeur").fill("pas une adresse")
    page.get_by_label("Serveur SMTP").fill("smtp.lycee.fr")
    page.get_by_label("Port").fill("99999")
    page.get_by_role("button", name="Enregistrer").click()
    page.get_by_text("Rien n'a été enregistré").wait_for()
    port_field = page.locator(".field.has-error", has=page.get_by_label("Port"))
    assert "Le port est un nombre de 1 à 65535." in port_field.inner_text()
    assert page.get_by_text("Saisissez une adresse e-mail valide").is_visible()


def test_admin_adds_edits_and_deletes_a_profile_from_the_table(page, sign_in_page, make_user, db):
    sign_in_page("admin", at="/configuration/profils-envoi")
    page.get_by_role("heading", name="Gérer les profils d'envoi d'e-mails").wait_for()

    creation = page.locator("#profile-new")
    creation.get_by_label("Nom").fill("Relais académique")
    creation.get_by_label("Serveur SMTP").fill("smtp.ac-exemple.fr")
    creation.get_by_label("Limites d'envoi").select_option("microsoft365")
    assert creation.get_by_label("Limite par minute").input_value() == "30"
    creation.get_by_role("button", name="Ajouter").click()
    row = page.locator("#profile-rows tr", has_text="Relais académique")
    row.wait_for()
    assert "smtp.ac-exemple.fr" in row.inner_text()
    assert "30 par minute" in row.inner_text()
    assert creation.get_by_label("Nom").input_value() == ""  # a fresh creation line

    creation.get_by_label("Nom").fill("")
    creation.get_by_label("Serveur SMTP").fill("serveur invalide")
    creation.get_by_role("button", name="Ajouter").click()
    page.get_by_text("Saisissez un nom pour ce profil.").wait_for()
    assert page.locator("#profile-rows tr").count() == 1

    row.get_by_role("link", name="Modifier").click()
    editing = page.locator("#profile-rows tr.editing")
    editing.get_by_label("Serveur SMTP").fill("relais.ac-exemple.fr")
    editing.get_by_role("button", name="Enregistrer").click()
    page.locator("#profile-rows tr", has_text="relais.ac-exemple.fr").wait_for()

    profile = db.session.query(SendingProfile).one()
    teacher = make_user("teacher", display_name="Julien Petit")
    db.session.add(UserTransport(user_id=teacher.id, profile_id=profile.id))
    db.session.commit()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#profile-rows tr").get_by_role("button", name="Supprimer").click()
    page.get_by_text("utilisé par 1 utilisateur (Julien Petit)").wait_for()

    db.session.query(UserTransport).delete()
    db.session.commit()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#profile-rows tr").get_by_role("button", name="Supprimer").click()
    page.locator("#profile-rows tr").wait_for(state="detached")
    _db.session.expire_all()
    assert db.session.query(SendingProfile).count() == 0


def test_teacher_retrieves_a_profile_in_the_workstation_settings_page_and_tests_it(
    page, sign_in_page, make_user, db, smtp_server
):
    from hpmail.outbox.models import Transport
    from hpmail.outbox.settings import server_settings

    server_settings().delegate = False
    transport = Transport(
        host="127.0.0.1", port=smtp_server.port, security="none", timeout_seconds=5
    )
    db.session.add(SendingProfile(name="Relais du lycée", transport=transport))
    db.session.commit()
    teacher = sign_in_page(
        make_user("teacher", email="julien.petit@lycee-demo.fr"), at="/configuration/envoi"
    )
    fragment = page.locator(".personal-transport")
    fragment.get_by_text("L'envoi n'est pas délégué au serveur").wait_for()

    fragment.get_by_label("Profil d'envoi d'e-mails").select_option(label="Relais du lycée")
    fragment.get_by_role("button", name="Utiliser ce profil").click()
    page.get_by_text("Vous envoyez désormais avec le profil « Relais du lycée ».").wait_for()
    assert page.url.endswith("/configuration/envoi")

    page.locator(".personal-transport section.test-send").get_by_role(
        "button", name="Tester l'envoi d'e-mails"
    ).click()
    page.get_by_text(
        "Le serveur a accepté l'e-mail d'essai pour julien.petit@lycee-demo.fr"
    ).wait_for()
    assert smtp_server.received[0].rcpt_tos == ["julien.petit@lycee-demo.fr"]
    _db.session.expire_all()
    assert db.session.get(UserTransport, teacher.id).profile.name == "Relais du lycée"


def test_admin_uploads_the_schools_ca_in_a_profile_row_and_a_teacher_in_their_own_form(
    page, sign_in_page, make_user, db, test_ca
):
    sign_in_page("admin", at="/configuration/profils-envoi")
    creation = page.locator("#profile-new")
    assert creation.locator('input[type="file"][name="ca_certificates"]').count() == 1
    creation.get_by_label("Nom").fill("Relais interne")
    creation.get_by_label("Serveur SMTP").fill("127.0.0.1")
    creation.locator('input[name="ca_certificates"]').set_input_files(test_ca.ca_file)
    creation.get_by_role("button", name="Ajouter").click()
    page.locator("#profile-rows tr", has_text="Relais interne").wait_for()
    _db.session.expire_all()
    profile = db.session.query(SendingProfile).one()
    assert profile.transport.ca_certificates == test_ca.cert_pem.decode()

    from hpmail.outbox.settings import server_settings

    server_settings().delegate = False
    db.session.commit()
    page.context.clear_cookies()
    sign_in_page("teacher", at="/configuration/envoi-personnel")
    own = page.locator("section", has_text="Mon propre serveur SMTP")
    own.get_by_label("Serveur SMTP").fill("169.254.169.254")
    own.locator('input[name="ca_certificates"]').set_input_files(test_ca.ca_file)
    own.get_by_role("button", name="Enregistrer").click()
    page.get_by_text("se trouve dans le réseau de l'établissement").wait_for()
    assert db.session.query(UserTransport).count() == 0
    own = page.locator("section", has_text="Mon propre serveur SMTP")
    own.get_by_label("Serveur SMTP").fill("smtp.fournisseur.example")
    own.locator('input[name="ca_certificates"]').set_input_files(test_ca.ca_file)
    own.get_by_role("button", name="Enregistrer").click()
    page.get_by_text("Votre serveur SMTP est enregistré.").wait_for()
    _db.session.expire_all()
    [chosen] = db.session.query(UserTransport).all()
    assert chosen.transport.ca_certificates == test_ca.cert_pem.decode()
