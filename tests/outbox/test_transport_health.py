"""A failing SMTP server is its transport's state: e-mails wait for it, one probe a minute, and
when it answers they all go at once; an e-mail's own refusals keep their own backoff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hpmail.outbox import clock
from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import EmailRecipient, EmailState, OutboundEmail, RecipientState
from hpmail.outbox.tasks import sweep
from tests.fixtures.smtp import free_port

pytestmark = pytest.mark.usefixtures("no_sender_checks")

SENDER = Sender("secretariat@lycee-demo.fr", "Secrétariat")
REFUSED = "Connexion au serveur impossible (connexion refusée)."


def send(db, *addresses, emails=None):
    mailing = queue_mailing(
        author_id=None,
        sender=SENDER,
        subject="Conseil de classe",
        text_body="Bonjour",
        emails=emails or [EmailSpec(to=[Address(a)]) for a in addresses],
    )
    db.session.commit()
    dispatch(mailing)
    return mailing


def emails(db):
    db.session.expire_all()
    return db.session.scalars(select(OutboundEmail).order_by(OutboundEmail.id)).all()


@pytest.fixture
def server_down(db, make_transport, delivery_settings):
    """Return the settings' transport, whose server is not listening (a port nobody has)."""
    transport = make_transport(host="127.0.0.1", port=free_port(), security="none")
    delivery_settings(transport=transport)
    return transport


def test_emails_queued_while_the_server_fails_wait_for_its_probe_then_all_go_at_once(
    db, server_down, make_smtp_server, later
):
    send(db, "a@example.org", "b@example.org")
    db.session.refresh(server_down)
    assert server_down.failing_since is not None and server_down.last_failure == REFUSED

    # The server is back, but nobody knows yet: new e-mails wait for the probe without
    # connecting (a server timing out would hold a worker for every batch).
    server = make_smtp_server("none", port=server_down.port)
    send(db, "c@example.org")
    assert [(e.state, e.attempts, e.waits_for_transport) for e in emails(db)] == [
        (EmailState.DEFERRED, 0, True)
    ] * 3
    assert server.received == []
    later(30)
    assert sweep() == 0  # the probe is not due

    later(31)
    assert sweep() == 3  # the probe found it back: every e-mail waiting for it, at once
    assert [(e.state, e.attempts, e.waits_for_transport) for e in emails(db)] == [
        (EmailState.SENT, 1, False)
    ] * 3
    assert sorted(r.rcpt_tos[0] for r in server.received) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
    db.session.refresh(server_down)
    assert (server_down.failing_since, server_down.last_failure) == (None, None)


def test_an_email_refused_451_for_one_recipient_keeps_its_own_backoff_while_the_server_is_fine(
    db, smtp_server, delivery_settings, later
):
    settings = delivery_settings(smtp_server)
    smtp_server.refuse("grey@example.org", "451 4.7.1 Greylisted, try again later")

    send(db, emails=[EmailSpec(to=[Address("a@example.org"), Address("grey@example.org")])])

    (email,) = emails(db)
    assert (email.state, email.attempts, email.waits_for_transport) == (
        EmailState.DEFERRED,
        1,
        False,
    )
    assert timedelta(seconds=55) < email.next_attempt_at - clock.now() <= timedelta(seconds=60)
    assert settings.transport.failing_since is None  # the server answered: it is fine

    later(61)
    sweep()
    (email,) = emails(db)
    assert (email.state, email.attempts) == (EmailState.DEFERRED, 2)
    assert email.next_attempt_at - clock.now() > timedelta(seconds=110)  # its own, doubled
    db.session.refresh(settings.transport)
    assert settings.transport.failing_since is None
    assert [r.rcpt_tos for r in smtp_server.received] == [["a@example.org"]]  # grey: refused


def test_a_refused_login_is_the_settings_problem_not_a_failing_server(
    db, make_smtp_server, make_transport, delivery_settings
):
    server = make_smtp_server("none", users={"secretariat": "s3cret"})
    transport = make_transport(server, username="secretariat", password="faux")
    delivery_settings(transport=transport)
    send(db, "a@example.org")
    (email,) = emails(db)
    # Kept with its own backoff (no probe would fix it, and probing could lock the account).
    assert (email.state, email.attempts, email.waits_for_transport) == (
        EmailState.DEFERRED,
        1,
        False,
    )
    db.session.refresh(transport)
    assert transport.failing_since is None


def test_an_email_waiting_for_its_server_still_fails_for_good_after_the_give_up_time(
    app, db, server_down, later
):
    send(db, "a@example.org")
    later(app.config["DELIVERY_GIVE_UP_AFTER_SECONDS"] - 60)
    sweep()  # probed every minute meanwhile: still failing, still waiting
    assert [(e.state, e.waits_for_transport) for e in emails(db)] == [(EmailState.DEFERRED, True)]

    later(61)
    sweep()

    (email,) = emails(db)
    assert (email.state, email.last_error, email.waits_for_transport) == (
        EmailState.FAILED,
        REFUSED,
        False,
    )
    recipient = db.session.scalar(select(EmailRecipient))
    assert (recipient.state, recipient.reply) == (RecipientState.REFUSED, REFUSED)


def test_an_email_left_waiting_for_a_server_found_back_meanwhile_is_sent_by_the_sweeper(
    db, smtp_server, delivery_settings
):
    # A worker may record its e-mails as waiting just after another one found the server back.
    delivery_settings(smtp_server)
    smtp_server.recorder.data_reply = "452 4.3.1 Insufficient storage"
    send(db, "a@example.org")
    (email,) = emails(db)
    email.waits_for_transport = True
    email.next_attempt_at = clock.now() + timedelta(days=3)
    db.session.commit()
    smtp_server.recorder.data_reply = None

    assert sweep() == 1
    assert [e.state for e in emails(db)] == [EmailState.SENT]
