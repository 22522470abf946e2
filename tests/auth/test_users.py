"""User management by the admin: list, create, deactivate, reset a password, change role, link."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import func, select

from hpmail.auth import service
from hpmail.auth.models import User
from tests.conftest import PASSWORD

FR = {"Accept-Language": "fr"}


def count_users(db) -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def reload(db, user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def sign_in(client, login: str, password: str = PASSWORD):
    return client.post("/connexion", data={"login": login, "password": password})


@pytest.fixture
def admin(login_as):
    return login_as("admin", login="alice", display_name="Alice Admin")


# --- list ------------------------------------------------------------------------------------


def test_admin_sees_the_users_with_role_state_and_linked_person(
    client, admin, make_user, make_person, db
):
    person = make_person("teacher", last_name="Durand", first_name="Paul")
    teacher = make_user("teacher", login="paul", display_name="Paul Durand")
    service.link_person(admin, teacher, person.id)
    gone = make_user("staff", login="gone", display_name="Gaston Parti")
    gone.active = False
    db.session.commit()
    page = client.get("/utilisateurs", headers=FR)
    assert page.status_code == 200
    assert "Utilisateurs" in page.text
    assert "Paul Durand" in page.text and "DURAND Paul" in page.text
    assert "Enseignant" in page.text and "Administrateur" in page.text
    assert "Désactivé" in page.text and "Actif" in page.text


def test_users_are_filtered_by_text_and_by_role(client, admin, make_user):
    make_user("teacher", login="paul", display_name="Paul Durand")
    make_user("staff", login="sophie", display_name="Sophie Bernard", email="sophie@lycee.fr")
    by_text = client.get("/utilisateurs?q=BERNARD", headers=FR).text
    assert "Sophie Bernard" in by_text and "Paul Durand" not in by_text
    by_mail = client.get("/utilisateurs?q=lycee.fr", headers=FR).text
    assert "Sophie Bernard" in by_mail and "Paul Durand" not in by_mail
    by_role = client.get("/utilisateurs?role=teacher", headers=FR).text
    assert "Paul Durand" in by_role and "Sophie Bernard" not in by_role
    nobody = client.get("/utilisateurs?q=%25_", headers=FR).text
    assert "Aucun utilisateur ne correspond" in nobody
    assert client.get("/utilisateurs?role=<script>", headers=FR).status_code == 200


def test_htmx_filter_gets_only_the_rows(client, admin, make_user):
    make_user("teacher", login="paul", display_name="Paul Durand")
    response = client.get("/utilisateurs?q=paul", headers={**FR, "HX-Request": "true"})
    assert response.status_code == 200
    assert "<tr" in response.text and "<html" not in response.text
    assert "HX-Request" in response.headers["Vary"]


def test_staff_and_teachers_cannot_manage_users(client, login_as, make_user):
    target = make_user("teacher")
    login_as("staff")
    assert client.get("/utilisateurs").status_code == 403
    assert client.get("/utilisateurs/nouveau").status_code == 403
    assert client.post(f"/utilisateurs/{target.id}/desactiver").status_code == 403
    assert client.post(f"/utilisateurs/{target.id}/mot-de-passe").status_code == 403


# --- create ----------------------------------------------------------------------------------


def test_admin_creates_a_user_with_a_typed_password_who_can_then_sign_in(client, admin, db, app):
    response = client.post(
        "/utilisateurs/nouveau",
        data={
            "login": "Marc.Petit",
            "display_name": "  Marc Petit ",
            "email": "marc.petit@lycee.fr",
            "role": "teacher",
            "password": "a long enough one",
        },
        headers=FR,
    )
    assert response.status_code == 302
    marc = db.session.scalar(select(User).where(User.login == "marc.petit"))
    assert (marc.display_name, marc.email, marc.role, marc.active) == (
        "Marc Petit",
        "marc.petit@lycee.fr",
        "teacher",
        True,
    )
    other = app.test_client()
    assert sign_in(other, "marc.petit", "a long enough one").status_code == 302


def test_admin_creates_a_user_with_a_generated_password_shown_once(client, admin, db, app):
    response = client.post(
        "/utilisateurs/nouveau",
        data={"login": "marc", "display_name": "Marc Petit", "email": "", "role": "staff"},
        headers=FR,
    )
    assert response.status_code == 200
    assert "Mot de passe provisoire :" in response.text
    assert response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="provisional-password">([^<]+)<', response.text).group(1)
    assert len(password) >= 10
    with client.session_transaction() as session:
        assert password not in repr(dict(session))
    assert password not in client.get("/utilisateurs", headers=FR).text
    marc = db.session.scalar(select(User).where(User.login == "marc"))
    assert marc.email is None
    assert sign_in(app.test_client(), "marc", password).status_code == 302


GOOD = {"login": "marc", "display_name": "Marc Petit", "email": "", "role": "staff"}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"login": ""}, "login", "Saisissez un identifiant."),
        ({"login": "marc petit"}, "login", "sans espace"),
        ({"login": "marc\r\nX-Evil: 1"}, "login", "sans espace"),
        ({"login": "éloïse"}, "login", "sans accent"),
        ({"login": "m" * 81}, "login", "entre 2 et 80 caractères"),
        ({"login": "alice"}, "login", "Cet identifiant est déjà utilisé."),
        ({"login": "ALICE"}, "login", "Cet identifiant est déjà utilisé."),
        ({"display_name": ""}, "display_name", "Saisissez le nom à afficher."),
        ({"display_name": "   "}, "display_name", "Saisissez le nom à afficher."),
        ({"display_name": "x" * 121}, "display_name", "120 caractères au maximum."),
        ({"display_name": "Marc\r\nPetit"}, "display_name", "retours à la ligne"),
        ({"email": "pas-une-adresse"}, "email", "Cette adresse e-mail n'est pas valide."),
        ({"email": "marc@lycee.fr\r\nBcc: x@evil.fr"}, "email", "retours à la ligne"),
        ({"email": "a" * 250 + "@x.fr"}, "email", "254 caractères au maximum."),
        ({"role": "superuser"}, "role", "Choisissez un rôle dans la liste."),
        ({"role": ""}, "role", "Choisissez un rôle dans la liste."),
        ({"password": "court"}, "password", "entre 10 et 200 caractères"),
        ({"password": "p" * 201}, "password", "entre 10 et 200 caractères"),
    ],
)
def test_bad_new_user_gets_a_french_message_next_to_the_field_and_creates_nobody(
    client, admin, db, changes, field, message
):
    before = count_users(db)
    response = client.post("/utilisateurs/nouveau", data={**GOOD, **changes}, headers=FR)
    assert response.status_code == 422
    assert message in unescape(_field_block(response.text, field))
    assert count_users(db) == before


def test_creating_a_user_needs_the_csrf_token(client, admin, db):
    before = count_users(db)
    response = client.post("/utilisateurs/nouveau", data=GOOD, csrf=False)
    assert response.status_code == 400
    assert count_users(db) == before


def _field_block(html: str, name: str) -> str:
    """Return the HTML of the form field named ``name`` (its input and its messages)."""
    start = html.index(f'name="{name}"')
    block_start = html.rfind('<div class="field', 0, start)
    return html[block_start : html.index("</div>", start)]


# --- deactivate / reactivate -----------------------------------------------------------------


def test_deactivated_user_is_signed_out_at_once_and_can_be_reactivated(
    app, client, admin, make_user, db
):
    sophie = make_user("staff", login="sophie")
    her_browser = app.test_client()
    assert sign_in(her_browser, "sophie").status_code == 302
    assert her_browser.get("/").status_code == 200

    response = client.post(f"/utilisateurs/{sophie.id}/desactiver", headers=FR)
    assert response.status_code == 302
    assert reload(db, sophie).active is False
    page = her_browser.get("/")
    assert page.status_code == 302 and "/connexion" in page.headers["Location"]
    assert sign_in(her_browser, "sophie").status_code == 401

    client.post(f"/utilisateurs/{sophie.id}/reactiver")
    assert reload(db, sophie).active is True
    assert sign_in(her_browser, "sophie").status_code == 302


def test_deactivated_users_old_session_cookie_stays_refused_after_reactivation(
    app, client, admin, make_user, db
):
    sophie = make_user("staff", login="sophie")
    her_browser = app.test_client()
    sign_in(her_browser, "sophie")
    client.post(f"/utilisateurs/{sophie.id}/desactiver")
    client.post(f"/utilisateurs/{sophie.id}/reactiver")
    assert her_browser.get("/").status_code == 302


def test_admin_cannot_deactivate_themself(client, admin, make_user, db):
    make_user("admin")  # another admin: only the "self" rule applies
    response = client.post(f"/utilisateurs/{admin.id}/desactiver", headers=FR)
    assert response.status_code == 422
    assert "Vous ne pouvez pas désactiver votre propre compte." in response.text
    assert reload(db, admin).active is True


def test_last_active_admin_cannot_be_deactivated_or_demoted(app, client, admin, make_user, db):
    other = make_user("admin", login="bob")
    client.post(f"/utilisateurs/{other.id}/desactiver")
    assert reload(db, other).active is False
    # alice is now the last active admin: bob (inactive) signs in nowhere; demoting alice is refused
    response = client.post(
        f"/utilisateurs/{admin.id}",
        data={"display_name": "Alice Admin", "email": "", "role": "staff"},
        headers=FR,
    )
    assert response.status_code == 422
    assert "dernier administrateur actif" in _field_block(response.text, "role")
    assert reload(db, admin).role == "admin"
    # the rule holds in the service for another actor too
    with pytest.raises(service.UserChangeRefused):
        service.set_active(other, reload(db, admin), False)
    db.session.rollback()
    assert reload(db, admin).active is True


def test_an_admin_can_be_demoted_while_another_active_admin_remains(client, admin, make_user, db):
    bob = make_user("admin", login="bob")
    response = client.post(
        f"/utilisateurs/{bob.id}", data={"display_name": "Bob", "email": "", "role": "teacher"}
    )
    assert response.status_code == 302
    assert reload(db, bob).role == "teacher"


def test_deactivation_needs_the_csrf_token(client, admin, make_user, db):
    sophie = make_user("staff", login="sophie")
    assert client.post(f"/utilisateurs/{sophie.id}/desactiver", csrf=False).status_code == 400
    assert reload(db, sophie).active is True


def test_unknown_user_gives_404(client, admin):
    assert client.get("/utilisateurs/999999").status_code == 404
    assert client.post("/utilisateurs/999999/desactiver").status_code == 404


# --- details and role ------------------------------------------------------------------------


def test_admin_changes_name_email_and_role(client, admin, make_user, db):
    paul = make_user("teacher", login="paul")
    response = client.post(
        f"/utilisateurs/{paul.id}",
        data={"display_name": "Paul Durand", "email": "Paul@Lycee.fr", "role": "staff"},
    )
    assert response.status_code == 302
    paul = reload(db, paul)
    assert (paul.display_name, paul.email, paul.role) == ("Paul Durand", "Paul@lycee.fr", "staff")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"display_name": ""}, "display_name", "Saisissez le nom à afficher."),
        ({"display_name": "a\nb"}, "display_name", "retours à la ligne"),
        ({"email": "paul@"}, "email", "Cette adresse e-mail n'est pas valide."),
        ({"role": "root"}, "role", "Choisissez un rôle dans la liste."),
    ],
)
def test_bad_details_change_nothing(client, admin, make_user, db, changes, field, message):
    paul = make_user("teacher", login="paul", display_name="Paul")
    data = {"display_name": "Paul D", "email": "", "role": "teacher", **changes}
    response = client.post(f"/utilisateurs/{paul.id}", data=data, headers=FR)
    assert response.status_code == 422
    assert message in unescape(_field_block(response.text, field))
    paul = reload(db, paul)
    assert (paul.display_name, paul.role) == ("Paul", "teacher")


# --- passwords -------------------------------------------------------------------------------


def test_admin_resets_a_password_generated_and_shown_once(app, client, admin, make_user, db):
    sophie = make_user("staff", login="sophie")
    her_browser = app.test_client()
    sign_in(her_browser, "sophie")
    response = client.post(f"/utilisateurs/{sophie.id}/mot-de-passe", data={}, headers=FR)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="provisional-password">([^<]+)<', response.text).group(1)
    assert her_browser.get("/").status_code == 302  # her sessions ended with the reset
    assert sign_in(app.test_client(), "sophie", PASSWORD).status_code == 401
    assert sign_in(app.test_client(), "sophie", password).status_code == 302


def test_admin_resets_a_password_to_a_typed_one(app, client, admin, make_user):
    sophie = make_user("staff", login="sophie")
    response = client.post(
        f"/utilisateurs/{sophie.id}/mot-de-passe", data={"new_password": "typed by the admin"}
    )
    assert response.status_code == 302
    assert sign_in(app.test_client(), "sophie", "typed by the admin").status_code == 302


def test_short_reset_password_is_refused_and_changes_nothing(app, client, admin, make_user):
    sophie = make_user("staff", login="sophie")
    response = client.post(
        f"/utilisateurs/{sophie.id}/mot-de-passe", data={"new_password": "short"}, headers=FR
    )
    assert response.status_code == 422
    assert "entre 10 et 200 caractères" in _field_block(response.text, "new_password")
    assert sign_in(app.test_client(), "sophie", PASSWORD).status_code == 302


def test_reset_password_needs_the_csrf_token(app, client, admin, make_user):
    sophie = make_user("staff", login="sophie")
    response = client.post(f"/utilisateurs/{sophie.id}/mot-de-passe", data={}, csrf=False)
    assert response.status_code == 400
    assert sign_in(app.test_client(), "sophie", PASSWORD).status_code == 302


def test_user_changes_their_own_password_and_stays_signed_in(app, client, login_as):
    login_as("teacher", login="paul")
    other_browser = app.test_client()
    sign_in(other_browser, "paul")
    page = client.get("/mot-de-passe", headers=FR)
    assert "Changer mon mot de passe" in page.text
    response = client.post(
        "/mot-de-passe",
        data={
            "current_password": PASSWORD,
            "new_password": "my brand new secret",
            "confirm": "my brand new secret",
        },
        headers=FR,
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert other_browser.get("/").status_code == 302  # the other sessions ended
    assert sign_in(app.test_client(), "paul", "my brand new secret").status_code == 302


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"current_password": ""}, "current_password", "Saisissez votre mot de passe actuel."),
        (
            {"current_password": "wrong one!"},
            "current_password",
            "mot de passe actuel est incorrect",
        ),
        ({"new_password": "", "confirm": ""}, "new_password", "Saisissez un mot de passe."),
        ({"new_password": "short", "confirm": "short"}, "new_password", "entre 10 et 200"),
        (
            {"confirm": "something else"},
            "confirm",
            "Les deux nouveaux mots de passe sont différents.",
        ),
        ({"new_password": "x" * 201, "confirm": "x" * 201}, "new_password", "entre 10 et 200"),
    ],
)
def test_bad_own_password_change_changes_nothing(app, client, login_as, data, field, message):
    login_as("teacher", login="paul")
    good = {
        "current_password": PASSWORD,
        "new_password": "my brand new secret",
        "confirm": "my brand new secret",
    }
    response = client.post("/mot-de-passe", data={**good, **data}, headers=FR)
    assert response.status_code == 422
    assert message in unescape(_field_block(response.text, field))
    assert sign_in(app.test_client(), "paul", PASSWORD).status_code == 302


def test_own_password_change_needs_the_csrf_token(app, client, login_as):
    login_as("teacher", login="paul")
    data = {"current_password": PASSWORD, "new_password": "x" * 12, "confirm": "x" * 12}
    assert client.post("/mot-de-passe", data=data, csrf=False).status_code == 400
    assert sign_in(app.test_client(), "paul", PASSWORD).status_code == 302


def test_layout_links_to_change_my_password(client, login_as):
    login_as("staff")
    assert 'href="/mot-de-passe"' in client.get("/", headers=FR).text


# --- link to a directory person --------------------------------------------------------------


def test_admin_finds_a_person_with_htmx_suggestions_and_links_the_user(
    client, admin, make_user, make_person, db
):
    paul = make_user("teacher", login="paul")
    durand = make_person("teacher", last_name="Durand", first_name="Paul")
    make_person("student", last_name="Martin", first_name="Léa")
    response = client.get(
        f"/utilisateurs/{paul.id}?person_q=durand", headers={**FR, "HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "<html" not in response.text
    assert f'value="{durand.id}"' in response.text and "Martin" not in response.text
    assert (
        client.post(f"/utilisateurs/{paul.id}/personne", data={"person_id": durand.id}).status_code
        == 302
    )
    assert reload(db, paul).person_id == durand.id
    page = client.get(f"/utilisateurs/{paul.id}", headers=FR)
    assert "Lié à DURAND Paul." in page.text


def test_the_page_without_javascript_shows_the_same_suggestions(
    client, admin, make_user, make_person
):
    paul = make_user("teacher", login="paul")
    durand = make_person("teacher", last_name="Durand", first_name="Paul")
    page = client.get(f"/utilisateurs/{paul.id}?person_q=paul+dur", headers=FR)
    assert "<html" in page.text and f'value="{durand.id}"' in page.text


def test_a_person_is_linked_to_one_user_at_most(client, admin, make_user, make_person, db):
    paul = make_user("teacher", login="paul")
    other = make_user("teacher", login="paul2")
    durand = make_person("teacher", last_name="Durand", first_name="Paul")
    service.link_person(admin, paul, durand.id)
    db.session.commit()
    suggestions = client.get(f"/utilisateurs/{other.id}?person_q=durand", headers=FR).text
    assert "déjà lié à paul" in suggestions
    response = client.post(
        f"/utilisateurs/{other.id}/personne", data={"person_id": durand.id}, headers=FR
    )
    assert response.status_code == 422
    assert "Cette personne est déjà liée à l'utilisateur paul." in unescape(response.text)
    assert reload(db, other).person_id is None
    assert reload(db, paul).person_id == durand.id


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Choisissez une personne parmi les suggestions."),
        ("abc", "Choisissez une personne parmi les suggestions."),
        ("1 OR 1=1", "Choisissez une personne parmi les suggestions."),
        ("9" * 40, "Choisissez une personne parmi les suggestions."),
        ("999999", "Cette personne ne figure pas dans l'annuaire."),
    ],
)
def test_bad_person_link_changes_nothing(client, admin, make_user, db, value, message):
    paul = make_user("teacher", login="paul")
    response = client.post(
        f"/utilisateurs/{paul.id}/personne", data={"person_id": value}, headers=FR
    )
    assert response.status_code == 422
    assert message in unescape(response.text)
    assert reload(db, paul).person_id is None


def test_admin_removes_the_link(client, admin, make_user, make_person, db):
    paul = make_user("teacher", login="paul")
    durand = make_person("teacher", last_name="Durand")
    service.link_person(admin, paul, durand.id)
    db.session.commit()
    assert client.post(f"/utilisateurs/{paul.id}/personne/retirer", csrf=False).status_code == 400
    assert reload(db, paul).person_id == durand.id
    assert client.post(f"/utilisateurs/{paul.id}/personne/retirer").status_code == 302
    assert reload(db, paul).person_id is None


def test_person_search_treats_like_wildcards_as_text(db, make_person):
    make_person("teacher", last_name="Durand")
    assert service.suggest_people("%") == []
    assert service.suggest_people("_") == []
    assert len(service.suggest_people("durand")) == 1


def test_two_admins_creating_the_same_login_at_once_get_a_message_not_an_error(
    db, make_user, monkeypatch
):
    admin = make_user("admin", login="alice")
    make_user("staff", login="marc")
    # the second admin's check ran before the first one's insert
    monkeypatch.setattr(service, "find_user_by_login", lambda login: None)
    with pytest.raises(service.UserChangeRefused) as refused:
        service.create_user("marc", "Marc", PASSWORD, "staff", actor=admin)
    assert list(refused.value.errors) == ["login"]
    assert count_users(db) == 2  # the session is still usable


def test_admin_who_gives_up_the_admin_role_is_sent_home(client, admin, make_user, db):
    make_user("admin", login="bob")
    response = client.post(
        f"/utilisateurs/{admin.id}", data={"display_name": "Alice", "email": "", "role": "staff"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert reload(db, admin).role == "staff"
    assert client.get("/utilisateurs").status_code == 403


def test_admin_resetting_their_own_password_stays_signed_in_here(client, admin):
    response = client.post(f"/utilisateurs/{admin.id}/mot-de-passe", data={})
    assert response.status_code == 200
    assert client.get("/utilisateurs").status_code == 200


def test_it_admin_resets_a_password_from_the_command_line(app, make_user):
    make_user("admin", login="alice")
    result = app.test_cli_runner().invoke(args=["reset-password", "ALICE"])
    assert result.exit_code == 0, result.output
    password = result.output.rsplit(": ", 1)[1].strip()
    assert sign_in(app.test_client(), "alice", password).status_code == 302
    unknown = app.test_cli_runner().invoke(args=["reset-password", "nobody"])
    assert unknown.exit_code != 0 and "Aucun utilisateur" in unknown.output
