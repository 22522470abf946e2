"""Serveur › Paramètres d'envoi des e-mails, its test-send, and who may open the delivery pages."""

from __future__ import annotations

import html
import io

import pytest

from hpmail.outbox.models import ServerSettings, Transport
from hpmail.outbox.secrets import decrypt_secret
from hpmail.outbox.settings import server_settings
from tests.fixtures.smtp import free_port

FR = {"Accept-Language": "fr"}
HTMX = {"Accept-Language": "fr", "HX-Request": "true"}
URL = "/serveur/parametres-envoi"

ADMIN_PAGES = [
    ("get", "/serveur/parametres-envoi"),
    ("post", "/serveur/parametres-envoi"),
    ("post", "/serveur/parametres-envoi/essai"),
    ("get", "/configuration/profils-envoi"),
    ("post", "/configuration/profils-envoi"),
    ("get", "/serveur/file-envoi"),
    ("post", "/serveur/file-envoi/action"),
]


def text(response) -> str:
    """The page as a reader sees it (entities such as &#39; decoded)."""
    return html.unescape(response.text)


def valid_form(**changes) -> dict:
    form = {
        "delegate": "y",
        "sender_name": "Lycée Victor Hugo",
        "sender_address": "ne-pas-repondre@lycee-hugo.fr",
        "allowed_domains": "lycee-hugo.fr\n*.univ-exemple.fr",
        "host": "smtp.lycee-hugo.fr",
        "port": "587",
        "security": "starttls",
        "username": "envoi@lycee-hugo.fr",
        "password": "mot de passe secret",
        "timeout_seconds": "20",
        "limit_preset": "custom",
        "per_minute": "",
        "per_day": "",
        "require_personal_verification": "y",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def saved_settings(db) -> ServerSettings:
    db.session.expire_all()
    return db.session.get(ServerSettings, 1)


@pytest.mark.parametrize("role", ["staff", "teacher"])
@pytest.mark.parametrize(("method", "url"), ADMIN_PAGES)
def test_staff_and_teachers_cannot_open_the_admin_delivery_pages(
    client, login_as, role, method, url
):
    login_as(role)
    response = getattr(client, method)(url, headers=FR)
    assert response.status_code == 403
    assert "Accès refusé" in text(response)


def test_admin_sees_the_settings_page_in_french(client, login_as):
    login_as("admin")
    response = client.get(URL, headers=FR)
    assert response.status_code == 200
    for words in (
        "Paramètres d'envoi des e-mails",
        "Déléguer l'envoi de tous les e-mails au serveur",
        "Nom de l'expéditeur",
        "Adresse de l'expéditeur",
        "Serveur SMTP",
        "Chiffrement",
        "Identifiant",
        "Mot de passe",
        "Délai d'attente (secondes)",
        "Limite par minute",
        "Limite par jour",
        "Domaines autorisés",
        "Exiger la vérification des comptes personnels",
        "Tester l'envoi d'e-mails",
        "Enregistrer",
        "Microsoft 365 (30 par minute, 10 000 destinataires par jour)",
    ):
        assert words in text(response), words


def test_admin_saves_the_settings_and_the_password_is_encrypted_and_never_shown(
    client, login_as, db
):
    login_as("admin")
    response = client.post(URL, data=valid_form(), headers=FR)
    assert response.status_code == 302
    settings = saved_settings(db)
    assert settings.delegate is True
    assert settings.sender_name == "Lycée Victor Hugo"
    assert settings.allowed_domains == "lycee-hugo.fr\n*.univ-exemple.fr"
    assert settings.require_personal_verification is True
    transport = settings.transport
    assert (transport.host, transport.port, transport.security) == (
        "smtp.lycee-hugo.fr",
        587,
        "starttls",
    )
    assert transport.username == "envoi@lycee-hugo.fr"
    assert transport.timeout_seconds == 20
    assert b"secret" not in transport.secret_encrypted
    assert decrypt_secret(transport.secret_encrypted) == "mot de passe secret"

    page = text(client.get(URL, headers=FR))
    assert "mot de passe secret" not in page
    assert "••• enregistré" in page
    assert "enregistrés" in page  # the flash


def test_empty_password_keeps_the_saved_one_and_the_box_forgets_it(client, login_as, db):
    login_as("admin")
    client.post(URL, data=valid_form(), headers=FR)
    client.post(URL, data=valid_form(password="", sender_name="Lycée Hugo"), headers=FR)
    settings = saved_settings(db)
    assert settings.sender_name == "Lycée Hugo"
    assert decrypt_secret(settings.transport.secret_encrypted) == "mot de passe secret"
    client.post(URL, data=valid_form(password="", forget_password="y"), headers=FR)
    assert saved_settings(db).transport.secret_encrypted is None


def test_switching_delegation_off_and_verification_off_is_saved(client, login_as, db):
    login_as("admin")
    client.post(URL, data=valid_form(delegate=None, require_personal_verification=None), headers=FR)
    settings = saved_settings(db)
    assert settings.delegate is False
    assert settings.require_personal_verification is False


@pytest.mark.parametrize(
    ("preset", "per_minute", "per_day"),
    [("microsoft365", 30, 10_000), ("gmail", None, 2_000), ("none", None, None)],
)
def test_limit_presets_set_both_limits(client, login_as, db, preset, per_minute, per_day):
    login_as("admin")
    client.post(URL, data=valid_form(limit_preset=preset, per_minute="5", per_day="7"), headers=FR)
    transport = saved_settings(db).transport
    assert (transport.per_minute, transport.per_day) == (per_minute, per_day)


def test_typed_limits_are_kept_with_the_custom_choice(client, login_as, db):
    login_as("admin")
    client.post(URL, data=valid_form(per_minute="12", per_day="900"), headers=FR)
    transport = saved_settings(db).transport
    assert (transport.per_minute, transport.per_day) == (12, 900)
    page = text(client.get(URL, headers=FR))
    assert 'value="12"' in page and 'value="900"' in page


def test_an_uploaded_ca_certificate_is_kept_by_content_until_removed(client, login_as, db, test_ca):
    login_as("admin")
    upload = (io.BytesIO(test_ca.cert_pem), "ac-lycee.pem")
    response = client.post(URL, data=valid_form(ca_certificates=upload), headers=FR)
    assert response.status_code == 302
    assert saved_settings(db).transport.ca_certificates == test_ca.cert_pem.decode()
    page = text(client.get(URL, headers=FR))
    assert "Une autorité de certification est enregistrée" in page
    client.post(URL, data=valid_form(), headers=FR)  # no new file: the saved one stays
    assert saved_settings(db).transport.ca_certificates == test_ca.cert_pem.decode()
    client.post(URL, data=valid_form(forget_ca_certificates="y"), headers=FR)
    assert saved_settings(db).transport.ca_certificates is None


def test_the_ca_field_is_an_upload_and_never_names_or_reads_a_server_path(client, login_as, db):
    login_as("admin")
    page = client.get(URL, headers=FR).text
    assert 'type="file"' in page and 'name="ca_certificates"' in page
    assert "/etc/ssl" not in page and 'name="ca_file"' not in page
    # A path typed into the form is not a file: nothing on the server is opened or named.
    response = client.post(
        URL, data=valid_form(ca_certificates="/etc/ssl/certs/ca-certificates.crt"), headers=FR
    )
    assert response.status_code == 302
    assert saved_settings(db).transport.ca_certificates is None


BAD_INPUT = [
    ({"host": ""}, "Saisissez le nom du serveur SMTP."),
    ({"host": "smtp exemple.fr"}, "Saisissez un nom de serveur comme smtp.exemple.fr"),
    (
        {"host": "smtp.lycee.fr\r\nRCPT TO:<x@y.fr>"},
        "les retours à la ligne et les caractères de contrôle ne sont pas autorisés",
    ),
    ({"host": "a" * 254}, "253 caractères au maximum."),
    ({"port": ""}, "Saisissez le port"),
    ({"port": "0"}, "Le port est un nombre de 1 à 65535."),
    ({"port": "65536"}, "Le port est un nombre de 1 à 65535."),
    ({"port": "vingt-cinq"}, "Saisissez un nombre entier."),
    ({"security": "ssl3"}, "Choisissez un chiffrement dans la liste."),
    ({"timeout_seconds": "-5"}, "Le délai d'attente est un nombre de secondes de 1 à 600."),
    ({"timeout_seconds": "0"}, "Le délai d'attente est un nombre de secondes de 1 à 600."),
    ({"timeout_seconds": ""}, "Saisissez le délai d'attente en secondes."),
    ({"timeout_seconds": "3600"}, "Le délai d'attente est un nombre de secondes de 1 à 600."),
    ({"per_minute": "-1"}, "Laissez vide pour aucune limite"),
    ({"per_day": "beaucoup"}, "Saisissez un nombre entier."),
    ({"limit_preset": "yahoo"}, "Choisissez un préréglage dans la liste."),
    ({"sender_name": ""}, "Saisissez le nom de l'expéditeur"),
    (
        {"sender_name": "Lycée\r\nBcc: tous@exemple.fr"},
        "les retours à la ligne et les caractères de contrôle ne sont pas",
    ),
    ({"sender_name": "L" * 121}, "120 caractères au maximum."),
    ({"sender_address": ""}, "Saisissez l'adresse de l'expéditeur."),
    ({"sender_address": "pas-une-adresse"}, "Saisissez une adresse e-mail valide"),
    (
        {"sender_address": "a@b.fr\nBcc: x@y.fr"},
        "les retours à la ligne et les caractères de contrôle ne sont pas",
    ),
    ({"allowed_domains": "lycee-hugo.fr\nhttp://evil"}, "« http://evil » n'est pas un domaine"),
    ({"allowed_domains": "*.*.fr"}, "n'est pas un domaine"),
    ({"allowed_domains": "localhost"}, "« localhost » n'est pas un domaine"),
    (
        {"username": "envoi\r\nAUTH"},
        "les retours à la ligne et les caractères de contrôle ne sont pas",
    ),
    (
        {"password": "secret\r\nQUIT"},
        "les retours à la ligne et les caractères de contrôle ne sont pas",
    ),
    ({"password": "p" * 501}, "500 caractères au maximum."),
    (
        {"ca_certificates": (io.BytesIO(b"ac-lycee.local\n"), "ac.pem")},
        "Ce fichier ne contient pas de certificat au format PEM.",
    ),
    (
        {"ca_certificates": (io.BytesIO(b"-----BEGIN CERTIFICATE-----\nAAAA\n"), "ac.pem")},
        "Ce fichier ne contient pas de certificat au format PEM.",
    ),
    (
        {"ca_certificates": (io.BytesIO(b"x" * 300_000), "ac.pem")},
        "Ce fichier est trop grand pour un certificat.",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_INPUT)
def test_bad_input_is_refused_next_to_the_field_and_nothing_is_saved(
    client, login_as, db, changes, message
):
    login_as("admin")
    client.post(URL, data=valid_form(), headers=FR)
    before = saved_settings(db)
    snapshot = (
        before.sender_name,
        before.sender_address,
        before.transport.host,
        before.transport.port,
    )
    response = client.post(URL, data=valid_form(**{"sender_name": "Changé", **changes}), headers=FR)
    assert response.status_code == 422
    assert message in text(response)
    assert "Rien n'a été enregistré" in text(response)
    assert 'class="field-error"' in text(response)
    after = saved_settings(db)
    assert (
        after.sender_name,
        after.sender_address,
        after.transport.host,
        after.transport.port,
    ) == snapshot


def test_nothing_is_saved_on_a_first_invalid_post(client, login_as, db):
    login_as("admin")
    client.post(URL, data=valid_form(port="0"), headers=FR)
    assert db.session.query(Transport).count() == 0


def test_settings_form_needs_the_csrf_token(client, login_as, db):
    login_as("admin")
    response = client.post(URL, data=valid_form(), headers=FR, csrf=False)
    assert response.status_code == 400
    settings = saved_settings(db)
    assert settings is None or settings.transport is None


# --- Tester l'envoi d'e-mails --------------------------------------------------------------


def test_test_send_delivers_a_real_email_to_the_admin_and_shows_every_step(
    client, login_as, delivery_settings, smtp_server
):
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    delivery_settings(smtp_server)
    response = client.post(f"{URL}/essai", headers=HTMX)
    assert response.status_code == 200
    assert "<html" not in text(response)  # a fragment for htmx
    assert "Le serveur a accepté l'e-mail d'essai pour agnes.martin@lycee-demo.fr" in text(response)
    for label in (
        "Résolution du nom",
        "Connexion",
        "Chiffrement (TLS)",
        "Authentification",
        "Expéditeur (MAIL FROM)",
        "Destinataire (RCPT TO)",
        "Données (DATA)",
    ):
        assert label in text(response)
    assert response.text.count('class="step-ok"') == 5
    [received] = smtp_server.received
    assert received.rcpt_tos == ["agnes.martin@lycee-demo.fr"]
    assert received.mail_from == "ne-pas-repondre@lycee-demo.fr"


def test_test_send_without_javascript_gets_a_whole_page(
    client, login_as, delivery_settings, smtp_server
):
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    delivery_settings(smtp_server)
    response = client.post(f"{URL}/essai", headers=FR)
    assert response.status_code == 200
    assert "<html" in text(response)
    assert "Retour aux paramètres" in text(response)
    assert len(smtp_server.received) == 1


def test_test_send_failure_shows_the_step_and_what_to_do(
    client, login_as, delivery_settings, make_transport
):
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    delivery_settings(transport=make_transport(port=free_port()))
    response = client.post(f"{URL}/essai", headers=HTMX)
    assert "L'essai a échoué à l'étape « Connexion »" in text(response)
    assert "Rien ne répond sur le port" in text(response)
    assert 'class="step-failed"' in text(response)


def test_admin_without_an_address_types_one(client, login_as, delivery_settings, smtp_server):
    login_as("admin")
    delivery_settings(smtp_server)
    page = text(client.get(URL, headers=FR))
    assert 'name="recipient"' in page
    empty = client.post(f"{URL}/essai", data={"recipient": ""}, headers=HTMX)
    assert "Saisissez l'adresse qui recevra l'e-mail d'essai." in text(empty)
    bad = client.post(f"{URL}/essai", data={"recipient": "x@y.fr\r\nBcc: z@y.fr"}, headers=HTMX)
    assert "les retours à la ligne et les caractères de contrôle ne sont pas autorisés" in text(bad)
    assert smtp_server.received == []
    good = client.post(f"{URL}/essai", data={"recipient": "it@lycee-demo.fr"}, headers=HTMX)
    assert "Le serveur a accepté" in text(good)
    assert smtp_server.received[0].rcpt_tos == ["it@lycee-demo.fr"]


def test_test_send_before_any_settings_says_what_to_do_first(client, login_as, db):
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    response = client.post(f"{URL}/essai", headers=HTMX)
    assert "Enregistrez d'abord le serveur SMTP" in text(response)


def test_test_send_needs_the_csrf_token(client, login_as, delivery_settings, smtp_server):
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    delivery_settings(smtp_server)
    assert client.post(f"{URL}/essai", headers=HTMX, csrf=False).status_code == 400
    assert smtp_server.received == []


def test_settings_saved_then_tested_through_the_page_reach_a_starttls_server_with_login(
    client, login_as, db, make_smtp_server, test_ca
):
    server = make_smtp_server("starttls", users={"envoi": "s3cret"})
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    response = client.post(
        URL,
        data=valid_form(
            host="127.0.0.1",
            port=str(server.port),
            username="envoi",
            password="s3cret",
            ca_certificates=(io.BytesIO(test_ca.cert_pem), "ac-lycee.pem"),
            timeout_seconds="5",
        ),
        headers=FR,
    )
    assert response.status_code == 302
    result = client.post(f"{URL}/essai", headers=HTMX)
    assert "Le serveur a accepté" in text(result), result.text
    assert len(server.received) == 1
    assert server_settings().transport.port == server.port


def test_an_english_browser_gets_the_settings_in_english(client, login_as):
    login_as("admin")
    page = text(client.get(URL, headers={"Accept-Language": "en-GB,en;q=0.9"}))
    assert "Delegate the sending of all e-mails to the server" in page
    assert "Timeout (seconds)" in page
