"""Test-send diagnostics against real SMTP servers: each failure stops at its step, in French."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from hpmail.delivery.diagnostics import STEPS, diagnose
from hpmail.outbox.models import Transport
from hpmail.outbox.secrets import encrypt_secret
from tests.fixtures.smtp import free_port

SENDER = "ne-pas-repondre@lycee-demo.fr"
ADMIN = "agnes.martin@lycee-demo.fr"


def transport_to(server=None, **fields) -> Transport:
    """A transport (not saved: the diagnostics need only its values)."""
    values = {"host": "127.0.0.1", "port": 25, "security": "none", "timeout_seconds": 5}
    if server is not None:
        values.update(host=server.host, port=server.port, security=server.security)
    password = fields.pop("password", None)
    if password is not None:
        values["secret_encrypted"] = encrypt_secret(password)
    values.update(fields)
    return Transport(**values)


def statuses(diagnosis) -> dict[str, str]:
    return {step.key: step.status for step in diagnosis.steps}


def step(diagnosis, key):
    return next(s for s in diagnosis.steps if s.key == key)


@pytest.fixture
def silent_server():
    """A server that accepts TCP connections and never says a word (no SMTP greeting)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    for connection in accepted:
        connection.close()
    listener.close()


def test_plain_server_receives_the_test_email_and_every_step_is_ok(app, smtp_server):
    diagnosis = diagnose(transport_to(smtp_server), SENDER, ADMIN, "Lycée Démo")
    assert diagnosis.succeeded
    assert [s.key for s in diagnosis.steps] == list(STEPS)
    assert statuses(diagnosis)["tls"] == "skipped"
    assert statuses(diagnosis)["auth"] == "skipped"
    assert step(diagnosis, "data").detail.startswith("250")
    [received] = smtp_server.received
    assert received.rcpt_tos == [ADMIN]
    assert received.mail_from == SENDER
    assert received.message["Subject"] == "hpmail : essai d'envoi d'e-mails"
    assert "Lycée Démo" in received.message["From"]
    assert "l'envoi fonctionne" in received.message.get_content()


@pytest.mark.parametrize(
    ("language", "subject"),
    [("fr", "hpmail : essai d'envoi d'e-mails"), ("en", "hpmail: test of e-mail sending")],
)
def test_the_test_email_is_marked_generated_and_says_the_language_of_the_admin_s_page(
    client, login_as, delivery_settings, smtp_server, language, subject
):
    login_as("admin", email=ADMIN)
    delivery_settings(smtp_server)

    client.post("/serveur/parametres-envoi/essai", headers={"Accept-Language": language})

    [received] = smtp_server.received
    assert received.message["Subject"] == subject
    assert received.message["Content-Language"] == language
    assert received.message["Auto-Submitted"] == "auto-generated"


def test_starttls_with_the_schools_ca_and_a_login_delivers(app, make_smtp_server, test_ca):
    server = make_smtp_server("starttls", users={"secretariat": "s3cret"})
    transport = transport_to(
        server, username="secretariat", password="s3cret", ca_certificates=test_ca.cert_pem.decode()
    )
    diagnosis = diagnose(transport, SENDER, ADMIN)
    assert diagnosis.succeeded, diagnosis.steps
    assert statuses(diagnosis)["tls"] == "ok"
    assert "certificat vérifié" in step(diagnosis, "tls").detail
    assert step(diagnosis, "auth").detail.startswith("235")
    assert len(server.received) == 1


def test_implicit_tls_delivers(app, make_smtp_server, test_ca):
    server = make_smtp_server("tls")
    diagnosis = diagnose(
        transport_to(server, ca_certificates=test_ca.cert_pem.decode()), SENDER, ADMIN
    )
    assert diagnosis.succeeded, diagnosis.steps
    assert "TLSv1" in step(diagnosis, "tls").detail
    assert len(server.received) == 1


def test_untrusted_certificate_stops_at_tls_and_points_to_the_ca_file(app, make_smtp_server):
    server = make_smtp_server("starttls")
    diagnosis = diagnose(transport_to(server), SENDER, ADMIN)
    assert not diagnosis.succeeded
    failed = diagnosis.failed_step
    assert failed.key == "tls"
    assert "certificate verify failed" in failed.detail
    assert "déposez son certificat dans « Autorité de certification »" in failed.advice
    assert statuses(diagnosis)["auth"] == "not_tried"
    assert server.received == []


def test_tls_against_a_plain_server_suggests_changing_the_encryption(app, smtp_server):
    diagnosis = diagnose(transport_to(smtp_server, security="tls"), SENDER, ADMIN)
    failed = diagnosis.failed_step
    assert failed.key == "tls"
    assert "Changez le « Chiffrement »" in failed.advice
    assert "STARTTLS" in failed.advice
    assert statuses(diagnosis)["connect"] == "ok"


def test_starttls_against_an_implicit_tls_server_times_out_and_suggests_tls(
    app, make_smtp_server, test_ca
):
    server = make_smtp_server("tls")
    transport = transport_to(
        server, security="starttls", timeout_seconds=1, ca_certificates=test_ca.cert_pem.decode()
    )
    started = time.monotonic()
    diagnosis = diagnose(transport, SENDER, ADMIN)
    assert time.monotonic() - started < 5
    failed = diagnosis.failed_step
    assert failed.key == "connect"
    assert "TLS" in failed.advice


def test_server_that_never_greets_times_out_and_suggests_raising_the_timeout(app, silent_server):
    transport = transport_to(port=silent_server, timeout_seconds=1)
    started = time.monotonic()
    diagnosis = diagnose(transport, SENDER, ADMIN)
    assert time.monotonic() - started < 5
    failed = diagnosis.failed_step
    assert failed.key == "connect"
    assert failed.detail == "Pas de réponse."
    assert "Augmentez le « Délai d'attente (secondes) »" in failed.advice
    assert "1 s" in failed.advice


def test_nothing_listening_says_to_check_host_and_port(app):
    diagnosis = diagnose(transport_to(port=free_port()), SENDER, ADMIN)
    failed = diagnosis.failed_step
    assert failed.key == "connect"
    assert "Rien ne répond sur le port" in failed.advice
    assert [s.status for s in diagnosis.steps[2:]] == ["not_tried"] * 5


def test_unknown_host_name_stops_at_name_lookup(app):
    diagnosis = diagnose(transport_to(host="nulle-part.invalid"), SENDER, ADMIN)
    failed = diagnosis.failed_step
    assert failed.key == "resolve"
    assert "« nulle-part.invalid » est inconnu" in failed.advice


def test_refused_credentials_stop_at_authentication(app, make_smtp_server, test_ca):
    server = make_smtp_server("starttls", users={"secretariat": "s3cret"})
    transport = transport_to(
        server, username="secretariat", password="nope", ca_certificates=test_ca.cert_pem.decode()
    )
    diagnosis = diagnose(transport, SENDER, ADMIN)
    failed = diagnosis.failed_step
    assert failed.key == "auth"
    assert failed.detail.startswith("535")
    assert "refusé l'identifiant ou le mot de passe" in failed.advice
    assert server.received == []


def test_login_without_encryption_on_a_server_that_hides_auth_explains(
    app, make_smtp_server, test_ca
):
    server = make_smtp_server("starttls", users={"secretariat": "s3cret"})
    transport = transport_to(server, security="none", username="secretariat", password="s3cret")
    diagnosis = diagnose(transport, SENDER, ADMIN)
    failed = diagnosis.failed_step
    assert failed.key == "auth"
    assert "connexion chiffrée" in failed.advice
    assert "STARTTLS" in step(diagnosis, "tls").detail  # the server offers it: say so


def test_sender_refused_by_the_server_says_which_address(app, smtp_server):
    async def refuse_sender(server, session, envelope, address, mail_options):
        return "553 5.7.1 Sender address rejected: not owned by user"

    smtp_server.recorder.handle_MAIL = refuse_sender
    diagnosis = diagnose(transport_to(smtp_server, username=""), SENDER, ADMIN)
    failed = diagnosis.failed_step
    assert failed.key == "mail_from"
    assert failed.detail == "553 5.7.1 Sender address rejected: not owned by user"
    assert "refuse l'adresse d'expéditeur ne-pas-repondre@lycee-demo.fr" in failed.advice


def test_refused_recipient_stops_at_rcpt_with_the_servers_words(app, smtp_server):
    smtp_server.refuse(ADMIN, "550 5.1.1 Mailbox unavailable")
    diagnosis = diagnose(transport_to(smtp_server), SENDER, ADMIN)
    failed = diagnosis.failed_step
    assert failed.key == "rcpt_to"
    assert failed.detail == "550 5.1.1 Mailbox unavailable"
    assert smtp_server.received == []


def test_temporary_refusal_of_the_data_says_to_try_again_later(app, smtp_server):
    smtp_server.recorder.data_reply = "451 4.3.0 Try again later"
    diagnosis = diagnose(transport_to(smtp_server), SENDER, ADMIN)
    failed = diagnosis.failed_step
    assert failed.key == "data"
    assert failed.detail == "451 4.3.0 Try again later"
    assert "réessayez dans quelques minutes" in failed.advice
