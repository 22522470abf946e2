"""Sending limits per transport, counted in the database, with a clock the test controls."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from hpmail.outbox import clock
from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.limits import reserve
from hpmail.outbox.models import EmailState, OutboundEmail, SendCounter
from hpmail.outbox.tasks import sweep

pytestmark = pytest.mark.usefixtures("no_sender_checks")


@pytest.fixture
def frozen():
    """A delivery clock stopped at 10:00:05 that the test moves with ``frozen.now = …``."""

    class Frozen:
        now = datetime(2026, 3, 2, 10, 0, 5)

    clock.set_clock(lambda: Frozen.now)
    yield Frozen
    clock.set_clock(None)


def states(db):
    db.session.expire_all()
    return [e.state for e in db.session.scalars(select(OutboundEmail).order_by(OutboundEmail.id))]


def test_a_limit_of_30_per_minute_defers_the_rest_to_the_next_minute(
    db, smtp_server, make_transport, delivery_settings, frozen
):
    delivery_settings(transport=make_transport(smtp_server, per_minute=30))
    mailing = queue_mailing(
        author_id=None,
        sender=Sender("secretariat@lycee-demo.fr"),
        subject="Rentrée",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address(f"eleve{i}@example.org")]) for i in range(45)],
    )
    db.session.commit()

    dispatch(mailing)

    assert states(db).count(EmailState.SENT) == 30
    assert len(smtp_server.received) == 30
    held = [e for e in db.session.scalars(select(OutboundEmail)) if e.state == EmailState.DEFERRED]
    assert len(held) == 15
    assert {e.next_attempt_at for e in held} == {datetime(2026, 3, 2, 10, 1)}
    assert {e.attempts for e in held} == {0}  # held back by a limit is not a failed attempt
    assert "limite d'envoi" in held[0].last_error

    frozen.now = datetime(2026, 3, 2, 10, 0, 50)
    assert sweep() == 0
    frozen.now = datetime(2026, 3, 2, 10, 1, 0)
    assert sweep() == 15
    assert states(db) == [EmailState.SENT] * 45
    assert len(smtp_server.received) == 45
    assert len({r.message["Message-ID"] for r in smtp_server.received}) == 45


def test_counters_are_shared_and_never_pass_the_limit(db, make_transport, frozen):
    transport = make_transport(per_minute=30, per_day=50)
    assert reserve(transport, 20, frozen.now) == (20, None)
    assert reserve(transport, 20, frozen.now) == (10, datetime(2026, 3, 2, 10, 1))
    frozen.now += timedelta(minutes=1)
    assert reserve(transport, 40, frozen.now) == (20, datetime(2026, 3, 3))
    db.session.commit()
    counts = {(c.window, c.window_start): c.count for c in db.session.scalars(select(SendCounter))}
    assert counts == {
        ("minute", datetime(2026, 3, 2, 10, 0)): 30,
        ("minute", datetime(2026, 3, 2, 10, 1)): 20,
        ("day", datetime(2026, 3, 2)): 50,
    }


def test_workers_reserving_at_the_same_time_never_pass_the_limit(app, db, make_transport, frozen):
    import threading

    transport_id = make_transport(per_minute=30).id
    granted: list[int] = []
    start = threading.Barrier(4)

    def worker():
        from hpmail.outbox.models import Transport

        with app.app_context():
            transport = db.session.get(Transport, transport_id)
            start.wait()
            for _ in range(5):
                got, _reopens = reserve(transport, 3, frozen.now)
                db.session.commit()
                granted.append(got)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 30
