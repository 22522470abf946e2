"""« Se connecter avec Microsoft / Google »: the applications, the consent round trip, its state.

The provider is a real HTTP server on loopback (tests/fixtures/oauth.py) speaking the
authorization code flow with PKCE; the SMTP server takes XOAUTH2 only.
"""

from __future__ import annotations

from html import unescape
from urllib.parse import parse_qsl, urlsplit

import pytest

from hpmail.delivery.diagnostics import diagnose
from hpmail.delivery.models import PendingConsent
from hpmail.outbox.models import OAuthApplication, SendingProfile, Transport, UserTransport
from hpmail.outbox.secrets import decrypt_secret, encrypt_secret
from tests.fixtures.oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT,
    connect_through_routes,
    consent_in_provider,
    leaving_url,
    start_sign_in,
)
from tests.fixtures.smtp import free_port


@pytest.fixture
def app_config(app_config, oauth_provider):
    return {**app_config, "OAUTH_PROVIDERS": oauth_provider.providers()}


def shown(response) -> str:
    return unescape(response.text)


def reload(db, transport) -> Transport:
    db.session.expire_all()
    return db.session.get(Transport, transport.id)


def test_admin_registers_the_applications_and_their_secrets_are_never_shown_back(
    client, login_as, db
):
    login_as("admin")
    response = client.post(
        "/serveur/parametres-envoi/applications-oauth",
        data={
            "microsoft_tenant": TENANT,
            "microsoft_client_id": CLIENT_ID,
            "microsoft_client_secret": CLIENT_SECRET,
            "google_client_id": "google-id",
            "google_client_secret": "google-secret-5511",
        },
    )
    assert response.status_code == 302
    microsoft = db.session.get(OAuthApplication, "microsoft")
    assert (microsoft.tenant, microsoft.client_id) == (TENANT, CLIENT_ID)
    assert CLIENT_SECRET.encode() not in microsoft.client_secret_encrypted
    assert decrypt_secret(microsoft.client_secret_encrypted) == CLIENT_SECRET

    page = client.get("/serveur/parametres-envoi").text
    assert CLIENT_ID in page and "google-id" in page
    assert CLIENT_SECRET not in page and "google-secret-5511" not in page
    assert "••• enregistré" in page
    assert "http://localhost/oauth2/retour" in page  # the redirect URI to register

    # Saved again without secrets: the saved ones are kept.
    client.post(
        "/serveur/parametres-envoi/applications-oauth",
        data={"microsoft_tenant": TENANT, "microsoft_client_id": CLIENT_ID},
    )
    db.session.expire_all()
    assert decrypt_secret(db.session.get(OAuthApplication, "microsoft").client_secret_encrypted)


def test_a_microsoft_client_id_without_its_tenant_is_refused_and_nothing_is_saved(
    client, login_as, db
):
    login_as("admin")
    response = client.post(
        "/serveur/parametres-envoi/applications-oauth",
        data={"microsoft_client_id": CLIENT_ID, "microsoft_client_secret": CLIENT_SECRET},
    )
    assert response.status_code == 422
    assert "Saisissez aussi l'identifiant du locataire." in shown(response)
    assert db.session.get(OAuthApplication, "microsoft") is None


def test_admin_connects_the_server_account_and_only_the_encrypted_refresh_token_is_kept(
    client, login_as, db, delivery_settings, oauth_transport, oauth_application, oauth_provider
):
    oauth_application("microsoft")
    settings = delivery_settings(transport=oauth_transport("microsoft"))
    login_as("admin")

    started = client.post(f"/configuration/serveurs-smtp/{settings.transport.id}/connexion")
    assert started.status_code == 200
    assert '<meta http-equiv="refresh"' in started.text  # leaves by itself (see the CSP)
    location = leaving_url(started)
    authorize = urlsplit(location)
    asked = dict(parse_qsl(authorize.query))
    assert authorize.path == f"/microsoft/{TENANT}/authorize"
    assert asked["client_id"] == CLIENT_ID
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert "https://outlook.office.com/SMTP.Send" in asked["scope"]
    assert "offline_access" in asked["scope"]
    assert asked["login_hint"] == "secretariat@lycee-demo.fr"
    assert asked["redirect_uri"] == "http://localhost/oauth2/retour"
    assert CLIENT_SECRET not in started.text

    back = urlsplit(consent_in_provider(location, "envoi@lycee-demo.fr"))
    page = client.get(f"{back.path}?{back.query}", follow_redirects=True)
    assert "Connecté à Microsoft 365 en tant que envoi@lycee-demo.fr" in shown(page)

    transport = reload(db, settings.transport)
    assert transport.oauth_account == "envoi@lycee-demo.fr"
    refresh_token = decrypt_secret(transport.oauth_refresh_encrypted)
    assert refresh_token in oauth_provider.refresh_tokens
    assert refresh_token.encode() not in transport.oauth_refresh_encrypted
    assert db.session.query(PendingConsent).count() == 0
    page_html = client.get("/serveur/parametres-envoi").text
    for secret in [CLIENT_SECRET, *oauth_provider.issued]:
        assert secret not in page_html


def test_a_replayed_state_is_refused_in_french_and_changes_nothing(
    client, login_as, db, delivery_settings, oauth_transport, oauth_application
):
    oauth_application("microsoft")
    settings = delivery_settings(transport=oauth_transport("microsoft"))
    login_as("admin")
    back = urlsplit(consent_in_provider(start_sign_in(client, settings.transport)))
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    first = reload(db, settings.transport).oauth_refresh_encrypted

    again = client.get(f"{back.path}?{back.query}")
    assert again.status_code == 400
    assert "Cette connexion n'est pas valable" in shown(again)
    assert reload(db, settings.transport).oauth_refresh_encrypted == first


def test_a_state_from_another_session_or_user_is_refused(
    app, client, login_as, make_user, db, delivery_settings, oauth_transport, oauth_application
):
    oauth_application("microsoft")
    settings = delivery_settings(transport=oauth_transport("microsoft"))
    login_as("admin")
    back = urlsplit(consent_in_provider(start_sign_in(client, settings.transport)))

    other = app.test_client()  # another browser: another admin signed in
    from tests.conftest import PASSWORD

    other.post("/connexion", data={"login": make_user("admin").login, "password": PASSWORD})
    refused = other.get(f"{back.path}?{back.query}")
    assert refused.status_code == 400
    assert "Cette connexion n'est pas valable" in shown(refused)
    assert reload(db, settings.transport).oauth_refresh_encrypted is None

    forged = client.get("/oauth2/retour?state=invente&code=x")
    assert forged.status_code == 400
    assert reload(db, settings.transport).oauth_refresh_encrypted is None


def test_consent_refused_at_the_provider_changes_nothing(
    client, login_as, db, delivery_settings, oauth_transport, oauth_application
):
    oauth_application("google")
    settings = delivery_settings(transport=oauth_transport("google"))
    login_as("admin")
    location = start_sign_in(client, settings.transport)
    asked = dict(parse_qsl(urlsplit(location).query))
    assert (asked["access_type"], asked["prompt"]) == ("offline", "consent")
    assert asked["scope"].startswith("https://mail.google.com/")
    back = urlsplit(consent_in_provider(location, decision="no"))
    answer = client.get(f"{back.path}?{back.query}")
    assert answer.status_code == 400
    assert "Google n'a pas donné l'accès (access_denied)" in shown(answer)
    assert reload(db, settings.transport).oauth_refresh_encrypted is None


def test_users_connect_only_their_own_transport(
    client, login_as, db, make_user, delivery_settings, oauth_transport, oauth_application
):
    oauth_application("microsoft")
    settings = delivery_settings(transport=oauth_transport("microsoft"), delegate=False)
    colleague = make_user("teacher")
    theirs = oauth_transport("microsoft", username="collegue@lycee-demo.fr")
    db.session.add(UserTransport(user_id=colleague.id, transport_id=theirs.id))
    profile = SendingProfile(name="Relais", transport=oauth_transport("microsoft"))
    db.session.add(profile)
    db.session.commit()

    me = login_as("teacher")
    mine = oauth_transport("microsoft", username="prof@lycee-demo.fr")
    db.session.add(UserTransport(user_id=me.id, transport_id=mine.id))
    db.session.commit()
    for transport in (theirs, settings.transport, profile.transport):
        answer = client.post(f"/configuration/serveurs-smtp/{transport.id}/connexion")
        assert answer.status_code == 404
    page = connect_through_routes(client, mine)
    assert "Connecté à Microsoft 365 en tant que prof@lycee-demo.fr" in shown(page)
    assert page.request.path == "/configuration/envoi-personnel"
    assert reload(db, theirs).oauth_refresh_encrypted is None
    assert reload(db, mine).oauth_refresh_encrypted is not None


def test_admin_connects_a_profile_but_not_a_colleagues_own_server(
    client, login_as, db, make_user, oauth_transport, oauth_application
):
    oauth_application("google")
    profile = SendingProfile(name="Relais Google", transport=oauth_transport("google"))
    colleague = make_user("staff")
    theirs = oauth_transport("google")
    db.session.add_all([profile, UserTransport(user_id=colleague.id, transport_id=theirs.id)])
    db.session.commit()
    login_as("admin")
    page = connect_through_routes(client, profile.transport, "relais@lycee-demo.fr")
    assert "Connecté à Google en tant que relais@lycee-demo.fr" in shown(page)
    assert page.request.path == "/configuration/profils-envoi"
    assert client.post(f"/configuration/serveurs-smtp/{theirs.id}/connexion").status_code == 404


def test_signing_in_without_a_registered_application_says_what_to_do(
    client, login_as, delivery_settings, oauth_transport
):
    settings = delivery_settings(transport=oauth_transport("microsoft"))
    login_as("admin")
    answer = client.post(
        f"/configuration/serveurs-smtp/{settings.transport.id}/connexion", follow_redirects=True
    )
    assert "L'application Microsoft 365 de l'établissement n'est pas enregistrée" in shown(answer)


def test_choosing_a_password_again_forgets_the_token(
    client, login_as, db, delivery_settings, oauth_transport, oauth_application
):
    oauth_application("microsoft")
    settings = delivery_settings(transport=oauth_transport("microsoft"))
    login_as("admin")
    connect_through_routes(client, settings.transport)
    assert reload(db, settings.transport).oauth_refresh_encrypted is not None
    response = client.post(
        "/serveur/parametres-envoi",
        data={
            "delegate": "y",
            "sender_name": "Lycée Démo",
            "sender_address": "ne-pas-repondre@lycee-demo.fr",
            "host": "smtp.lycee-demo.fr",
            "port": "587",
            "security": "starttls",
            "auth": "password",
            "username": "envoi",
            "password": "mot-de-passe",
            "timeout_seconds": "30",
            "limit_preset": "custom",
        },
    )
    assert response.status_code == 302
    transport = reload(db, settings.transport)
    assert transport.auth == "password"
    assert transport.oauth_refresh_encrypted is None and transport.oauth_account == ""


def test_an_unknown_authentication_is_refused(client, login_as, delivery_settings, smtp_server):
    delivery_settings(smtp_server)
    login_as("admin")
    response = client.post(
        "/serveur/parametres-envoi",
        data={
            "sender_name": "Lycée",
            "sender_address": "ne-pas-repondre@lycee-demo.fr",
            "host": "smtp.lycee-demo.fr",
            "port": "587",
            "security": "starttls",
            "auth": "kerberos",
            "timeout_seconds": "30",
            "limit_preset": "custom",
        },
    )
    assert response.status_code == 422
    assert "Choisissez une authentification dans la liste." in shown(response)


def test_the_test_send_checks_the_token_step_by_step_then_xoauth2(
    client, login_as, db, delivery_settings, oauth_transport, oauth_application,
    xoauth2_smtp_server, oauth_provider,
):  # fmt: skip
    oauth_application("microsoft")
    settings = delivery_settings(transport=oauth_transport("microsoft"))
    login_as("admin")
    connect_through_routes(client, settings.transport, "envoi@lycee-demo.fr")
    transport = reload(db, settings.transport)

    diagnosis = diagnose(transport, settings.sender_address, "agnes@lycee-demo.fr")
    assert [step.key for step in diagnosis.steps][:2] == ["token_endpoint", "token"]
    assert diagnosis.succeeded, diagnosis.steps
    auth = next(step for step in diagnosis.steps if step.key == "auth")
    assert auth.detail.startswith("XOAUTH2 — 235")
    assert oauth_provider.token_requests[-1] == "refresh_token"  # a new token, not the cache
    [received] = xoauth2_smtp_server.received
    assert received.login == "envoi@lycee-demo.fr"

    oauth_provider.revoke()
    failed = diagnose(reload(db, transport), settings.sender_address, "agnes@lycee-demo.fr")
    assert failed.failed_step.key == "token"
    assert [step.status for step in failed.steps[:2]] == ["ok", "failed"]
    assert "a expiré ou a été révoquée" in failed.failed_step.advice
    assert failed.steps[2].status == "not_tried"
    assert "a expiré ou a été révoquée" in reload(db, transport).oauth_error


def test_the_test_send_says_when_the_provider_cannot_be_reached(
    app, db, oauth_transport, oauth_application
):
    oauth_application("microsoft")
    transport = oauth_transport("microsoft", oauth_refresh_encrypted=encrypt_secret("rt-gardé"))
    nobody = f"http://127.0.0.1:{free_port()}/token"  # nothing listens there
    app.config["OAUTH_PROVIDERS"] = {"microsoft": {"token_url": nobody}}
    diagnosis = diagnose(transport, "ne-pas-repondre@lycee-demo.fr", "agnes@lycee-demo.fr")
    assert diagnosis.failed_step.key == "token_endpoint"
    assert "ne peut pas être joint" in diagnosis.failed_step.detail
    assert "connexions HTTPS" in diagnosis.failed_step.advice
    assert [step.status for step in diagnosis.steps[1:]] == ["not_tried"] * 8
    db.session.expire_all()
    assert db.session.get(Transport, transport.id).oauth_error is None  # nothing refused


def test_settings_found_for_an_address_are_tried_with_the_saved_sign_in_or_after_it(
    db, oauth_provider, oauth_application, oauth_transport, xoauth2_smtp_server, test_ca
):
    from hpmail.delivery.transports import TransportValues, test_before_saving

    oauth_application("microsoft")
    values = TransportValues(
        host=xoauth2_smtp_server.host,
        port=xoauth2_smtp_server.port,
        security="starttls",
        username="envoi@lycee-demo.fr",
        auth="microsoft",
        timeout_seconds=5,
    )
    # Never signed in: nothing to try before « Se connecter », which comes after saving.
    assert (
        test_before_saving(values, None, "envoi@lycee-demo.fr", "a@lycee-demo.fr", "", False) == ""
    )
    assert xoauth2_smtp_server.received == []

    saved = oauth_transport(
        "microsoft",
        oauth_account="envoi@lycee-demo.fr",
        oauth_refresh_encrypted=encrypt_secret(oauth_provider.grant("envoi@lycee-demo.fr")),
    )
    tried = test_before_saving(values, saved, "envoi@lycee-demo.fr", "a@lycee-demo.fr", "", False)
    assert tried == "a@lycee-demo.fr"
    [received] = xoauth2_smtp_server.received
    assert received.login == "envoi@lycee-demo.fr"
