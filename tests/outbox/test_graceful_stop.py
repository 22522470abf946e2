"""Stopping a real ``huey_consumer`` as systemd does (SIGTERM): it ends the e-mail in flight,
gives the others back for another worker, and exits within seconds."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import EmailState, OutboundEmail, WorkerProcess
from tests.fixtures.worker import wait_until, worker_app_config

pytestmark = pytest.mark.worker

SENDER = Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")


@pytest.fixture
def app_config(tmp_path):
    # A lease far longer than the test: only the e-mails given back can explain their delivery.
    return worker_app_config(tmp_path, DELIVERY_LEASE_SECONDS=300)


def emails(db) -> list[OutboundEmail]:
    db.session.rollback()  # a new snapshot: the worker writes from another process
    return db.session.scalars(select(OutboundEmail).order_by(OutboundEmail.id)).all()


def test_sigterm_mid_batch_ends_the_email_in_flight_and_another_worker_sends_the_rest_at_once(
    db, smtp_server, delivery_settings, worker
):
    delivery_settings(smtp_server)
    smtp_server.recorder.data_delay = 1  # each e-mail is a second in flight
    mailing = queue_mailing(
        author_id=None,
        sender=SENDER,
        subject="Rentrée",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address(f"eleve{i}@example.org")]) for i in range(10)],
    )
    db.session.commit()
    first = worker().wait_ready()
    dispatch(mailing)
    wait_until(lambda: len(smtp_server.received) >= 2, message="the worker never sent")

    first.terminate()
    asked_at = time.monotonic()
    first.process.wait(30)
    stopped_after = time.monotonic() - asked_at
    print(f"\nSIGTERM: the worker exited after {stopped_after:.1f} s")
    assert stopped_after < 10
    assert "Received SIGTERM" in first.log_text()

    arrived = {r.message["Message-ID"] for r in smtp_server.received}
    assert 2 <= len(arrived) < 10
    rows = emails(db)
    sent = {e.message_id for e in rows if e.state == EmailState.SENT}
    assert sent == arrived  # the e-mail in flight was sent and recorded, none left half-done
    given_back = [e for e in rows if e.message_id not in arrived]
    assert {(e.state, e.lease_until, e.claimed_by, e.attempts) for e in given_back} == {
        (EmailState.QUEUED, None, None, 0)
    }
    assert db.session.scalar(select(func.count()).select_from(WorkerProcess)) == 0

    # Another worker starts: it finds the task the stopping one enqueued, with no sweeper. Its
    # e-mails need not be a second in flight each: only the stop had to land mid-e-mail.
    smtp_server.recorder.data_delay = 0
    started_at = time.monotonic()
    worker()
    wait_until(
        lambda: all(e.state == EmailState.SENT for e in emails(db)),
        timeout=60,
        message="the e-mails given back were not sent",
    )
    assert time.monotonic() - started_at < 60  # far before the lease of 300 s
    received = [r.message["Message-ID"] for r in smtp_server.received]
    assert sorted(received) == sorted(e.message_id for e in rows)  # each exactly once
