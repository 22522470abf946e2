"""Gérer les profils d'envoi d'e-mails (admin), and each user's own SMTP server or profile."""

from __future__ import annotations

import html
import io

import pytest

from hpmail.outbox.models import SendingProfile, Transport, UserTransport
from hpmail.outbox.secrets import decrypt_secret
from hpmail.outbox.settings import server_settings, user_transport

FR = {"Accept-Language": "fr"}
HTMX = {"Accept-Language": "fr", "HX-Request": "true"}
PROFILES = "/configuration/profils-envoi"
PERSONAL = "/configuration/envoi-personnel"


def text(response) -> str:
    return html.unescape(response.text)


def profile_form(**changes) -> dict:
    form = {
        "name": "Microsoft 365 du lycée",
        "host": "smtp.office365.com",
        "port": "587",
        "security": "starttls",
        "username": "",
        "password": "",
        "timeout_seconds": "30",
        "limit_preset": "microsoft365",
        "per_minute": "",
        "per_day": "",
    }
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def profiles(db) -> list[SendingProfile]:
    db.session.expire_all()
    return db.session.query(SendingProfile).order_by(SendingProfile.id).all()


@pytest.fixture
def profile(db):
    def make(name="Profil du lycée", **fields) -> SendingProfile:
        transport = Transport(host="127.0.0.1", port=25, security="none", timeout_seconds=5)
        for key, value in fields.items():
            setattr(transport, key, value)
        created = SendingProfile(name=name, transport=transport)
        db.session.add_all([transport, created])
        db.session.commit()
        return created

    return make


def delegation(db, on: bool, allow_internal_hosts: bool = False) -> None:
    settings = server_settings()
    settings.delegate = on
    settings.allow_internal_hosts = allow_internal_hosts
    db.session.commit()


# --- the admin's profiles ---------------------------------------------------------------------


def test_admin_sees_the_profiles_page_with_its_creation_line(client, login_as, profile):
    profile("Gmail du CDI", host="smtp.gmail.com", port=465, security="tls", per_day=2000)
    login_as("admin")
    response = client.get(PROFILES, headers=FR)
    page = text(response)
    assert response.status_code == 200
    assert "Gérer les profils d'envoi d'e-mails" in page
    assert 'id="profile-new-form"' in page
    assert "Gmail du CDI" in page and "smtp.gmail.com" in page and "2000 par jour" in page


def test_creation_line_adds_a_profile_and_htmx_gets_the_new_row(client, login_as, db):
    login_as("admin")
    response = client.post(
        PROFILES, data=profile_form(username="envoi", password="s3cret"), headers=HTMX
    )
    assert response.status_code == 200
    assert "<html" not in response.text
    [created] = profiles(db)
    assert created.name == "Microsoft 365 du lycée"
    assert (created.transport.per_minute, created.transport.per_day) == (30, 10_000)
    assert decrypt_secret(created.transport.secret_encrypted) == "s3cret"
    body = text(response)
    assert f'id="profile-{created.id}"' in body  # the new row, swapped in out of band
    assert 'hx-swap-oob="afterbegin:#profile-rows"' in body
    assert 'id="profile-new"' in body  # a fresh creation line
    assert "s3cret" not in body


def test_creation_without_javascript_redirects_with_a_message(client, login_as, db):
    login_as("admin")
    response = client.post(PROFILES, data=profile_form(), headers=FR)
    assert response.status_code == 302
    assert "Le profil « Microsoft 365 du lycée » est ajouté." in text(
        client.get(PROFILES, headers=FR)
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "Saisissez un nom pour ce profil."),
        ({"name": "N" * 121}, "120 caractères au maximum."),
        (
            {"name": "Profil\r\nX"},
            "les retours à la ligne et les caractères de contrôle ne sont pas autorisés",
        ),
        ({"host": ""}, "Saisissez le nom du serveur SMTP."),
        ({"port": "70000"}, "Le port est un nombre de 1 à 65535."),
        ({"timeout_seconds": "-1"}, "Le délai d'attente est un nombre de secondes de 1 à 600."),
        ({"security": "ssl"}, "Choisissez un chiffrement dans la liste."),
    ],
)
def test_bad_profile_is_refused_in_its_creation_line_and_nothing_is_saved(
    client, login_as, db, changes, message
):
    login_as("admin")
    response = client.post(PROFILES, data=profile_form(**changes), headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#profile-new"
    assert message in text(response)
    assert profiles(db) == []
    plain = client.post(PROFILES, data=profile_form(**changes), headers=FR)
    assert plain.status_code == 422
    assert message in text(plain)
    assert profiles(db) == []


def test_two_profiles_cannot_share_a_name(client, login_as, db, profile):
    profile("Microsoft 365 du lycée")
    login_as("admin")
    response = client.post(PROFILES, data=profile_form(name="MICROSOFT 365 du lycée"), headers=HTMX)
    assert "Un profil porte déjà ce nom." in text(response)
    assert len(profiles(db)) == 1


def test_admin_edits_a_profile_in_its_row_and_the_password_is_kept(client, login_as, db, profile):
    from hpmail.outbox.secrets import encrypt_secret

    existing = profile(
        "Relais académique", username="relais", secret_encrypted=encrypt_secret("pw")
    )
    login_as("admin")
    url = f"{PROFILES}/{existing.id}/modifier"
    row = client.get(url, headers=HTMX)
    assert f'id="profile-{existing.id}-form"' in row.text
    assert "••• enregistré" in text(row)
    assert "<html" not in row.text
    saved = client.post(
        url,
        data=profile_form(
            name="Relais de l'académie", host="smtp.ac-exemple.fr", username="relais"
        ),
        headers=HTMX,
    )
    assert saved.status_code == 200
    assert "Relais de l'académie" in text(saved)
    [changed] = profiles(db)
    assert changed.name == "Relais de l'académie"
    assert changed.transport.host == "smtp.ac-exemple.fr"
    assert decrypt_secret(changed.transport.secret_encrypted) == "pw"


def test_edit_page_without_javascript_refuses_bad_input(client, login_as, db, profile):
    existing = profile("Relais")
    login_as("admin")
    url = f"{PROFILES}/{existing.id}/modifier"
    assert "<html" in client.get(url, headers=FR).text
    response = client.post(url, data=profile_form(name="Relais", port="0"), headers=FR)
    assert response.status_code == 422
    assert "Le port est un nombre de 1 à 65535." in text(response)
    assert profiles(db)[0].transport.port == 25


def test_unused_profile_is_deleted(client, login_as, db, profile):
    existing = profile("Ancien relais")
    login_as("admin")
    response = client.post(f"{PROFILES}/{existing.id}/supprimer", headers=HTMX)
    assert response.status_code == 200
    assert response.text.strip() == ""
    assert profiles(db) == []
    assert db.session.query(Transport).count() == 0


def test_profile_in_use_is_not_deleted_and_the_page_says_who_uses_it(
    client, login_as, db, profile, make_user
):
    used = profile("Relais du lycée")
    teacher = make_user("teacher", display_name="Julien Petit")
    db.session.add(UserTransport(user_id=teacher.id, profile_id=used.id))
    db.session.commit()
    login_as("admin")
    response = client.post(f"{PROFILES}/{used.id}/supprimer", headers=HTMX)
    assert "Ce profil est utilisé par 1 utilisateur (Julien Petit)" in text(response)
    assert len(profiles(db)) == 1
    plain = client.post(f"{PROFILES}/{used.id}/supprimer", headers=FR)
    assert plain.status_code == 302
    assert "Julien Petit" in text(client.get(PROFILES, headers=FR))
    assert len(profiles(db)) == 1


def test_profile_changes_need_the_csrf_token(client, login_as, db, profile):
    existing = profile("Relais")
    login_as("admin")
    assert client.post(PROFILES, data=profile_form(), csrf=False).status_code == 400
    assert client.post(f"{PROFILES}/{existing.id}/supprimer", csrf=False).status_code == 400
    assert (
        client.post(
            f"{PROFILES}/{existing.id}/modifier", data=profile_form(), csrf=False
        ).status_code
        == 400
    )
    assert [p.name for p in profiles(db)] == ["Relais"]


@pytest.mark.parametrize("role", ["staff", "teacher"])
def test_profile_rows_are_for_the_admin_only(client, login_as, profile, role):
    existing = profile("Relais")
    login_as(role)
    for method, url in [
        ("get", f"{PROFILES}/{existing.id}"),
        ("get", f"{PROFILES}/{existing.id}/modifier"),
        ("post", f"{PROFILES}/{existing.id}/modifier"),
        ("post", f"{PROFILES}/{existing.id}/supprimer"),
    ]:
        assert getattr(client, method)(url, headers=FR).status_code == 403


# --- each user's own SMTP server ---------------------------------------------------------------


def own_form(**changes) -> dict:
    form = {
        "action": "own",
        "host": "smtp.free.fr",
        "port": "465",
        "security": "tls",
        "username": "julien.petit",
        "password": "mon-secret",
        "timeout_seconds": "15",
        "limit_preset": "custom",
        "per_minute": "",
        "per_day": "",
    }
    form.update(changes)
    return form


def save_own_server(client, server, test_ca, **changes) -> None:
    """Save the test's STARTTLS server, trusted through the test's CA, as the user's own."""
    form = own_form(
        host="127.0.0.1",
        port=str(server.port),
        security="starttls",
        ca_certificates=(io.BytesIO(test_ca.cert_pem), "ac-lycee.pem"),
    )
    client.post(PERSONAL, data={**form, **changes}, headers=FR)


def test_with_delegation_on_the_user_is_told_there_is_nothing_to_set(client, login_as, db):
    delegation(db, True)
    login_as("teacher")
    response = client.get(PERSONAL, headers=HTMX)
    assert "L'envoi des e-mails est assuré par le serveur" in text(response)
    assert "<form" not in response.text


def test_fragment_for_htmx_is_self_contained_and_the_plain_request_a_page(client, login_as, db):
    delegation(db, False)
    login_as("teacher")
    fragment = client.get(PERSONAL, headers=HTMX)
    assert "<html" not in fragment.text
    assert 'id="personal-transport"' in fragment.text
    assert 'name="csrf_token"' in fragment.text
    assert "L'envoi n'est pas délégué au serveur" in text(fragment)
    assert fragment.headers["Vary"] == "HX-Request" or "HX-Request" in fragment.headers["Vary"]
    page = client.get(PERSONAL, headers=FR)
    assert "<html" in page.text and 'id="personal-transport"' in page.text


def test_user_saves_their_own_smtp_server(client, login_as, db):
    delegation(db, False)
    teacher = login_as("teacher")
    response = client.post(PERSONAL, data=own_form(), headers=HTMX)
    assert response.status_code == 200
    assert "Votre serveur SMTP est enregistré." in text(response)
    assert "mon-secret" not in response.text
    transport = user_transport(teacher.id)
    assert (transport.host, transport.port, transport.security) == ("smtp.free.fr", 465, "tls")
    assert decrypt_secret(transport.secret_encrypted) == "mon-secret"
    again = client.post(PERSONAL, data=own_form(password="", timeout_seconds="40"), headers=HTMX)
    assert again.status_code == 200
    db.session.expire_all()
    transport = user_transport(teacher.id)
    assert transport.timeout_seconds == 40
    assert decrypt_secret(transport.secret_encrypted) == "mon-secret"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"host": ""}, "Saisissez le nom du serveur SMTP."),
        ({"port": "0"}, "Le port est un nombre de 1 à 65535."),
        ({"timeout_seconds": "-3"}, "Le délai d'attente est un nombre de secondes de 1 à 60."),
        ({"timeout_seconds": "600"}, "Le délai d'attente est un nombre de secondes de 1 à 60."),
        (
            {"username": "a\nb"},
            "les retours à la ligne et les caractères de contrôle ne sont pas autorisés",
        ),
    ],
)
def test_bad_personal_settings_are_refused_and_nothing_is_saved(
    client, login_as, db, changes, message
):
    delegation(db, False)
    teacher = login_as("teacher")
    response = client.post(PERSONAL, data=own_form(**changes), headers=FR)
    assert response.status_code == 422
    assert message in text(response)
    assert db.session.get(UserTransport, teacher.id) is None


def test_user_retrieves_a_profile_and_sends_through_it(client, login_as, db, profile):
    delegation(db, False)
    chosen = profile("Relais du lycée", host="relais.lycee.fr")
    teacher = login_as("teacher")
    page = text(client.get(PERSONAL, headers=FR))
    assert "Récupérer un profil d'envoi d'e-mails" in page
    response = client.post(
        PERSONAL, data={"action": "profile", "profile_id": chosen.id}, headers=HTMX
    )
    assert "Vous envoyez désormais avec le profil « Relais du lycée »." in text(response)
    assert user_transport(teacher.id).host == "relais.lycee.fr"
    bad = client.post(PERSONAL, data={"action": "profile", "profile_id": "9999"}, headers=FR)
    assert bad.status_code == 422
    assert "Choisissez un profil dans la liste." in text(bad)


def test_personal_settings_need_the_csrf_token(client, login_as, db):
    delegation(db, False)
    teacher = login_as("teacher")
    assert client.post(PERSONAL, data=own_form(), csrf=False).status_code == 400
    assert db.session.get(UserTransport, teacher.id) is None


def test_personal_test_send_goes_through_the_users_own_server(
    client, login_as, db, make_smtp_server, test_ca
):
    delegation(db, False, allow_internal_hosts=True)  # the test server listens on 127.0.0.1
    server = make_smtp_server("starttls", users={"julien.petit": "mon-secret"})
    login_as("teacher", email="julien.petit@lycee-demo.fr")
    save_own_server(client, server, test_ca)
    response = client.post(f"{PERSONAL}/essai", headers=HTMX)
    assert "Le serveur a accepté l'e-mail d'essai pour julien.petit@lycee-demo.fr" in text(response)
    [received] = server.received
    assert received.mail_from == "julien.petit@lycee-demo.fr"


def test_personal_test_send_with_a_wrong_password_says_so(
    client, login_as, db, make_smtp_server, test_ca
):
    delegation(db, False, allow_internal_hosts=True)
    server = make_smtp_server("starttls", users={"julien.petit": "mon-secret"})
    login_as("teacher", email="julien.petit@lycee-demo.fr")
    save_own_server(client, server, test_ca, password="faux")
    response = client.post(f"{PERSONAL}/essai", headers=HTMX)
    assert "L'essai a échoué à l'étape « Authentification »" in text(response)
    assert server.received == []


def test_personal_test_send_before_any_setting_says_what_to_do(client, login_as, db):
    delegation(db, False)
    login_as("teacher", email="julien.petit@lycee-demo.fr")
    response = client.post(f"{PERSONAL}/essai", headers=HTMX)
    assert "Enregistrez d'abord votre serveur SMTP" in text(response)


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ({"action": "delete", "host": "smtp.free.fr"}, "Action inconnue."),
        ({"host": "smtp.free.fr"}, "Action inconnue."),
        ({"action": "profile", "profile_id": "abc"}, "Choisissez un profil dans la liste."),
        ({"action": "profile", "profile_id": str(10**30)}, "Choisissez un profil dans la liste."),
    ],
    ids=["unknown action", "no action", "id not a number", "id too large"],
)
def test_a_hostile_personal_smtp_post_is_refused_in_french_and_changes_nothing(
    client, login_as, db, profile, posted, message
):
    delegation(db, False)
    profile("Relais du lycée", host="relais.lycee.fr")
    teacher = login_as("teacher")
    response = client.post(PERSONAL, data=posted, headers=FR)
    assert response.status_code == 422
    assert message in text(response)
    assert db.session.get(UserTransport, teacher.id) is None
