"""Reliability with a real ``huey_consumer`` process sharing the test's database and queue files."""

from __future__ import annotations

import collections
import time

import pytest
from sqlalchemy import func, select, update

from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import EmailState, OutboundEmail, RecipientState
from hpmail.outbox.tasks import enqueue_delivery, sweep
from tests.fixtures.smtp import SlowDripServer, free_port
from tests.fixtures.worker import wait_until, worker_app_config

pytestmark = pytest.mark.worker

# The server's own address: the accounts' sender check lets it through in the worker.
SENDER = Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")


@pytest.fixture
def app_config(tmp_path):
    return worker_app_config(tmp_path)


def queue(db, count, prefix="eleve", author=None):
    mailing = queue_mailing(
        author_id=author.id if author else None,
        sender=SENDER,
        subject="Rentrée",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address(f"{prefix}{i}@example.org")]) for i in range(count)],
    )
    db.session.commit()
    return mailing


def count_in(db, *states):
    db.session.rollback()  # a new snapshot: the worker writes from another process
    return db.session.scalar(
        select(func.count()).select_from(OutboundEmail).where(OutboundEmail.state.in_(states))
    )


def emails_of(db, mailing) -> list[OutboundEmail]:
    db.session.rollback()
    return db.session.scalars(
        select(OutboundEmail).where(OutboundEmail.mailing_id == mailing.id)
    ).all()


def all_sent(db, total):
    return count_in(db, EmailState.SENT) == total


def message_ids(server) -> collections.Counter:
    return collections.Counter(r.message["Message-ID"] for r in server.received)


def sweep_until(db, condition, timeout=40, every=0.1):
    """Run the sweeper (as the periodic task would) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        db.session.rollback()
        sweep()
        time.sleep(every)
    pytest.fail("the outbox did not drain in time")


def test_smtp_down_then_back_every_email_is_delivered_exactly_once(
    db, make_smtp_server, make_transport, delivery_settings, worker
):
    port = free_port()
    delivery_settings(transport=make_transport(host="127.0.0.1", port=port, security="none"))
    dispatch(queue(db, 5))
    worker()

    wait_until(lambda: count_in(db, EmailState.DEFERRED) == 5, message="not deferred")
    server = make_smtp_server("none", port=port)
    sweep_until(db, lambda: all_sent(db, 5))

    ids = message_ids(server)
    assert len(ids) == 5 and set(ids.values()) == {1}
    stored = set(db.session.scalars(select(OutboundEmail.message_id)))
    assert set(ids) == stored


def test_451_then_acceptance_through_the_worker(db, smtp_server, delivery_settings, worker):
    delivery_settings(smtp_server)
    smtp_server.recorder.data_reply = "451 4.3.0 Greylisted, try later"
    dispatch(queue(db, 2))
    worker()
    wait_until(lambda: count_in(db, EmailState.DEFERRED) == 2, message="not deferred")
    smtp_server.recorder.data_reply = None
    sweep_until(db, lambda: all_sent(db, 2))
    assert len(smtp_server.received) == 2


def test_a_server_that_never_greets_does_not_block_the_worker(
    db, smtp_server, make_transport, delivery_settings, worker
):
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    try:
        transport = make_transport(
            host="127.0.0.1", port=silent.getsockname()[1], security="none", timeout_seconds=1
        )
        delivery_settings(transport=transport)
        dispatch(queue(db, 3))
        worker()
        wait_until(lambda: count_in(db, EmailState.DEFERRED) == 3, timeout=20, message="stuck")
        errors = set(db.session.scalars(select(OutboundEmail.last_error)))
        assert errors == {"Délai dépassé : augmentez le délai d'attente du serveur"}

        # The same worker goes on: the school fixes the server, the e-mails go out.
        transport.host, transport.port = smtp_server.host, smtp_server.port
        db.session.commit()
        sweep_until(db, lambda: all_sent(db, 3))
    finally:
        silent.close()
    assert len(smtp_server.received) == 3


def test_worker_killed_mid_batch_then_restarted_delivers_everything(
    db, smtp_server, delivery_settings, worker
):
    delivery_settings(smtp_server)
    smtp_server.recorder.data_delay = 0.05
    dispatch(queue(db, 40))
    first = worker()
    wait_until(lambda: len(smtp_server.received) >= 8, message="the worker never started")
    first.kill()
    assert count_in(db, EmailState.SENDING) > 0  # killed with claimed rows in flight

    worker()
    sweep_until(db, lambda: all_sent(db, 40))  # leases expire, the sweeper hands them out again

    ids = message_ids(smtp_server)
    stored = set(db.session.scalars(select(OutboundEmail.message_id)))
    assert set(ids) == stored  # every e-mail arrived, always with its own Message-ID
    twice = [message_id for message_id, seen in ids.items() if seen > 1]
    assert len(twice) <= 1  # only the one in flight when the worker died may arrive twice


def test_two_consumers_and_the_sweeper_deliver_500_emails_exactly_once(
    db, smtp_server, delivery_settings, worker
):
    delivery_settings(smtp_server)
    dispatch(queue(db, 500))
    worker()
    worker()
    sweep_until(db, lambda: all_sent(db, 500), timeout=120, every=0.3)

    ids = message_ids(smtp_server)
    assert len(ids) == 500
    assert set(ids.values()) == {1}
    assert len(smtp_server.received) == 500


def test_a_task_lost_before_any_worker_took_it_is_found_by_the_sweeper(
    db, smtp_server, delivery_settings, worker
):
    delivery_settings(smtp_server)
    queue(db, 4)  # committed, but the task never reached the queue (say, the web process died)
    queued = time.monotonic()
    worker().wait_ready()
    time.sleep(max(0, queued + 1.2 - time.monotonic()))  # older than DELIVERY_QUEUED_GRACE_SECONDS
    sweep_until(db, lambda: all_sent(db, 4))
    assert len(message_ids(smtp_server)) == 4


def poisoned_mailing(db, author, subject="Convocation", content_type="application/pdf"):
    """Queue a mailing written straight into the database, as no form would let it through."""
    from hpmail.outbox.attachments import store_attachment
    from hpmail.outbox.models import Mailing, MailingAttachment

    mailing = queue_mailing(
        author_id=author.id,
        sender=SENDER,
        subject="Convocation",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address("cible@example.org")])],
    )
    data = f"%PDF-1.4 {content_type}".encode()
    stored = store_attachment(data, "application/pdf")
    db.session.add(
        MailingAttachment(mailing=mailing, attachment=stored, filename="convocation.pdf")
    )
    db.session.flush()
    db.session.execute(update(Mailing).where(Mailing.id == mailing.id).values(subject=subject))
    db.session.execute(
        update(MailingAttachment)
        .where(MailingAttachment.mailing_id == mailing.id)
        .values(content_type=content_type)
    )
    db.session.commit()
    return mailing


def test_one_poison_email_in_a_batch_fails_alone_and_the_others_of_another_user_arrive(
    db, smtp_server, delivery_settings, worker, make_user
):
    delivery_settings(smtp_server)
    alice, mallory = make_user("staff"), make_user("staff")
    good_before = queue(db, 2, prefix="avant", author=alice)
    bad_subject = poisoned_mailing(db, mallory, subject="Convocation\x0bBcc: tous@example.org")
    bad_type = poisoned_mailing(db, mallory, content_type="application/pdf\x0bx-a: b")
    good_after = queue(db, 2, prefix="apres", author=alice)
    ids = sorted(db.session.scalars(select(OutboundEmail.id)))
    assert enqueue_delivery(ids) == 1  # one batch holding the good and the poison e-mails
    worker()

    # The sweeper runs meanwhile, as it would every minute: nothing may stay claimed for ever.
    sweep_until(db, lambda: count_in(db, EmailState.SENT, EmailState.FAILED) == 6, timeout=20)
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "apres0@example.org",
        "apres1@example.org",
        "avant0@example.org",
        "avant1@example.org",
    ]
    states = {
        mailing.id: {(e.state, e.last_error) for e in emails_of(db, mailing)}
        for mailing in (good_before, good_after)
    }
    assert states == {
        mailing.id: {(EmailState.SENT, None)} for mailing in (good_before, good_after)
    }
    for mailing in (bad_subject, bad_type):
        (email,) = emails_of(db, mailing)
        assert email.state == EmailState.FAILED
        assert email.last_error.startswith("L'e-mail n'a pas pu être construit")
        (recipient,) = email.recipients
        assert (recipient.state, recipient.reply) == (RecipientState.REFUSED, email.last_error)


@pytest.mark.parametrize("unknown_first", [True, False], ids=["550 first", "451 first"])
def test_one_recipient_refused_for_good_and_the_others_greylisted_each_keep_their_own_outcome(
    db, smtp_server, delivery_settings, worker, unknown_first
):
    delivery_settings(smtp_server)
    greylisted = [f"eleve{i}@example.org" for i in range(4)]
    smtp_server.refuse("parti@example.org", "550 5.1.1 User unknown")
    for address in greylisted:
        smtp_server.refuse(address, "451 4.7.1 Greylisted, try again later")
    addresses = (
        ["parti@example.org", *greylisted] if unknown_first else [*greylisted, "parti@example.org"]
    )
    mailing = queue_mailing(
        author_id=None,
        sender=SENDER,
        subject="Rentrée",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address(address) for address in addresses])],
    )
    db.session.commit()
    dispatch(mailing)
    worker()

    wait_until(lambda: count_in(db, EmailState.DEFERRED) == 1, message="not deferred")
    (email,) = emails_of(db, mailing)
    assert email.last_code == 451
    by_address = {r.address: (r.state, r.code, r.reply) for r in email.recipients}
    assert by_address.pop("parti@example.org") == (
        RecipientState.REFUSED,
        550,
        "5.1.1 User unknown",
    )
    assert set(by_address.values()) == {(RecipientState.PENDING, None, None)}

    for address in greylisted:  # the greylisting ends
        del smtp_server.recorder.refused_recipients[address]
    sweep_until(db, lambda: all_sent(db, 1))

    (received,) = smtp_server.received
    assert sorted(received.rcpt_tos) == greylisted  # the retry goes to them alone
    (email,) = emails_of(db, mailing)
    by_address = {r.address: (r.state, r.code) for r in email.recipients}
    assert by_address.pop("parti@example.org") == (RecipientState.REFUSED, 550)
    assert set(by_address.values()) == {(RecipientState.ACCEPTED, 250)}


def test_a_server_dripping_its_greeting_holds_the_worker_no_longer_than_the_timeout(
    db, make_transport, delivery_settings, worker
):
    server = SlowDripServer("greeting", lasting=40)
    try:
        delivery_settings(
            transport=make_transport(port=server.port, security="none", timeout_seconds=1)
        )
        worker().wait_ready()
        started = time.monotonic()
        dispatch(queue(db, 3))
        wait_until(lambda: count_in(db, EmailState.DEFERRED) == 3, timeout=30, message="held")
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert elapsed < 8  # the timeout of 1 s, and the worker's own pace (the drip lasts 40 s)
    errors = set(db.session.scalars(select(OutboundEmail.last_error)))
    assert errors == {"Délai dépassé : augmentez le délai d'attente du serveur"}
