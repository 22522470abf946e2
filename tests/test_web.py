"""Request glue: htmx fragments versus pages, and the client address behind a reverse proxy."""

import re

import pytest

from hpmail import create_app
from hpmail.web import public


def test_htmx_gets_a_fragment_but_a_history_restore_gets_the_whole_page(client, login_as):
    login_as("staff")
    page = client.get("/plannings/student", follow_redirects=True)
    fragment = client.get(
        page.request.path + "?" + page.request.query_string.decode(), headers={"HX-Request": "true"}
    )
    restored = client.get(
        page.request.path + "?" + page.request.query_string.decode(),
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert fragment.status_code == restored.status_code == 200
    assert "<html" not in fragment.text
    assert "<html" in restored.text
    assert "HX-Request" in fragment.headers["Vary"] and "HX-Request" in restored.headers["Vary"]


def test_behind_one_proxy_the_sign_in_throttle_sees_the_client_address(tmp_path):
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "QUEUE_URL": "memory", "PROXY_COUNT": 1}
    )

    @app.route("/adresse")
    @public
    def address():
        from flask import request

        return request.remote_addr

    with app.test_client() as client:
        response = client.get(
            "/adresse",
            headers={"X-Forwarded-For": "203.0.113.7"},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
    assert response.text == "203.0.113.7"


# --- huge integers in URLs, query strings and forms ------------------------------------------

HUGE = str(2**64)
HUGER = "99999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"/e-mails/{HUGE}",
        f"/e-mails/1/pieces-jointes/{HUGE}",
        f"/utilisateurs/{HUGE}",
        f"/configuration/profils-envoi/{HUGE}",
        f"/configuration/comptes-etablissement/{HUGE}/utilisateurs",
        f"/cours/{HUGE}",
        f"/promotions/{HUGE}",
        f"/e-mail/cours/{HUGE}",
    ],
)
def test_a_huge_id_in_the_address_gives_a_french_404(client, login_as, path):
    login_as("admin")
    response = client.get(path, headers={"Accept-Language": "fr"})
    assert response.status_code == 404
    assert "introuvable" in response.text.lower()


@pytest.mark.parametrize(
    "path",
    [
        f"/e-mails?page={HUGER}",
        f"/e-mails?account={HUGER}",
        f"/serveur/file-envoi?page={HUGER}",
        f"/plannings/student?page={HUGER}&cohort={HUGER}",
        f"/cours?page={HUGER}",
        f"/configuration/comptes-etablissement?compte={HUGER}",
        f"/e-mail/nouveau?template={HUGER}",
    ],
)
def test_a_huge_number_in_the_query_string_shows_the_page(client, login_as, path):
    login_as("admin")
    response = client.get(path, headers={"Accept-Language": "fr"}, follow_redirects=True)
    assert response.status_code == 200


def test_a_huge_account_id_in_the_mail_settings_form_gets_the_forms_message(client, login_as):
    login_as("staff")
    response = client.post(
        "/configuration/envoi", data={"account_id": HUGER}, headers={"Accept-Language": "fr"}
    )
    assert response.status_code == 422
    assert 'role="alert"' in response.text or "error" in response.text


# --- favicon ---------------------------------------------------------------------------------


@pytest.mark.parametrize("signed_in", [False, True])
def test_every_page_links_a_favicon_that_is_served(client, login_as, signed_in):
    if signed_in:
        login_as("staff")
    page = client.get("/" if signed_in else "/connexion")
    link = re.search(r'<link rel="icon" href="([^"]+)"', page.text)
    assert link, page.text[:400]
    icon = client.get(link.group(1))
    assert icon.status_code == 200
    assert icon.data.startswith(b"\x00\x00\x01\x00")  # an ICO file


def test_the_favicon_is_served_where_browsers_look_for_it_without_signing_in(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
    assert response.data.startswith(b"\x00\x00\x01\x00")
