"""Sign-in throttling per address, purge of old attempts, session cookies and session fixation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hpmail import create_app
from hpmail.accounts.verification import hash_answer
from hpmail.auth import service
from hpmail.auth.models import SignInAttempt, User
from hpmail.core.time import utcnow
from hpmail.extensions import db as _db
from tests.conftest import PASSWORD, CsrfClient


def sign_in(client, login: str, password: str = PASSWORD, address: str = "10.0.0.1"):
    return client.post(
        "/connexion",
        data={"login": login, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


# --- throttling ------------------------------------------------------------------------------


def test_one_address_failing_on_many_logins_is_throttled_for_every_login(client, make_user):
    make_user("staff", login="sophie")
    for n in range(20):  # SIGNIN_MAX_FAILURES_PER_ADDRESS, each login under its own limit
        assert sign_in(client, f"guess{n}", "nope").status_code == 401
    response = sign_in(client, "sophie")
    assert response.status_code == 429
    assert "Trop de tentatives" in response.text
    # the same user from another address is not held back
    assert sign_in(client, "sophie", address="10.0.0.2").status_code == 302


def test_a_success_does_not_reset_the_failures_counted_for_others(app, make_user):
    make_user("staff", login="sophie")
    make_user("staff", login="marc")
    make_user("staff", login="lea")
    attacker, marc = app.test_client(), app.test_client()
    for _ in range(4):
        sign_in(attacker, "sophie", "nope")
    assert sign_in(marc, "marc").status_code == 302  # same address, other login: succeeds
    sign_in(attacker, "sophie", "nope")  # fifth failure for sophie
    assert sign_in(app.test_client(), "sophie").status_code == 429

    for n in range(14):  # 5 + 14 = 19 failures from this address
        sign_in(attacker, f"guess{n}", "nope")
    assert sign_in(app.test_client(), "marc").status_code == 302  # 19 < 20, and succeeds
    sign_in(attacker, "guess-last", "nope")  # the 20th failure of the window
    # the address is slowed down for a login never signed in from it...
    assert sign_in(app.test_client(), "lea").status_code == 429
    # ...but not for marc, who signed in from it a moment ago
    assert sign_in(app.test_client(), "marc").status_code == 302


def test_failures_older_than_the_window_no_longer_count(app, client, make_user, db):
    make_user("staff", login="sophie")
    old = utcnow() - timedelta(seconds=app.config["SIGNIN_WINDOW_SECONDS"] + 5)
    db.session.add_all(
        SignInAttempt(login="sophie", remote_addr="10.0.0.1", succeeded=False, at=old)
        for _ in range(10)
    )
    db.session.commit()
    assert sign_in(client, "sophie").status_code == 302


def test_attempts_older_than_a_day_are_purged_at_the_next_sign_in(client, make_user, db):
    make_user("staff", login="sophie")
    db.session.add_all(
        [
            SignInAttempt(
                login="x", remote_addr="1.2.3.4", succeeded=False, at=utcnow() - timedelta(days=2)
            ),
            SignInAttempt(
                login="y", remote_addr="1.2.3.4", succeeded=False, at=utcnow() - timedelta(hours=2)
            ),
        ]
    )
    db.session.commit()
    sign_in(client, "sophie")
    logins = db.session.scalars(select(SignInAttempt.login).order_by(SignInAttempt.id)).all()
    assert logins == ["y", "sophie"]


def test_purge_keeps_the_attempts_of_a_window_longer_than_a_day(app, db):
    app.config["SIGNIN_WINDOW_SECONDS"] = 3 * 24 * 3600
    db.session.add(
        SignInAttempt(login="x", remote_addr="a", succeeded=False, at=utcnow() - timedelta(days=2))
    )
    db.session.flush()
    assert service.purge_old_attempts() == 0
    assert db.session.scalar(select(func.count()).select_from(SignInAttempt)) == 1


def test_unknown_login_and_wrong_password_get_the_same_answer(client, make_user):
    make_user("staff", login="sophie")
    unknown = sign_in(client, "nobody", "nope")
    wrong = sign_in(client, "sophie", "nope")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.text.replace("nobody", "sophie") == wrong.text


@pytest.mark.parametrize(
    ("login", "password", "message"),
    [
        ("", PASSWORD, "Saisissez votre identifiant."),
        ("sophie", "", "Saisissez votre mot de passe."),
        ("s" * 81, PASSWORD, "80 caractères au maximum."),
        ("sophie", "p" * 201, "200 caractères au maximum."),
    ],
)
def test_bad_sign_in_form_gets_a_french_message_and_records_nothing(
    client, make_user, db, login, password, message
):
    make_user("staff", login="sophie")
    response = client.post(
        "/connexion", data={"login": login, "password": password}, headers={"Accept-Language": "fr"}
    )
    assert response.status_code == 200
    assert message in response.text
    assert db.session.scalar(select(func.count()).select_from(SignInAttempt)) == 0
    assert client.get("/").status_code == 302


# --- session cookies -------------------------------------------------------------------------


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    return cookies[-1]


def test_session_cookie_is_http_only_and_same_site_lax(client, make_user):
    make_user("staff", login="sophie")
    cookie = session_cookie(sign_in(client, "sophie"))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP by default, or the browser would drop it


@pytest.fixture
def build_app(app_config, monkeypatch):
    """Return ``build_app()``: an app built now (after the test set its environment or files)."""
    made = []

    def build():
        app = create_app(app_config)
        app.test_client_class = CsrfClient
        made.append(app)
        return app

    yield build
    for app in made:
        with app.app_context():
            _db.engine.dispose()


def signed_in_cookie(app) -> str:
    with app.app_context():
        _db.create_all()
        service.create_user("sophie", "Sophie", PASSWORD, "staff")
        _db.session.commit()
        response = sign_in(app.test_client(), "sophie")
        assert response.status_code == 302
        _db.session.remove()
        return session_cookie(response)


def test_session_cookie_is_secure_when_the_environment_says_https(build_app, monkeypatch):
    monkeypatch.setenv("HPMAIL_SESSION_COOKIE_SECURE", "1")
    cookie = signed_in_cookie(build_app())
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_cookie_is_secure_when_the_instance_config_says_https(build_app, app_config):
    instance = Path(app_config["INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "config.py").write_text("SESSION_COOKIE_SECURE = True\n")
    cookie = signed_in_cookie(build_app())
    assert "Secure" in cookie


# --- session fixation and stale sessions -----------------------------------------------------


def test_sign_in_starts_a_fresh_session(client, make_user):
    make_user("staff", login="sophie")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
        session["_user_id"] = "1:forged"
    assert client.get("/").status_code == 302  # a forged id signs nobody in
    assert sign_in(client, "sophie").status_code == 302
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"] != "1:forged"


def test_sign_out_clears_the_session(client, login_as):
    login_as("staff")
    with client.session_transaction() as session:
        session["draft"] = "something"
    client.post("/deconnexion")
    with client.session_transaction() as session:
        assert "draft" not in session and "_user_id" not in session


@pytest.mark.parametrize("stored", ["1", "1:", "x:y", "", "99:abc"])
def test_malformed_or_stale_session_ids_sign_nobody_in(client, make_user, stored):
    make_user("admin")
    with client.session_transaction() as session:
        session["_user_id"] = stored
    response = client.get("/")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


# --- copied cookies after sign-out and password change ---------------------------------------


def copy_of_session(app, client):
    """Return a second browser holding a copy of ``client``'s session cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def test_a_session_cookie_copied_before_sign_out_no_longer_works_after_it(app, client, login_as):
    login_as("staff")
    thief = copy_of_session(app, client)
    assert thief.get("/").status_code == 200  # the copy works while the user is signed in
    assert client.post("/deconnexion").status_code == 302
    response = thief.get("/")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


def test_a_session_cookie_copied_before_a_password_change_no_longer_works(app, client, login_as):
    login_as("staff")
    thief = copy_of_session(app, client)
    data = {"current_password": PASSWORD, "new_password": "x" * 12, "confirm": "x" * 12}
    assert client.post("/mot-de-passe", data=data).status_code == 302
    assert client.get("/").status_code == 200  # this browser stays signed in
    response = thief.get("/")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


def test_passwords_and_secret_answers_are_hashed_with_scrypt_unless_configured(tmp_path):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "DEMO": False})
    with app.app_context():
        user = User(login="sophie", display_name="Sophie", role="staff")
        user.set_password("correct horse battery")
        assert user.password_hash.startswith("scrypt:")
        assert hash_answer("Nantes").startswith("scrypt:")
        assert user.check_password("correct horse battery")
