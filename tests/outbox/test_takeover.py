"""Which claimed rows the sweeper releases: those of dead workers, never a living one's."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from hpmail.core.time import utcnow
from hpmail.outbox import claim, heartbeat
from hpmail.outbox.api import Address, EmailSpec, Sender, queue_mailing
from hpmail.outbox.models import EmailState, OutboundEmail, RecipientState, WorkerProcess
from hpmail.outbox.tasks import sweep

SENDER = Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")


@pytest.fixture
def app_config(app_config):
    # The test's queue keeps its tasks (nothing runs them): each row's state is as released.
    return {**app_config, "HUEY_IMMEDIATE": False, "HEARTBEAT_SECONDS": 5}


def queued_mailing(db, make_transport, count: int):
    """Write a mailing of ``count`` queued e-mails, flushed, with no task for them."""
    mailing = queue_mailing(
        author_id=None,
        sender=SENDER,
        subject="Rentrée",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address(f"eleve{i}@example.org")]) for i in range(count)],
        transport=make_transport(),
    )
    db.session.flush()
    return mailing


def claimed_rows(db, make_transport, holders: list[str | None], created_ago=timedelta(0)):
    """Write one e-mail per holder, claimed by it (one attempt, a lease of 5 minutes)."""
    emails = list(queued_mailing(db, make_transport, len(holders)).emails)
    now = utcnow()
    for email, holder in zip(emails, holders, strict=True):
        email.state, email.claimed_by, email.attempts = EmailState.SENDING, holder, 1
        email.lease_until = now + timedelta(minutes=5)
        email.created_at = now - created_ago
    db.session.commit()
    # In the holders' order: read again after the commit, the mailing's e-mails come in the
    # database's order, which PostgreSQL changes when it updates rows.
    return [email.id for email in emails]


def worker_seen(db, worker_id: str, ago: float) -> None:
    db.session.add(
        WorkerProcess(id=worker_id, host="vm", pid=1, seen_at=utcnow() - timedelta(seconds=ago))
    )
    db.session.commit()


def states(db, ids) -> list[tuple]:
    db.session.expire_all()
    return [
        (e.state, e.claimed_by, e.attempts, e.lease_until)
        for e in db.session.scalars(
            select(OutboundEmail).where(OutboundEmail.id.in_(ids)).order_by(OutboundEmail.id)
        )
    ]


def test_the_sweeper_releases_the_rows_of_a_silent_or_unknown_worker_and_leaves_the_others(
    db, make_transport
):
    worker_seen(db, "vm:1:living", ago=4)  # one beat late: still alive
    worker_seen(db, "vm:2:dead", ago=16)  # silent for more than 3 heartbeats of 5 s
    living, dead, unknown, request = claimed_rows(
        db, make_transport, ["vm:1:living", "vm:2:dead", "vm:3:gone", None]
    )

    assert sweep() == 2

    assert states(db, [dead, unknown]) == [(EmailState.QUEUED, None, 0, None)] * 2
    kept = states(db, [living, request])
    assert [(state, holder, attempts) for state, holder, attempts, _lease in kept] == [
        (EmailState.SENDING, "vm:1:living", 1),
        (EmailState.SENDING, None, 1),  # sent in a request: its lease decides
    ]
    assert db.session.get(WorkerProcess, "vm:2:dead") is not None  # kept a while, for the admin


def test_a_dead_workers_email_past_the_time_for_retries_fails_instead_of_being_taken_again(
    db, make_transport
):
    (email_id,) = claimed_rows(db, make_transport, ["vm:2:dead"], created_ago=timedelta(days=4))

    assert sweep() == 0

    email = db.session.get(OutboundEmail, email_id)
    assert (email.state, email.claimed_by) == (EmailState.FAILED, None)
    assert email.last_error.startswith("L'envoi a été interrompu")
    assert [r.state for r in email.recipients] == [RecipientState.REFUSED]


def test_a_worker_whose_own_heartbeat_was_late_judges_no_one(db, make_transport, app):
    (email_id,) = claimed_rows(db, make_transport, ["vm:2:gone"])
    late = heartbeat._Process("vm:9:me", app, enqueue=list, steady=False)
    heartbeat._process = late
    try:
        assert heartbeat.take_over() == []
        late.steady, late.beaten_at = True, time.monotonic()
        assert heartbeat.take_over() == [email_id]
    finally:
        heartbeat._process = None


def test_a_worker_gives_back_only_the_rows_it_holds(db, make_transport):
    claim.set_this_worker("vm:1:me")
    try:
        mine, another = claimed_rows(db, make_transport, ["vm:1:me", "vm:2:other"])
        assert claim.give_back([mine, another], utcnow()) == [mine]
    finally:
        claim.set_this_worker(None)
    assert [row[:3] for row in states(db, [mine, another])] == [
        (EmailState.QUEUED, None, 0),
        (EmailState.SENDING, "vm:2:other", 1),
    ]


# Queued rows: lost, or waiting their turn behind a backlog.


def queued_rows(db, make_transport, count: int, ago: timedelta) -> list[int]:
    """Write ``count`` queued e-mails whose task was enqueued ``ago``, and no task for them."""
    emails = list(queued_mailing(db, make_transport, count).emails)
    for email in emails:
        email.next_attempt_at = utcnow() - ago
    db.session.commit()
    return [email.id for email in emails]


def test_queued_rows_behind_a_backlog_wait_and_are_enqueued_again_once_the_queue_is_empty(
    app, db, make_transport
):
    from hpmail.outbox.tasks import deliver
    from hpmail.queue import huey

    grace = timedelta(seconds=app.config["DELIVERY_QUEUED_GRACE_SECONDS"])
    ids = queued_rows(db, make_transport, 3, ago=grace * 2)
    deliver([10_000])  # another mailing's task, still waiting: the queue is not empty
    assert huey.pending_count() == 1

    assert sweep() == 0  # the rows may be waiting behind it: no second task for them
    assert huey.pending_count() == 1

    huey.flush()  # the queue empty, the rows still queued: their task was lost
    assert sweep() == 3
    assert huey.pending_count() == 1
    (task,) = huey.pending()
    assert sorted(task.args[0]) == ids
