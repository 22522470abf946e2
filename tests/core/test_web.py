"""Request glue: htmx fragments versus pages, and the client address behind a reverse proxy."""

import json
import re

import pytest

from hpmail import create_app
from hpmail.config import PROJECT_ROOT
from hpmail.core.web import public


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


# --- security headers and no inline script -----------------------------------------------------

TEMPLATES = PROJECT_ROOT / "templates"
PAGE_TEMPLATES = [
    path
    for path in sorted(TEMPLATES.rglob("*.html"))
    if "email" not in path.relative_to(TEMPLATES).parts  # e-mail bodies are not pages
]
INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|\shx-on[:-]|javascript:|\sstyle=", re.I
)


@pytest.mark.parametrize("template", PAGE_TEMPLATES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_page_template_holds_inline_script_handlers_or_styles(template):
    """The Content-Security-Policy blocks them: behaviours live in static/app.js."""
    found = INLINE_SCRIPT.findall(template.read_text())
    assert not found, found


def test_pages_are_sent_with_a_content_security_policy_without_inline_script(client, login_as):
    login_as("staff")
    for path in ("/connexion", "/"):
        policy = client.get(path).headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["object-src"] == "'none'"
        assert "unsafe" not in policy


def test_htmx_is_configured_to_need_no_inline_style_nor_eval(client):
    page = client.get("/connexion").text
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page)
    assert meta
    config = json.loads(meta.group(1))
    assert config["includeIndicatorStyles"] is False
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False


def test_htmx_swaps_a_form_refused_with_422_and_no_other_error(client):
    page = client.get("/connexion").text
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page)
    first = {}
    for rule in json.loads(meta.group(1))["responseHandling"]:  # the first rule that matches
        for code in ("204", "200", "302", "422", "403", "500"):
            if code not in first and re.fullmatch(rule["code"], code):
                first[code] = rule
    assert first["422"]["swap"] is True
    assert first["200"]["swap"] is True
    assert first["204"]["swap"] is False
    assert first["403"]["swap"] is False and first["403"]["error"] is True
    assert first["500"]["swap"] is False and first["500"]["error"] is True


def test_signed_in_pages_are_never_stored_by_the_browser_or_a_proxy(client, login_as):
    login_as("staff")
    for path in ("/", "/mot-de-passe", "/nulle-part"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    assert "no-store" not in client.get("/static/app.css").headers.get("Cache-Control", "")


def test_strict_transport_security_is_sent_only_when_the_cookie_is_secure(app, client):
    assert "Strict-Transport-Security" not in client.get("/connexion").headers
    app.config["SESSION_COOKIE_SECURE"] = True
    hsts = client.get("/connexion").headers["Strict-Transport-Security"]
    assert int(hsts.removeprefix("max-age=")) >= 180 * 24 * 3600
