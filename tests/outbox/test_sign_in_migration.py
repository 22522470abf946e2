"""The migration to OAuth2 sign-in keeps how each saved SMTP server signed in."""

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from hpmail.extensions import db
from tests.fixtures.migrations import app_on_an_empty_database


@pytest.fixture
def empty_app(tmp_path):
    with app_on_an_empty_database(tmp_path) as app:
        yield app


def test_a_server_with_a_login_signs_in_with_its_password_and_one_without_signs_in_not(
    empty_app,
):
    upgrade(revision="b1a1c0ffee16")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO transport (id, host, port, security, username, timeout_seconds)"
                " VALUES (1, 'smtp.a', 587, 'starttls', 'envoi', 30),"
                " (2, 'smtp.b', 25, 'none', '', 30)"
            )
        )
    upgrade(revision="e2a1c0ffee20")
    with db.engine.begin() as connection:
        rows = connection.execute(
            text("SELECT id, auth, oauth_account, oauth_refresh_encrypted FROM transport")
        ).all()
        assert sorted(rows) == [(1, "password", "", None), (2, "none", "", None)]
        with pytest.raises(IntegrityError):
            connection.execute(text("UPDATE transport SET auth = 'kerberos' WHERE id = 1"))
    downgrade(revision="e1a1c0ffee19")
    upgrade()
