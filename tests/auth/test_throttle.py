"""Sign-in throttling: a growing delay per login and address, no lock-out of others, lifted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hpmail.auth import service
from hpmail.auth.models import SignInAttempt
from hpmail.core.time import utcnow
from tests.conftest import PASSWORD

FR = {"Accept-Language": "fr"}
ATTACKER = "198.51.100.66"
NAT = "192.0.2.10"  # the school's one public address, shared by every classroom


def sign_in(client, login: str, password: str = PASSWORD, address: str = "10.0.0.1"):
    return client.post(
        "/connexion",
        data={"login": login, "password": password},
        environ_base={"REMOTE_ADDR": address},
        headers=FR,
    )


def failures(db, login: str, address: str, count: int, seconds_ago: float = 1) -> None:
    at = utcnow() - timedelta(seconds=seconds_ago)
    db.session.add_all(
        SignInAttempt(login=login, remote_addr=address, succeeded=False, at=at)
        for _ in range(count)
    )
    db.session.commit()


# --- the two lock-out attacks ----------------------------------------------------------------


def test_someone_failing_on_the_admins_login_does_not_keep_the_admin_out(app, make_user):
    app.config["SIGNIN_FIRST_DELAY_SECONDS"] = 60  # longer than the test, however slow
    make_user("admin", login="admin")
    attacker = app.test_client()
    for typed in ["admin", "ADMIN", " Admin ", "aDmIn", "admin\t", "Admin", "ADMIN "] * 3:
        response = sign_in(attacker, typed, "guess", address=ATTACKER)
        assert response.status_code in (401, 429)
    # the attacker is slowed down whatever the case and spaces of the login typed...
    response = sign_in(attacker, "admin", address=ATTACKER)
    assert response.status_code == 429
    assert "Trop de tentatives" in response.text
    # the admin, from an address that has not failed, signs in at once with the right password
    assert sign_in(app.test_client(), "admin", address="10.0.0.1").status_code == 302


def test_the_attackers_tries_beyond_the_free_ones_are_refused_without_being_checked(
    app, make_user, db
):
    app.config["SIGNIN_FIRST_DELAY_SECONDS"] = 60  # longer than the test, however slow
    make_user("admin", login="admin")
    attacker = app.test_client()
    answers = [sign_in(attacker, "Admin", "guess", address=ATTACKER).status_code for _ in range(30)]
    free = app.config["SIGNIN_FREE_FAILURES"]
    assert answers[:free] == [401] * free
    assert set(answers[free + 1 :]) == {429}
    checked = db.session.scalar(
        select(func.count()).select_from(SignInAttempt).where(SignInAttempt.login == "admin")
    )
    assert checked <= free + 1


def test_failures_behind_the_school_nat_do_not_keep_colleagues_out(app, make_user, db):
    make_user("staff", login="sophie")
    make_user("teacher", login="paul")
    # sophie signed in from the school yesterday; paul never from here
    db.session.add(
        SignInAttempt(
            login="sophie", remote_addr=NAT, succeeded=True, at=utcnow() - timedelta(hours=20)
        )
    )
    db.session.commit()
    pupil = app.test_client()
    for n in range(40):  # a pupil in a classroom tries many logins
        sign_in(pupil, f"prof{n}", "guess", address=NAT)
    # sophie, known from this address, signs in at once behind the same address
    assert sign_in(app.test_client(), "sophie", address=NAT).status_code == 302
    # paul, from his own address, signs in at once too
    assert sign_in(app.test_client(), "paul", address="10.0.0.7").status_code == 302


# --- the delay ---------------------------------------------------------------------------------


def test_the_delay_doubles_with_each_failure_up_to_its_ceiling(app, db):
    config = app.config
    free, first = config["SIGNIN_FREE_FAILURES"], config["SIGNIN_FIRST_DELAY_SECONDS"]
    waits = []
    for _ in range(12):
        failures(db, "sophie", "10.0.0.1", 1 if waits else free, seconds_ago=0)
        waits.append(service.wait_before_next_try("sophie", "10.0.0.1").total_seconds())
    assert first - 1 <= waits[0] <= first
    assert 2 * first - 1 <= waits[1] <= 2 * first
    assert 4 * first - 1 <= waits[2] <= 4 * first
    assert waits[-1] <= config["SIGNIN_MAX_DELAY_SECONDS"]
    assert waits[-1] >= config["SIGNIN_MAX_DELAY_SECONDS"] - 1


def test_the_right_password_gets_in_once_the_delay_has_passed(app, client, make_user, db):
    make_user("staff", login="sophie")
    first = app.config["SIGNIN_FIRST_DELAY_SECONDS"]
    failures(db, "sophie", "10.0.0.1", app.config["SIGNIN_FREE_FAILURES"], seconds_ago=0)
    response = sign_in(client, "sophie")
    assert response.status_code == 429
    assert "secondes" in response.text  # says how long to wait
    db.session.query(SignInAttempt).update({"at": utcnow() - timedelta(seconds=first + 1)})
    db.session.commit()
    assert sign_in(client, "sophie").status_code == 302


# --- the admin sees the slowed sign-ins and lifts them ---------------------------------------


def test_the_admin_sees_a_slowed_sign_in_and_lifts_it(app, client, login_as, make_user, db):
    make_user("staff", login="sophie")
    failures(db, "sophie", ATTACKER, 12)
    failures(db, "someone", NAT, 1)  # not slowed: not listed
    login_as("admin", login="alice")
    page = client.get("/utilisateurs", headers=FR)
    assert "Connexions ralenties" in page.text
    assert ATTACKER in page.text and "sophie" in page.text
    assert NAT not in page.text
    response = client.post(
        "/utilisateurs/connexions-ralenties/lever",
        data={"login": "sophie", "address": ATTACKER},
        headers=FR,
    )
    assert response.status_code == 302
    assert sign_in(app.test_client(), "sophie", address=ATTACKER).status_code == 302
    assert f'value="{ATTACKER}"' not in client.get("/utilisateurs", headers=FR).text


def test_the_admin_lifts_the_slowdown_of_a_whole_address(app, client, login_as, make_user, db):
    make_user("teacher", login="paul")
    for n in range(25):
        failures(db, f"guess{n}", NAT, 1)
    assert sign_in(app.test_client(), "paul", address=NAT).status_code == 429
    login_as("admin", login="alice")
    assert NAT in client.get("/utilisateurs", headers=FR).text
    response = client.post(
        "/utilisateurs/connexions-ralenties/lever", data={"login": "", "address": NAT}
    )
    assert response.status_code == 302
    assert sign_in(app.test_client(), "paul", address=NAT).status_code == 302


def test_only_the_admin_lifts_a_slowdown_and_with_the_csrf_token(
    app, client, login_as, make_user, db
):
    make_user("staff", login="sophie")
    failures(db, "sophie", ATTACKER, 12)
    login_as("staff")
    lift = {"login": "sophie", "address": ATTACKER}
    assert client.post("/utilisateurs/connexions-ralenties/lever", data=lift).status_code == 403
    admin = app.test_client()
    login_as_admin = sign_in(admin, make_user("admin").login)
    assert login_as_admin.status_code == 302
    response = admin.post("/utilisateurs/connexions-ralenties/lever", data=lift, csrf=False)
    assert response.status_code == 400
    assert sign_in(app.test_client(), "sophie", address=ATTACKER).status_code == 429


# --- the current password in "Change my password" ------------------------------------------


def test_guessing_the_current_password_is_slowed_down_like_a_sign_in(app, client, login_as):
    login_as("teacher", login="paul")
    wrong = {"current_password": "guess", "new_password": "x" * 12, "confirm": "x" * 12}
    for _ in range(app.config["SIGNIN_FREE_FAILURES"]):
        response = client.post("/mot-de-passe", data=wrong, headers=FR)
        assert response.status_code == 422
        assert "incorrect" in response.text
    right = {**wrong, "current_password": PASSWORD}
    response = client.post("/mot-de-passe", data=right, headers=FR)
    assert response.status_code == 422
    assert "Trop de tentatives" in response.text
    # the password did not change
    assert sign_in(app.test_client(), "paul", address="10.0.0.9").status_code == 302


@pytest.mark.parametrize("typed", ["Sophie", " SOPHIE ", "so phie"])
def test_a_login_is_counted_whatever_its_case_and_spaces(typed):
    assert service.login_key(typed) == "sophie"
