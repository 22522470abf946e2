"""A send while the database is held locked says so in French and keeps nothing half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hpmail.outbox.models import Mailing, OutboundEmail
from tests.compose.conftest import FR
from tests.fixtures import backend
from tests.outbox.test_locked_database import database_file, locked


@pytest.fixture
def app_config(app_config):
    # SQLite's database-wide write lock, in both runs (see ``backend.on_sqlite``).
    config = {**app_config, "SQLITE_BUSY_TIMEOUT_MS": 200, "OUTBOX_COMMIT_ATTEMPTS": 1}
    return backend.on_sqlite(config)


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


def test_opening_the_composer_writes_nothing_and_answers_while_the_database_is_locked(
    app, client, login_as, make_person, select_people, db
):
    from hpmail.accounts.models import MailSettings

    user = login_as("staff")  # never saved mail settings
    token = select_people(user, [make_person("student")])

    with locked(database_file(app)):
        page = client.get(f"/e-mail/nouveau?selection={token}", headers=FR)

    assert page.status_code == 200
    assert "Écrire un e-mail" in page.text
    assert 'name="hide_recipients" value="1" checked' in page.text  # the default, unsaved
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(MailSettings)) == 0


def test_a_send_waits_out_a_short_lock_and_is_queued_once(
    app, client, sender, make_person, select_people, smtp_server, db
):
    app.config["OUTBOX_COMMIT_ATTEMPTS"] = 4
    token = select_people(sender, [make_person("student") for _ in range(2)])

    with locked(database_file(app), release_after=0.5):
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

    assert response.status_code == 303
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Mailing)) == 1
    assert len(smtp_server.received) == 1


def test_a_page_that_cannot_write_answers_with_the_french_busy_page(
    app, client, sender, make_person, make_cohort, make_course
):
    course = make_course(
        "Droit civil", teachers=[make_person("teacher")], cohorts=[make_cohort("L1")]
    )

    with locked(database_file(app)):
        page = client.post(f"/e-mail/cours/{course.id}", headers=FR)

    assert page.status_code == 503
    assert page.headers["Retry-After"]
    assert "Le serveur est occupé : réessayez dans quelques secondes." in page.text
    assert "Internal Server Error" not in page.text
