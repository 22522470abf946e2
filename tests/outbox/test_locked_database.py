"""The SQLite database held locked by another connection past the busy timeout loses nothing."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from hpmail.outbox.api import (
    Address,
    EmailSpec,
    OutboxBusy,
    Sender,
    dispatch,
    queue_and_dispatch,
    queue_mailing,
)
from hpmail.outbox.models import EmailState, Mailing, OutboundEmail
from hpmail.outbox.tasks import sweep
from tests.fixtures import backend
from tests.fixtures.worker import wait_until, worker_app_config

SENDER = Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")


@pytest.fixture
def app_config(tmp_path):
    # SQLite's database-wide write lock, in both runs (see ``backend.on_sqlite``).
    config = worker_app_config(tmp_path, SQLITE_BUSY_TIMEOUT_MS=300, OUTBOX_COMMIT_ATTEMPTS=3)
    return backend.on_sqlite(config)


@contextmanager
def locked(database_file, release_after: float | None = None):
    """Hold the database's write lock from another connection (released after some seconds)."""
    holder = sqlite3.connect(database_file, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    timer = None
    if release_after is not None:
        timer = threading.Timer(release_after, holder.rollback)
        timer.start()
    try:
        yield
    finally:
        if timer:
            timer.join()
        if holder.in_transaction:
            holder.rollback()
        holder.close()


def mailing_values(count=3):
    return {
        "author_id": None,
        "sender": SENDER,
        "subject": "Rentrée",
        "text_body": "Bonjour",
        "emails": [EmailSpec(to=[Address(f"eleve{i}@example.org")]) for i in range(count)],
    }


def database_file(app):
    return app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")


def counts(db):
    db.session.rollback()
    return (
        db.session.scalar(select(func.count()).select_from(Mailing)),
        db.session.scalar(select(func.count()).select_from(OutboundEmail)),
    )


def test_queueing_while_locked_says_so_in_french_and_writes_nothing(
    app, db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    with locked(database_file(app)), pytest.raises(OutboxBusy, match="Le serveur est occupé"):
        queue_and_dispatch(**mailing_values())
    assert counts(db) == (0, 0)


def test_queueing_waits_out_a_lock_released_in_time(app, db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    with locked(database_file(app), release_after=0.5):
        mailing, result = queue_and_dispatch(**mailing_values())
    assert result.queued == 3
    assert counts(db) == (1, 3)


@pytest.mark.worker
def test_worker_meeting_a_locked_database_loses_nothing(
    app, db, smtp_server, delivery_settings, worker
):
    delivery_settings(smtp_server)
    mailing = queue_mailing(**mailing_values(5))
    db.session.commit()
    started = worker().wait_ready()
    with locked(database_file(app)):
        dispatch(mailing)  # the queue is another file: the task is enqueued
        # The worker takes the task and cannot claim its rows past the busy timeout.
        wait_until(lambda: "database busy" in started.log_text(), timeout=20)
    assert len(smtp_server.received) == 0

    def delivered():
        db.session.rollback()
        sweep()
        sent = db.session.scalar(
            select(func.count())
            .select_from(OutboundEmail)
            .where(OutboundEmail.state == EmailState.SENT)
        )
        return sent == 5

    wait_until(delivered, timeout=30, every=0.1, message="e-mails lost after the lock")
    assert len(smtp_server.received) == 5


def test_queue_mailing_itself_reports_a_locked_database_in_french(
    app, db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    with locked(database_file(app)), pytest.raises(OutboxBusy, match="rien n'a été envoyé"):
        queue_mailing(**mailing_values())
    db.session.commit()  # the session was rolled back and stays usable
    assert counts(db) == (0, 0)


def test_sending_in_the_request_while_locked_keeps_the_emails_for_the_worker(
    app, db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server, delegate=False)
    mailing = queue_mailing(**mailing_values(2), kind="verification")
    db.session.commit()
    with locked(database_file(app)):
        result = dispatch(mailing)
    assert result.queued == 2
    assert result.errors == [
        "Le serveur est occupé : les e-mails sont conservés et partiront dans quelques instants."
    ]
    assert smtp_server.received == []
    db.session.rollback()
    states = set(db.session.scalars(select(OutboundEmail.state)))
    assert states == {EmailState.QUEUED}  # the sweeper hands them to a worker
