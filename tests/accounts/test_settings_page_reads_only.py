"""Opening "Paramétrer l'envoi d'e-mails" reads the user's settings: it writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hpmail.accounts.models import MailSettings
from tests.fixtures import backend
from tests.outbox.test_locked_database import database_file, locked


@pytest.fixture
def app_config(app_config):
    # SQLite's database-wide write lock, in both runs (see ``backend.on_sqlite``).
    return backend.on_sqlite({**app_config, "SQLITE_BUSY_TIMEOUT_MS": 200})


def test_the_settings_page_opens_while_the_database_is_locked_and_creates_no_row(
    app, client, login_as, db
):
    login_as("staff")  # never saved mail settings

    with locked(database_file(app)):
        page = client.get("/configuration/envoi", headers={"Accept-Language": "fr"})

    assert page.status_code == 200
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(MailSettings)) == 0
