"""A send while the database is held locked says so in French and keeps nothing half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hpmail.delivery.models import Mailing, OutboundEmail
from tests.compose.conftest import FR
from tests.delivery.test_locked_database import database_file, locked


@pytest.fixture
def app_config(app_config):
    return {**app_config, "SQLITE_BUSY_TIMEOUT_MS": 200, "OUTBOX_COMMIT_ATTEMPTS": 1}


def test_send_while_the_database_is_locked_changes_nothing_and_says_why(
    app, client, sender, make_person, select_people, smtp_server, db
):
    token = select_people(sender, [make_person("student") for _ in range(3)])

    with locked(database_file(app)):
        response = client.post(
            "/e-mail/nouveau",
            data={
                "selection": token,
                "kinds": ["student"],
                "subject": "Conseil",
                "body": "Bonjour",
            },
            headers=FR,
        )

    assert response.status_code == 503
    assert "Le serveur est occupé" in response.text
    assert "Conseil" in response.text  # what the user wrote is still in the form
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Mailing)) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboundEmail)) == 0
    assert smtp_server.received == []
