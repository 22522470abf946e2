"""Trouver les paramètres on the pages: suggestions with their origin, and settings found from an
address saved only once a real test e-mail went through them (aiosmtpd on loopback)."""

from __future__ import annotations

import html

from hpmail.outbox.models import SendingProfile, UserTransport
from hpmail.outbox.settings import server_settings
from tests.delivery.test_pages import valid_form
from tests.delivery.test_profile_pages import delegation, own_form, profile_form
from tests.fixtures.smtp import free_port

FR = {"Accept-Language": "fr"}
HTMX = {"Accept-Language": "fr", "HX-Request": "true"}
FIND = "/configuration/trouver-parametres"


def text(response) -> str:
    return html.unescape(response.text)


def test_each_settings_page_offers_to_find_the_settings(client, login_as, db):
    delegation(db, False)
    login_as("admin")
    for url, target in (
        ("/serveur/parametres-envoi", "server-settings-form"),
        ("/configuration/profils-envoi", "profile-new-form"),
        ("/configuration/envoi-personnel", "own-transport-form"),
    ):
        page = text(client.get(url, headers=FR))
        assert "Trouver les paramètres" in page, url
        assert f"formulaire={target}" in page, url
        assert f'id="{target}"' in page, url


def test_the_suggestion_says_where_it_comes_from_in_french(client, login_as, dns_zone):
    login_as("admin")
    dns_zone.add("lycee-exemple.fr. 60 IN MX 0 lycee-exemple-fr.mail.protection.outlook.com.")
    response = client.get(
        FIND,
        query_string={
            "sender_address": "direction@lycee-exemple.fr",
            "formulaire": "server-settings-form",
        },
        headers=HTMX,
    )
    assert response.status_code == 200
    page = text(response)
    assert "<html" not in page
    assert "Paramètres trouvés pour lycee-exemple.fr" in page
    assert "smtp.office365.com" in page and "port 587" in page
    assert "authentification : Microsoft 365 (OAuth2)" in page
    assert "d'après les MX : Microsoft 365" in page
    assert 'data-fill-form="server-settings-form"' in page
    assert '"host": "smtp.office365.com"' in page


def test_a_known_provider_is_named_as_found_in_the_directory(client, login_as):
    login_as("teacher")
    page = text(client.get(FIND, query_string={"address": "moi@free.fr"}, headers=HTMX))
    assert "smtp.free.fr" in page
    assert "trouvés dans l'annuaire des fournisseurs" in page


def test_an_address_with_control_characters_is_refused_in_french(client, login_as):
    login_as("teacher")
    response = client.get(FIND, query_string={"address": "moi@lycee.fr\r\nX: y"}, headers=HTMX)
    assert response.status_code == 422
    assert "caractères qu'une adresse ne peut pas contenir" in text(response)


def test_an_srv_pointing_inside_the_network_is_not_offered_to_a_teacher(
    client, login_as, db, dns_zone
):
    delegation(db, False)
    login_as("teacher")
    dns_zone.add("_submission._tcp.piege.fr. 60 IN SRV 0 1 25 relais.piege.fr.")
    dns_zone.add("relais.piege.fr. 60 IN A 127.0.0.1")
    page = text(client.get(FIND, query_string={"address": "moi@piege.fr"}, headers=HTMX))
    assert "Aucun paramètre trouvé pour piege.fr" in page
    assert "dans le réseau de l'établissement" in page
    assert "data-fill-form" not in page


def test_an_unknown_form_id_gets_no_fill_button(client, login_as):
    login_as("teacher")
    page = text(
        client.get(
            FIND, query_string={"address": "moi@free.fr", "formulaire": '"><script>'}, headers=HTMX
        )
    )
    assert "smtp.free.fr" in page
    assert "data-fill-form" not in page and "<script>" not in page


# --- saved only once tested -------------------------------------------------------------------


def test_found_settings_are_saved_once_the_test_email_went_through(
    client, login_as, db, smtp_server
):
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    response = client.post(
        "/serveur/parametres-envoi",
        data=valid_form(
            host="127.0.0.1",
            port=str(smtp_server.port),
            security="none",
            username="",
            password="",
            discovered_for="direction@lycee-demo.fr",
        ),
        headers=FR,
    )
    assert response.status_code == 302, text(response)
    [received] = smtp_server.received
    assert received.rcpt_tos == ["agnes.martin@lycee-demo.fr"]
    assert received.mail_from == "ne-pas-repondre@lycee-hugo.fr"
    assert server_settings().transport.port == smtp_server.port
    page = text(client.get("/serveur/parametres-envoi", headers=FR))
    assert "L'e-mail d'essai envoyé avec eux à agnes.martin@lycee-demo.fr a été accepté." in page


def test_found_settings_that_fail_the_test_are_not_saved(client, login_as, db):
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    response = client.post(
        "/serveur/parametres-envoi",
        data=valid_form(
            host="127.0.0.1",
            port=str(free_port()),
            security="none",
            timeout_seconds="5",
            discovered_for="direction@lycee-demo.fr",
        ),
        headers=FR,
    )
    assert response.status_code == 422
    page = text(response)
    assert "Rien n'a été enregistré : l'e-mail d'essai envoyé avec ces paramètres a échoué" in page
    assert "« Connexion »" in page
    # the field stays in the form, so the next save tries again
    assert 'name="discovered_for" type="hidden" value="direction@lycee-demo.fr"' in page
    db.session.expire_all()
    assert server_settings().transport is None


def test_typed_settings_are_saved_without_a_test_as_before(client, login_as, db):
    login_as("admin")
    response = client.post("/serveur/parametres-envoi", data=valid_form(), headers=FR)
    assert response.status_code == 302
    assert server_settings().transport.host == "smtp.lycee-hugo.fr"


def test_a_found_profile_is_added_once_tested_and_refused_otherwise(
    client, login_as, db, smtp_server
):
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    refused = client.post(
        "/configuration/profils-envoi",
        data=profile_form(
            host="127.0.0.1",
            port=str(free_port()),
            security="none",
            limit_preset="custom",
            timeout_seconds="5",
            discovered_for="relais@lycee-demo.fr",
        ),
        headers=HTMX,
    )
    assert "Rien n'a été enregistré" in text(refused)
    assert db.session.query(SendingProfile).count() == 0
    added = client.post(
        "/configuration/profils-envoi",
        data=profile_form(
            host="127.0.0.1",
            port=str(smtp_server.port),
            security="none",
            limit_preset="custom",
            discovered_for="relais@lycee-demo.fr",
        ),
        headers=HTMX,
    )
    assert added.status_code == 200, text(added)
    assert db.session.query(SendingProfile).count() == 1
    [received] = smtp_server.received
    assert received.mail_from == "relais@lycee-demo.fr"


def test_a_teacher_s_found_server_is_tested_and_saved(client, login_as, db, smtp_server):
    delegation(db, False, allow_internal_hosts=True)
    teacher = login_as("teacher", email="prof@lycee-demo.fr")
    response = client.post(
        "/configuration/envoi-personnel",
        data=own_form(
            host="127.0.0.1",
            port=str(smtp_server.port),
            security="none",
            password="",
            username="",
            discovered_for="prof@lycee-demo.fr",
        ),
        headers=HTMX,
    )
    assert "Votre serveur SMTP est enregistré." in text(response), text(response)
    assert smtp_server.received[0].rcpt_tos == ["prof@lycee-demo.fr"]
    assert db.session.get(UserTransport, teacher.id).transport.port == smtp_server.port


def test_a_teacher_s_found_server_inside_the_network_is_refused(client, login_as, db, smtp_server):
    delegation(db, False)
    teacher = login_as("teacher", email="prof@lycee-demo.fr")
    response = client.post(
        "/configuration/envoi-personnel",
        data=own_form(
            host="127.0.0.1",
            port=str(smtp_server.port),
            security="none",
            password="",
            username="",
            discovered_for="prof@lycee-demo.fr",
        ),
        headers=HTMX,
    )
    assert "dans le réseau de l'établissement" in text(response)
    assert smtp_server.received == []
    assert db.session.get(UserTransport, teacher.id) is None


def test_a_hostile_found_for_address_is_refused_and_nothing_is_sent_or_saved(
    client, login_as, db, smtp_server
):
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    response = client.post(
        "/serveur/parametres-envoi",
        data=valid_form(
            host="127.0.0.1",
            port=str(smtp_server.port),
            security="none",
            discovered_for="x@lycee-demo.fr\r\nBcc: tous@lycee-demo.fr",
        ),
        headers=FR,
    )
    assert response.status_code == 422
    assert smtp_server.received == []
    db.session.expire_all()
    assert server_settings().transport is None
