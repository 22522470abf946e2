"""In the browser: the admin signs the server's account in at the provider and tests sending."""

from __future__ import annotations

import pytest

from tests.fixtures.oauth import CLIENT_SECRET

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(app_config, oauth_provider):
    return {**app_config, "OAUTH_PROVIDERS": oauth_provider.providers()}


def test_admin_signs_in_with_microsoft_consents_and_the_test_email_goes_by_xoauth2(
    page, sign_in_page, make_user, delivery_settings, oauth_transport, oauth_application,
    oauth_provider, xoauth2_smtp_server,
):  # fmt: skip
    oauth_application("microsoft")
    delivery_settings(transport=oauth_transport("microsoft", username="envoi@lycee-demo.fr"))
    sign_in_page(
        make_user("admin", email="agnes.martin@lycee-demo.fr"), at="/serveur/parametres-envoi"
    )
    assert page.get_by_label("Authentification").input_value() == "microsoft"
    assert page.get_by_label("Mot de passe").is_disabled()  # no password with Microsoft 365
    page.get_by_label("Authentification").select_option("password")
    assert page.get_by_label("Mot de passe").is_enabled()
    page.get_by_label("Authentification").select_option("microsoft")
    connection = page.locator("#oauth-connection")
    connection.get_by_text("Non connecté").wait_for()

    connection.get_by_role("button", name="Se connecter avec Microsoft 365").click()
    page.get_by_role("heading", name="Autoriser hpmail à envoyer des e-mails").wait_for()
    assert page.url.startswith(oauth_provider.base)
    assert page.get_by_label("Compte").input_value() == "envoi@lycee-demo.fr"
    page.get_by_role("button", name="Accepter").click()

    page.get_by_text(
        "Connecté à Microsoft 365 en tant que envoi@lycee-demo.fr : les e-mails partent"
    ).wait_for()
    assert page.url.endswith("/serveur/parametres-envoi")
    assert "Connecté à Microsoft 365 en tant que envoi@lycee-demo.fr." in connection.inner_text()

    test_send = page.locator("section.test-send")
    test_send.get_by_role("button", name="Tester l'envoi d'e-mails").click()
    test_send.get_by_text("Le serveur a accepté l'e-mail d'essai").wait_for()
    steps = test_send.locator("li[data-step]")
    assert steps.nth(0).get_attribute("data-step") == "token_endpoint"
    assert steps.nth(1).get_attribute("data-step") == "token"
    assert "XOAUTH2" in test_send.locator("li[data-step=auth]").inner_text()
    [received] = xoauth2_smtp_server.received
    assert received.login == "envoi@lycee-demo.fr"

    html = page.content()
    for secret in [CLIENT_SECRET, *oauth_provider.issued]:
        assert secret not in html


def test_admin_who_refuses_at_the_provider_is_told_and_nothing_changes(
    page, sign_in_page, delivery_settings, oauth_transport, oauth_application
):
    oauth_application("google")
    delivery_settings(transport=oauth_transport("google"))
    sign_in_page("admin", at="/serveur/parametres-envoi")
    page.get_by_role("button", name="Se connecter avec Google").click()
    page.get_by_role("button", name="Refuser").click()
    page.get_by_role("heading", name="Connexion refusée").wait_for()
    assert "Google n'a pas donné l'accès (access_denied)" in page.content()
    page.get_by_role("link", name="Revenir aux paramètres SMTP").click()
    page.locator("#oauth-connection").get_by_text("Non connecté").wait_for()
