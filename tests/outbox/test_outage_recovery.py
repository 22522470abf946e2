"""Mail flows again within a minute of the SMTP server's return, with real ``huey_consumer``
processes and a real aiosmtpd stopped for minutes of the engine's clock (moved in the workers
through ``CLOCK_OFFSET_FILE``); two workers probe a failing server once a minute between them."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from sqlalchemy import func, select

from hpmail.outbox import clock
from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import EmailState, OutboundEmail, Transport
from hpmail.outbox.tasks import due_email_ids, enqueue_delivery
from tests.fixtures.smtp import SmtpServer
from tests.fixtures.worker import wait_until, worker_app_config

pytestmark = pytest.mark.worker

SENDER = Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")

# What an installation runs with: retries from 1 minute doubling to 1 hour, a probe a minute.
PRODUCTION_DELAYS = {
    "DELIVERY_FIRST_RETRY_SECONDS": 60,
    "DELIVERY_MAX_RETRY_SECONDS": 3600,
    "TRANSPORT_PROBE_SECONDS": 60,
}


@pytest.fixture
def clock_file(tmp_path):
    return tmp_path / "clock-offset"


@pytest.fixture
def app_config(tmp_path, clock_file):
    return worker_app_config(tmp_path, CLOCK_OFFSET_FILE=str(clock_file), **PRODUCTION_DELAYS)


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


def count_in(db, *states):
    db.session.rollback()  # a new snapshot: the workers write from other processes
    return db.session.scalar(
        select(func.count()).select_from(OutboundEmail).where(OutboundEmail.state.in_(states))
    )


def settled(db) -> bool:
    """Tell whether no e-mail is queued or being sent: the workers did what they could."""
    return count_in(db, EmailState.QUEUED, EmailState.SENDING) == 0


def transport_of(db, mailing) -> Transport:
    db.session.rollback()
    return db.session.get(Transport, mailing.transport_id)


def the_minute_goes_by(db, clock_file, minute: int) -> None:
    """Move every process's clock to ``minute`` of the outage and run the sweeper's enqueue."""
    clock.write_offset(clock_file, minute * 60)
    enqueue_delivery(due_email_ids(clock.now()))  # what the periodic sweeper enqueues
    wait_until(
        lambda: settled(db) and not due_email_ids(clock.now()),
        timeout=30,
        message=f"minute {minute}: the worker did not try the due e-mails",
    )


def outage(db, make_smtp_server, delivery_settings, worker, clock_file, count, minutes):
    """Stop the server, send ``count`` e-mails, let ``minutes`` of the clock pass, restart it.

    Return the real seconds from the server's return to the last arrival.
    """
    server = SmtpServer().start()
    delivery_settings(server)
    port = server.port
    server.stop()  # the server goes down
    worker().wait_ready()
    mailing = queue(db, count)
    dispatch(mailing)
    wait_until(lambda: count_in(db, EmailState.DEFERRED) == count, timeout=60)
    transport = transport_of(db, mailing)
    assert transport.failing_since is not None and "connexion refusée" in transport.last_failure

    for minute in range(1, minutes):  # the workers' heartbeats probe it each minute
        the_minute_goes_by(db, clock_file, minute)
    assert transport_of(db, mailing).failing_since is not None
    assert count_in(db, EmailState.DEFERRED) == count

    back = make_smtp_server(port=port)  # the server returns on the same port
    returned = time.monotonic()
    clock.write_offset(clock_file, minutes * 60)  # at the outage's last minute; no sweep
    wait_until(
        lambda: len(back.received) >= count,
        timeout=180,
        every=0.2,
        message=f"{len(back.received)} of {count} e-mails arrived",
    )
    elapsed = time.monotonic() - returned
    wait_until(lambda: count_in(db, EmailState.SENT) == count, timeout=30)
    assert {r.message["Message-ID"] for r in back.received} == {
        email.message_id for email in mailing.emails
    }
    db.session.rollback()
    attempts = db.session.scalars(select(OutboundEmail.attempts)).all()
    assert set(attempts) == {1}  # the outage counted no attempt of theirs
    return elapsed


def test_after_a_10_minute_outage_every_deferred_email_arrives_within_60_s_of_the_return(
    db, make_smtp_server, delivery_settings, worker, clock_file
):
    elapsed = outage(
        db, make_smtp_server, delivery_settings, worker, clock_file, count=40, minutes=10
    )
    print(f"\n40 e-mails after a 10-minute outage: the last arrived {elapsed:.1f} s after")
    assert elapsed <= 60


class BusyServer:
    """A loopback SMTP server that is down in SMTP's words: each connection is greeted with
    ``421 Service not available`` and closed. It counts the connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                connection, _address = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with connection:
                connection.sendall(b"421 4.3.2 Service not available, closing channel\r\n")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def test_two_workers_send_one_probe_a_minute_to_a_failing_server(
    db, make_transport, delivery_settings, worker, clock_file
):
    server = BusyServer()
    try:
        delivery_settings(transport=make_transport(port=server.port, security="none"))
        worker().wait_ready()
        worker().wait_ready()
        mailing = queue(db, 5)
        dispatch(mailing)
        wait_until(lambda: count_in(db, EmailState.DEFERRED) == 5, timeout=60)
        transport = transport_of(db, mailing)
        assert "421" in transport.last_failure
        assert server.connections == 1  # the delivery that found it failing

        for minute in range(1, 4):
            clock.write_offset(clock_file, minute * 60)
            wait_until(
                lambda: transport_of(db, mailing).next_probe_at > clock.now(),
                timeout=10,
                message=f"minute {minute}: no probe",
            )
            time.sleep(3)  # three heartbeats of each worker: a second probe would come now
            assert server.connections == 1 + minute
    finally:
        server.close()
    assert count_in(db, EmailState.DEFERRED) == 5
