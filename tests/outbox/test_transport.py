"""Delivery against real SMTP servers: TLS, AUTH, refusals, timeouts, retries (in one process)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from hpmail.outbox import clock
from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import (
    EmailRecipient,
    EmailState,
    OutboundEmail,
    RecipientState,
    Transport,
)
from hpmail.outbox.smtp import DeadlineSMTP, connect
from hpmail.outbox.tasks import sweep
from tests.fixtures.smtp import SlowDripServer, free_port

pytestmark = pytest.mark.usefixtures("no_sender_checks")

SENDER = Sender("secretariat@lycee-demo.fr", "Secrétariat")


def send(db, *addresses, emails=None):
    mailing = queue_mailing(
        author_id=None,
        sender=SENDER,
        subject="Conseil de classe",
        text_body="Bonjour",
        emails=emails or [EmailSpec(to=[Address(a)]) for a in addresses],
    )
    db.session.commit()
    return dispatch(mailing)


def emails(db):
    db.session.expire_all()
    return db.session.scalars(select(OutboundEmail).order_by(OutboundEmail.id)).all()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_delivers_over_tls_with_auth_trusting_the_school_ca(
    db, make_smtp_server, make_transport, delivery_settings, test_ca, security
):
    server = make_smtp_server(security, users={"secretariat": "s3cret"})
    transport = make_transport(
        server, username="secretariat", password="s3cret", ca_certificates=test_ca.cert_pem.decode()
    )
    delivery_settings(transport=transport)

    send(db, "eleve@example.org")

    assert [(e.state, e.last_error) for e in emails(db)] == [(EmailState.SENT, None)]
    assert [(r.rcpt_tos, r.login) for r in server.received] == [
        (["eleve@example.org"], "secretariat")
    ]


def test_plain_smtp_with_auth(db, make_smtp_server, make_transport, delivery_settings):
    server = make_smtp_server("none", users={"secretariat": "s3cret"})
    delivery_settings(transport=make_transport(server, username="secretariat", password="s3cret"))
    send(db, "eleve@example.org")
    assert [received.login for received in server.received] == ["secretariat"]


def test_wrong_password_keeps_the_emails_with_the_servers_words(
    db, make_smtp_server, make_transport, delivery_settings, test_ca
):
    server = make_smtp_server("starttls", users={"secretariat": "s3cret"})
    transport = make_transport(
        server, username="secretariat", password="faux", ca_certificates=test_ca.cert_pem.decode()
    )
    delivery_settings(transport=transport)
    send(db, "eleve@example.org")
    (email,) = emails(db)
    assert email.state == EmailState.DEFERRED  # kept until the admin fixes the password
    assert "identifiant ou le mot de passe" in email.last_error and "535" in email.last_error
    assert server.received == []


def test_an_untrusted_certificate_is_refused_with_a_clear_reason(
    db, make_smtp_server, make_transport, delivery_settings
):
    server = make_smtp_server("starttls")
    delivery_settings(transport=make_transport(server))  # no CA file: the test CA is unknown

    with pytest.raises(Exception, match="certificate verify failed"):
        connect(make_transport(server))
    send(db, "eleve@example.org")

    (email,) = emails(db)
    assert email.state == EmailState.DEFERRED
    assert "certificat du serveur n'est pas reconnu" in email.last_error
    assert server.received == []


def test_smtp_down_defers_then_every_email_is_delivered_once_when_it_is_back(
    db, make_smtp_server, make_transport, delivery_settings, later
):
    port = free_port()
    delivery_settings(transport=make_transport(host="127.0.0.1", port=port, security="none"))

    send(db, "a@example.org", "b@example.org", "c@example.org")

    assert {e.state for e in emails(db)} == {EmailState.DEFERRED}
    assert all("Connexion au serveur impossible" in e.last_error for e in emails(db))
    # The server's failure is the transport's: the e-mails wait for it, no attempt counted.
    assert all(e.attempts == 0 and e.waits_for_transport for e in emails(db))
    transport = db.session.get(Transport, emails(db)[0].mailing.transport_id)
    assert "Connexion au serveur impossible" in transport.last_failure
    next_probe = transport.next_probe_at - clock.now()
    assert timedelta(seconds=55) < next_probe <= timedelta(seconds=60)
    message_ids = {e.message_id for e in emails(db)}

    later(30)
    assert sweep() == 0  # the probe is not due yet
    server = make_smtp_server("none", port=port)
    later(31)
    assert sweep() == 3  # the probe found the server back: every e-mail due at once

    assert {e.state for e in emails(db)} == {EmailState.SENT}
    assert sorted(r.rcpt_tos[0] for r in server.received) == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
    assert {r.message["Message-ID"] for r in server.received} == message_ids
    later(3600)
    assert sweep() == 0


def test_a_451_is_retried_with_a_growing_delay_then_accepted(
    db, smtp_server, delivery_settings, later
):
    delivery_settings(smtp_server)
    smtp_server.recorder.data_reply = "451 4.3.0 Try again later"

    send(db, "a@example.org")
    (email,) = emails(db)
    assert (email.state, email.last_code) == (EmailState.DEFERRED, 451)
    assert "4.3.0 Try again later" in email.last_error
    later(61)
    sweep()
    (email,) = emails(db)
    assert (email.state, email.attempts) == (EmailState.DEFERRED, 2)
    assert email.next_attempt_at - clock.now() > timedelta(seconds=110)  # doubled

    smtp_server.recorder.data_reply = None
    later(121)
    sweep()
    (email,) = emails(db)
    assert (email.state, email.attempts) == (EmailState.SENT, 3)
    assert len(smtp_server.received) == 1


def test_retries_give_up_after_the_configured_time(db, smtp_server, delivery_settings, later, app):
    delivery_settings(smtp_server)
    smtp_server.recorder.data_reply = "421 4.7.0 Busy"
    send(db, "a@example.org")
    later(app.config["DELIVERY_GIVE_UP_AFTER_SECONDS"] + 1)
    sweep()
    (email,) = emails(db)
    assert email.state == EmailState.FAILED
    assert "4.7.0 Busy" in email.last_error


def test_a_550_fails_at_once_with_the_servers_text(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    smtp_server.recorder.data_reply = "550 5.7.1 Message refused by policy"
    send(db, "a@example.org")
    (email,) = emails(db)
    assert (email.state, email.last_code) == (EmailState.FAILED, 550)
    assert email.last_error == "Refusé par le serveur (550) : 5.7.1 Message refused by policy"
    (recipient,) = email.recipients
    assert (recipient.state, recipient.code) == (RecipientState.REFUSED, 550)
    assert recipient.reply == email.last_error


def test_one_recipient_of_three_refused_the_two_others_are_delivered(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    smtp_server.refuse("parti@example.org", "550 5.1.1 No such user")
    send(
        db,
        emails=[
            EmailSpec(
                to=[Address("a@example.org"), Address("parti@example.org")],
                cc=[Address("b@example.org")],
            )
        ],
    )

    (email,) = emails(db)
    assert email.state == EmailState.SENT
    assert sorted(smtp_server.received[0].rcpt_tos) == ["a@example.org", "b@example.org"]
    recipients = db.session.scalars(select(EmailRecipient).order_by(EmailRecipient.id)).all()
    assert [(r.address, r.state, r.code) for r in recipients] == [
        ("a@example.org", RecipientState.ACCEPTED, 250),
        ("parti@example.org", RecipientState.REFUSED, 550),
        ("b@example.org", RecipientState.ACCEPTED, 250),
    ]
    assert recipients[1].reply == "5.1.1 No such user"


def test_every_recipient_refused_fails_the_email(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    smtp_server.refuse("parti@example.org", "550 5.1.1 No such user")
    send(db, "parti@example.org", "a@example.org")
    first, second = emails(db)
    assert first.state == EmailState.FAILED and "5.1.1 No such user" in first.last_error
    assert first.recipients[0].state == RecipientState.REFUSED
    assert second.state == EmailState.SENT  # the connection went on for the next e-mail


def test_a_server_that_never_greets_times_out_and_is_deferred(
    db, make_transport, delivery_settings
):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # the kernel accepts the connection; nobody ever says 220
    try:
        host, port = silent.getsockname()
        transport = make_transport(host=host, port=port, security="none", timeout_seconds=1)
        delivery_settings(transport=transport)
        send(db, "a@example.org", "b@example.org")
    finally:
        silent.close()
    assert [e.state for e in emails(db)] == [EmailState.DEFERRED, EmailState.DEFERRED]
    assert emails(db)[0].last_error == "Délai dépassé : augmentez le délai d'attente du serveur"


def test_not_delegated_timeout_is_reported_to_the_user(db, make_transport, delivery_settings):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    try:
        host, port = silent.getsockname()
        transport = make_transport(host=host, port=port, security="none", timeout_seconds=1)
        delivery_settings(transport=transport, delegate=False)
        mailing = queue_mailing(
            author_id=None,
            sender=SENDER,
            subject="Code",
            text_body="123456",
            emails=[EmailSpec(to=[Address("a@example.org")])],
            kind="verification",
        )
        db.session.commit()
        result = dispatch(mailing)
    finally:
        silent.close()
    assert (result.sent, result.failed) == (0, 1)
    assert result.errors == ["Délai dépassé : augmentez le délai d'attente du serveur"]


def test_a_connection_dropped_mid_batch_is_reopened_for_the_rest(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    smtp_server.recorder.drop_on.add("b@example.org")

    send(db, "a@example.org", "b@example.org", "c@example.org")

    first, dropped, third = emails(db)
    assert (first.state, third.state) == (EmailState.SENT, EmailState.SENT)
    assert third.attempts == 1  # sent on the new connection, not deferred
    assert dropped.state == EmailState.DEFERRED
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == ["a@example.org", "c@example.org"]


def test_a_long_batch_keeps_its_lease_so_no_one_else_takes_its_emails(
    app, db, smtp_server, delivery_settings
):
    from hpmail.outbox.claim import claim

    # The batch outlasts its lease, renewed after each e-mail: with 0.4 s an e-mail and a 2 s
    # lease, a loaded machine (tests run one per core) still renews well before it ends.
    app.config["DELIVERY_LEASE_SECONDS"] = 2
    delivery_settings(smtp_server)
    smtp_server.recorder.data_delay = 0.4
    taken_by_another: list[int] = []
    stop = threading.Event()

    def another_worker():
        with app.app_context():
            while not stop.is_set():
                # Rows the batch has claimed (a queued row may fairly go to whoever is first).
                claimed = select(OutboundEmail.id).where(OutboundEmail.state != EmailState.QUEUED)
                taken_by_another.extend(claim(list(db.session.scalars(claimed)), clock.now()))
                time.sleep(0.1)

    thief = threading.Thread(target=another_worker)
    thief.start()
    try:
        send(db, *[f"eleve{i}@example.org" for i in range(8)])  # about 3.5 s, lease 2 s
    finally:
        stop.set()
        thief.join()
    assert taken_by_another == []
    assert [e.state for e in emails(db)] == [EmailState.SENT] * 8
    assert len(smtp_server.received) == 8


def test_a_recipient_refused_with_a_4xx_alone_gets_the_same_message_later(
    db, smtp_server, delivery_settings, later
):
    delivery_settings(smtp_server)
    smtp_server.refuse("plein@example.org", "452 4.2.2 Mailbox full")
    send(db, emails=[EmailSpec(to=[Address("a@example.org"), Address("plein@example.org")])])

    (email,) = emails(db)
    assert (email.state, email.last_code) == (EmailState.DEFERRED, 452)
    assert [r.state for r in email.recipients] == [RecipientState.ACCEPTED, RecipientState.PENDING]
    assert smtp_server.received[0].rcpt_tos == ["a@example.org"]

    smtp_server.recorder.refused_recipients.clear()
    later(61)
    sweep()

    (email,) = emails(db)
    assert email.state == EmailState.SENT
    assert [r.state for r in email.recipients] == [RecipientState.ACCEPTED] * 2
    first, second = smtp_server.received
    assert second.rcpt_tos == ["plein@example.org"]
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert str(second.message["To"]) == "a@example.org, plein@example.org"


def test_implicit_tls_against_a_plain_server_is_a_tls_failure_and_kept(
    db, smtp_server, make_transport, delivery_settings
):
    delivery_settings(transport=make_transport(smtp_server, security="tls"))
    send(db, "a@example.org")
    (email,) = emails(db)
    assert email.state == EmailState.DEFERRED
    assert email.last_error.startswith("La négociation TLS a échoué")


def test_retry_delay_doubles_from_the_first_and_stops_at_the_longest(app):
    from hpmail.outbox.retry import retry_delay

    delays = [retry_delay(n).total_seconds() for n in range(1, 9)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_421_closing_the_connection_is_retried_and_the_next_email_goes_on_a_new_one(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    smtp_server.refuse("b@example.org", "421 4.3.2 Service shutting down")

    send(db, "a@example.org", "b@example.org", "c@example.org")

    first, refused, third = emails(db)
    assert (refused.state, refused.last_code) == (EmailState.DEFERRED, 421)
    assert (first.state, third.state, third.attempts) == (EmailState.SENT, EmailState.SENT, 1)


def test_a_non_ascii_address_fails_alone_and_the_batch_goes_on(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    send(db, "a@example.org", "eleve@école.fr", "c@example.org")  # IDN, not punycode
    first, accented, third = emails(db)
    assert (first.state, third.state, third.attempts) == (EmailState.SENT, EmailState.SENT, 1)
    assert accented.state == EmailState.FAILED
    assert "caractères accentués" in accented.last_error
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == ["a@example.org", "c@example.org"]


def test_an_error_outside_any_one_email_defers_the_batch_then_fails_it_with_the_reason(
    app, db, smtp_server, make_transport, delivery_settings, later
):
    from hpmail.outbox.tasks import deliver

    delivery_settings(transport=make_transport(smtp_server, per_minute=100))
    db.session.execute(text("DROP TABLE send_counter"))  # the sending limits cannot be counted
    db.session.commit()

    send(db, "a@example.org", "b@example.org")

    # Not left claimed (taken again and again when the lease ends): retried with the delay.
    assert [(e.state, e.attempts) for e in emails(db)] == [(EmailState.DEFERRED, 1)] * 2
    # The database's own words, on one line (PostgreSQL's next lines quote the statement).
    missing = {
        "sqlite": "no such table: send_counter",
        "postgresql": 'relation "send_counter" does not exist',
    }[db.engine.dialect.name]
    reason = f"Erreur inattendue : {missing}"
    assert {e.last_error for e in emails(db)} == {reason}

    later(app.config["DELIVERY_GIVE_UP_AFTER_SECONDS"] + 1)
    deliver([e.id for e in emails(db)])

    assert [(e.state, e.attempts, e.last_error) for e in emails(db)] == [
        (EmailState.FAILED, 2, reason)
    ] * 2
    recipients = db.session.scalars(select(EmailRecipient)).all()
    assert {(r.state, r.reply) for r in recipients} == {(RecipientState.REFUSED, reason)}
    assert smtp_server.received == []


@pytest.mark.parametrize(
    ("stage", "attempts", "waits_for_transport"),
    # Before a session is open the server is failing, for every e-mail: the transport's state.
    [("greeting", 0, True), ("EHLO", 0, True), ("DATA", 1, False)],
)
def test_a_server_dripping_its_answer_is_given_up_at_the_deadline_and_the_email_deferred(
    db, make_transport, delivery_settings, stage, attempts, waits_for_transport
):
    server = SlowDripServer(stage)
    try:
        transport = make_transport(port=server.port, security="none", timeout_seconds=1)
        delivery_settings(transport=transport)
        started = time.monotonic()
        send(db, "a@example.org")
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert elapsed < 4  # one second of timeout (the drip would have held it 12 s)
    (email,) = emails(db)
    assert (email.state, email.attempts) == (EmailState.DEFERRED, attempts)
    assert email.waits_for_transport is waits_for_transport
    assert email.last_error == "Délai dépassé : augmentez le délai d'attente du serveur"


def test_a_large_message_is_given_time_in_proportion_to_its_size(
    db, smtp_server, make_transport, delivery_settings
):
    delivery_settings(transport=make_transport(smtp_server, timeout_seconds=1))
    smtp_server.recorder.data_delay = 2  # the server scans 200 kB for 2 s before it answers
    mailing = queue_mailing(
        author_id=None,
        sender=SENDER,
        subject="Dossier",
        text_body="Bonjour\n" + "x" * 200_000,
        emails=[EmailSpec(to=[Address("a@example.org")])],
    )
    db.session.commit()
    dispatch(mailing)
    (email,) = emails(db)
    assert (email.state, email.last_error) == (EmailState.SENT, None)
    assert len(smtp_server.received) == 1


def test_an_email_whose_delivery_was_interrupted_after_the_retry_time_fails_with_the_reason(
    app, db, smtp_server, delivery_settings, later
):
    from hpmail.outbox.claim import claim

    delivery_settings(smtp_server)
    mailing = queue_mailing(
        author_id=None,
        sender=SENDER,
        subject="Conseil de classe",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address("a@example.org")])],
    )
    db.session.commit()
    # A worker claimed it and died while sending (killed, out of memory): nothing recorded.
    assert len(claim([email.id for email in mailing.emails], clock.now())) == 1

    later(app.config["DELIVERY_GIVE_UP_AFTER_SECONDS"] + 1)
    sweep()

    (email,) = emails(db)
    reason = (
        "L'envoi a été interrompu et le délai des nouveaux essais est écoulé : e-mail non envoyé."
    )
    assert (email.state, email.lease_until, email.last_error) == (EmailState.FAILED, None, reason)
    assert [(r.state, r.reply) for r in email.recipients] == [(RecipientState.REFUSED, reason)]
    assert smtp_server.received == []
    later(3600)
    assert sweep() == 0


def test_a_connection_to_checked_addresses_never_looks_the_name_up_again(make_smtp_server):
    server = make_smtp_server("none")
    smtp = DeadlineSMTP("smtp.invalid", server.port, timeout=5, addresses=["127.0.0.1"])
    try:
        code, _text = smtp.ehlo()
    finally:
        smtp.quit()
    assert code == 250


def test_tls_to_a_checked_address_still_verifies_the_servers_name(make_smtp_server, test_ca):
    server = make_smtp_server("starttls")
    context = ssl.create_default_context(cadata=test_ca.cert_pem.decode())
    trusted = DeadlineSMTP("localhost", server.port, timeout=5, addresses=["127.0.0.1"])
    trusted.starttls(context=context)
    trusted.quit()
    other = DeadlineSMTP("mail.example.org", server.port, timeout=5, addresses=["127.0.0.1"])
    with pytest.raises(ssl.SSLCertVerificationError):
        other.starttls(context=context)
    other.close()
