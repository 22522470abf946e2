"""Worker heartbeats with real ``huey_consumer`` processes: a dead worker's e-mails are taken over
within seconds by a living one; a slow but living worker keeps its own; Redis flushed loses none."""

from __future__ import annotations

import collections
import time

import pytest
from sqlalchemy import func, select

from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import EmailState, OutboundEmail, WorkerProcess
from hpmail.outbox.tasks import sweep
from hpmail.queue import huey
from tests.fixtures.backend import needs_postgres
from tests.fixtures.worker import wait_until, worker_app_config

pytestmark = pytest.mark.worker

SENDER = Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")

# What an installation runs with: a beat every 5 s, dead after 15 s; the lease far away.
PRODUCTION_HEARTBEAT = {
    "HEARTBEAT_SECONDS": 5,
    "WORKER_DEAD_AFTER_SECONDS": None,
    "DELIVERY_LEASE_SECONDS": 300,
}


@pytest.fixture
def settings() -> dict:
    """The worker settings a test changes (parametrize ``settings`` to change them)."""
    return {}


@pytest.fixture
def app_config(tmp_path, settings):
    return worker_app_config(tmp_path, **settings)


def queue(db, count):
    mailing = queue_mailing(
        author_id=None,
        sender=SENDER,
        subject="Rentrée",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address(f"eleve{i}@example.org")]) for i in range(count)],
    )
    db.session.commit()
    return mailing


def count_in(db, *states, **where):
    db.session.rollback()  # a new snapshot: the workers write from other processes
    query = select(func.count()).select_from(OutboundEmail).where(OutboundEmail.state.in_(states))
    for column, value in where.items():
        query = query.where(getattr(OutboundEmail, column) == value)
    return db.session.scalar(query)


def message_ids(server) -> collections.Counter:
    return collections.Counter(r.message["Message-ID"] for r in server.received)


def holder_of_sending_rows(db) -> WorkerProcess | None:
    """Return the worker process whose id the claimed rows carry, once some are claimed."""
    db.session.rollback()
    return db.session.scalar(
        select(WorkerProcess)
        .join(OutboundEmail, OutboundEmail.claimed_by == WorkerProcess.id)
        .where(OutboundEmail.state == EmailState.SENDING)
        .limit(1)
    )


@pytest.mark.parametrize("settings", [PRODUCTION_HEARTBEAT], ids=["production heartbeat"])
def test_a_worker_killed_mid_batch_has_its_emails_sent_by_another_within_30_seconds(
    db, smtp_server, delivery_settings, worker
):
    delivery_settings(smtp_server)
    smtp_server.recorder.data_delay = 0.05
    workers = [worker().wait_ready(), worker().wait_ready()]
    mailing = queue(db, 40)
    dispatch(mailing)  # one task: the worker taking it claims all 40

    holder = wait_until(lambda: holder_of_sending_rows(db), message="nothing claimed")
    (victim,) = [w for w in workers if w.pid == holder.pid]
    wait_until(lambda: len(smtp_server.received) >= 8, message="the worker never sent")
    victim.kill()
    killed_at = time.monotonic()
    assert count_in(db, EmailState.SENDING, claimed_by=holder.id) > 0  # its rows, mid-batch

    # No sweeper runs here: only the living worker's heartbeat can give the rows back.
    wait_until(
        lambda: count_in(db, EmailState.SENDING, claimed_by=holder.id) == 0,
        timeout=40,
        message="the dead worker's e-mails were not released",
    )
    released_after = time.monotonic() - killed_at
    wait_until(lambda: count_in(db, EmailState.SENT) == 40, timeout=40, message="not all sent")
    all_sent_after = time.monotonic() - killed_at
    print(f"\nkilled: e-mails released after {released_after:.1f} s, sent {all_sent_after:.1f} s")
    assert all_sent_after <= 30

    ids = message_ids(smtp_server)
    assert set(ids) == {email.message_id for email in mailing.emails}
    twice = [message_id for message_id, seen in ids.items() if seen > 1]
    assert len(twice) <= 1  # only the one in flight at the kill, with its own Message-ID
    db.session.rollback()
    assert db.session.get(WorkerProcess, holder.id).seen_at  # the dead one's row stays a while


@pytest.mark.parametrize(
    "settings",
    [
        {
            "HEARTBEAT_SECONDS": 1,
            "WORKER_DEAD_AFTER_SECONDS": 5,
            "DELIVERY_LEASE_SECONDS": 120,
            "DELIVERY_BATCH_SIZE": 2,
        }
    ],
    ids=["dead after 5 s"],
)
def test_a_worker_waiting_10_s_for_each_answer_is_never_robbed_of_its_emails(
    db, smtp_server, make_transport, delivery_settings, worker, caplog
):
    delivery_settings(transport=make_transport(smtp_server, timeout_seconds=15))
    smtp_server.recorder.data_delay = 10  # each answer takes longer than a dead worker's silence
    workers = [worker().wait_ready(), worker().wait_ready()]
    mailing = queue(db, 4)
    dispatch(mailing)  # two tasks of two: each worker waits 20 s

    # The sweeper runs all along, as if every second: it must take nothing from living workers.
    deadline = time.monotonic() + 60
    while count_in(db, EmailState.SENT) < 4 and time.monotonic() < deadline:
        sweep()
        time.sleep(0.5)

    ids = message_ids(smtp_server)
    assert set(ids) == {email.message_id for email in mailing.emails}
    assert set(ids.values()) == {1}
    assert count_in(db, EmailState.SENT, attempts=1) == 4  # each claimed once
    released = "e-mails of stopped workers"
    assert released not in caplog.text  # not by the sweeper
    assert not [w for w in workers if released in w.log_text()]  # nor by the other worker


@needs_postgres  # the queue is on Redis in the PostgreSQL run only
def test_redis_flushed_mid_mailing_loses_no_email_and_sends_none_twice(
    app, db, smtp_server, delivery_settings, worker
):
    assert str(app.config["QUEUE_URL"]).startswith("redis")
    import redis

    delivery_settings(smtp_server)
    smtp_server.recorder.data_delay = 0.01
    mailing = queue(db, 300)
    dispatch(mailing)  # six tasks of 50 in Redis
    worker().wait_ready()
    wait_until(lambda: len(smtp_server.received) >= 20, message="the worker never sent")
    assert huey.pending_count() > 0  # tasks still waiting in Redis
    client = redis.Redis.from_url(app.config["QUEUE_URL"])
    client.flushdb()
    client.close()
    assert huey.pending_count() == 0
    assert count_in(db, EmailState.QUEUED) > 0  # their e-mails wait in the database

    # The database is the truth: the sweeper (every minute in production) enqueues them again.
    deadline = time.monotonic() + 90
    while count_in(db, EmailState.SENT) < 300 and time.monotonic() < deadline:
        sweep()
        time.sleep(0.5)

    ids = message_ids(smtp_server)
    assert set(ids) == {email.message_id for email in mailing.emails}
    assert set(ids.values()) == {1}
