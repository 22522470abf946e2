"""Signing in and out, throttling, and the default of every page being for signed-in users."""

import pytest

from tests.conftest import PASSWORD


def test_anonymous_visitor_is_sent_to_the_sign_in_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/connexion" in response.headers["Location"]


def test_user_signs_in_and_sees_the_menus_in_french(client, make_user):
    make_user("staff", login="sophie")
    response = client.post("/connexion", data={"login": "sophie", "password": PASSWORD})
    assert response.status_code == 302
    home = client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert "Bienvenue" in home.text
    assert "Se déconnecter" in home.text


def test_english_browser_gets_english_pages(client, make_user):
    make_user("staff", login="sophie")
    client.post("/connexion", data={"login": "sophie", "password": PASSWORD})
    home = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Welcome" in home.text


def test_wrong_password_is_refused_with_a_french_message(client, make_user):
    make_user("staff", login="sophie")
    response = client.post("/connexion", data={"login": "sophie", "password": "nope"})
    assert response.status_code == 401
    assert "Identifiant ou mot de passe incorrect" in response.text
    assert client.get("/").status_code == 302


def test_sign_in_is_throttled_after_five_failures_even_with_the_right_password(client, make_user):
    make_user("staff", login="sophie")
    for _ in range(5):
        client.post("/connexion", data={"login": "sophie", "password": "nope"})
    response = client.post("/connexion", data={"login": "sophie", "password": PASSWORD})
    assert response.status_code == 429
    assert "Trop de tentatives" in response.text


def test_deactivated_user_cannot_sign_in(client, make_user, db):
    user = make_user("staff", login="sophie")
    user.active = False
    db.session.commit()
    response = client.post("/connexion", data={"login": "sophie", "password": PASSWORD})
    assert response.status_code == 401


def test_sign_in_without_csrf_token_is_refused(client, make_user):
    make_user("staff", login="sophie")
    response = client.post("/connexion", data={"login": "sophie", "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_next_parameter_cannot_send_the_user_to_another_site(client, make_user):
    make_user("staff", login="sophie")
    response = client.post(
        "/connexion?next=//evil.example/x", data={"login": "sophie", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_sign_out_needs_a_post_with_csrf(client, login_as):
    login_as("staff")
    assert client.get("/deconnexion").status_code == 405
    assert client.post("/deconnexion", csrf=False).status_code == 400
    assert client.post("/deconnexion").status_code == 302
    assert client.get("/").status_code == 302


def test_unknown_page_gives_a_french_404(client, login_as):
    login_as("staff")
    response = client.get("/nulle-part", headers={"Accept-Language": "fr"})
    assert response.status_code == 404
    assert "Page introuvable" in response.text


@pytest.mark.browser
def test_staff_signs_in_with_the_browser(page, make_user):
    make_user("staff", login="sophie", display_name="Sophie Bernard")
    page.goto("/connexion")
    page.fill("input[name=login]", "sophie")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    assert "Sophie Bernard" in page.inner_text("header")


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "///evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "https://evil.example",
        "evil",
    ],
)
def test_next_parameter_tricks_do_not_leave_the_site(client, make_user, target):
    make_user("staff", login="sophie")
    response = client.post(
        "/connexion", query_string={"next": target}, data={"login": "sophie", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_next_parameter_within_the_site_is_followed(client, make_user):
    make_user("staff", login="sophie")
    response = client.post(
        "/connexion?next=/utilisateurs%3Fq%3Dx", data={"login": "sophie", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/utilisateurs?q=x"
