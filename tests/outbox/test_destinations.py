"""A user's own SMTP server may not probe the server's network (loopback, link-local, private)."""

from __future__ import annotations

import html
import re
import socket
import threading

import pytest

from hpmail.delivery.diagnostics import diagnose
from hpmail.outbox.destinations import InternalAddressRefused, is_internal
from hpmail.outbox.models import Transport, UserTransport
from hpmail.outbox.settings import server_settings
from hpmail.outbox.smtp import connect

FR = {"Accept-Language": "fr"}
HTMX = {"Accept-Language": "fr", "HX-Request": "true"}
PERSONAL = "/configuration/envoi-personnel"
REFUSED = "se trouve dans le réseau de l'établissement"


def text(response) -> str:
    return html.unescape(response.text)


class Listener:
    """A real TCP port on 127.0.0.1 that counts who connects, and may say a first line."""

    def __init__(self, banner: bytes = b""):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(5)
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.banner = banner
        self.connections: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection = self.socket.accept()[0]
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(connection)
            if self.banner:
                connection.sendall(self.banner)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        for connection in self.connections:
            connection.close()
        self.socket.close()


@pytest.fixture
def listener():
    opened = []

    def make(banner: bytes = b"") -> Listener:
        opened.append(Listener(banner))
        return opened[-1]

    yield make
    for each in opened:
        each.close()


def settings(db, allow_internal_hosts: bool = False) -> None:
    chosen = server_settings()
    chosen.delegate = False
    chosen.allow_internal_hosts = allow_internal_hosts
    db.session.commit()


def own_form(host: str, port: int) -> dict:
    return {
        "action": "own",
        "host": host,
        "port": str(port),
        "security": "none",
        "username": "",
        "password": "",
        "timeout_seconds": "5",
        "limit_preset": "custom",
    }


def own_transport(db, user, host: str, port: int) -> Transport:
    """A personal transport saved before the rule (or while the admin allowed it)."""
    transport = Transport(host=host, port=port, security="none", timeout_seconds=5)
    db.session.add(transport)
    db.session.flush()
    db.session.add(UserTransport(user_id=user.id, transport_id=transport.id))
    db.session.commit()
    return transport


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "169.254.169.254", "10.0.0.1", "192.168.1.10", "172.16.0.1", "0.0.0.0"],  # noqa: S104
)
def test_loopback_link_local_and_private_addresses_are_internal(address):
    assert is_internal(address)


@pytest.mark.parametrize("address", ["80.67.169.12", "2a01:e0c:1::1", "::ffff:8.8.8.8"])
def test_public_addresses_are_not_internal(address):
    assert not is_internal(address)


def test_ipv4_mapped_loopback_is_internal():
    assert is_internal("::ffff:127.0.0.1")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "10.0.0.1"])
def test_a_user_pointing_their_server_inside_the_network_is_refused_in_french_and_nothing_connects(
    client, login_as, db, listener, host
):
    settings(db)
    teacher = login_as("teacher")
    port = listener()
    response = client.post(PERSONAL, data=own_form(host, port.port), headers=FR)
    assert response.status_code == 422
    assert REFUSED in text(response)
    assert "Rien n'a été enregistré" in text(response)
    assert db.session.get(UserTransport, teacher.id) is None
    assert port.connections == []


def test_a_saved_internal_server_is_refused_at_test_send_and_nothing_connects(
    client, login_as, db, listener
):
    settings(db)
    teacher = login_as("teacher", email="julien.petit@lycee-demo.fr")
    port = listener(b"220 relais interne ESMTP\r\n")
    own_transport(db, teacher, "127.0.0.1", port.port)
    response = client.post(f"{PERSONAL}/essai", headers=HTMX)
    page = text(response)
    assert "L'essai a échoué à l'étape « Résolution du nom »" in page
    assert REFUSED in page
    assert "relais interne" not in page
    assert port.connections == []


def test_the_worker_refuses_to_connect_a_users_internal_server(app, db, make_user, listener):
    settings(db)
    teacher = make_user("teacher")
    port = listener(b"220 relais interne ESMTP\r\n")
    transport = own_transport(db, teacher, "127.0.0.1", port.port)
    with pytest.raises(InternalAddressRefused, match=REFUSED):
        connect(transport)
    assert port.connections == []


def test_when_the_admin_allows_it_a_user_may_choose_an_internal_server(
    client, login_as, db, smtp_server
):
    settings(db, allow_internal_hosts=True)
    teacher = login_as("teacher", email="julien.petit@lycee-demo.fr")
    response = client.post(PERSONAL, data=own_form("127.0.0.1", smtp_server.port), headers=HTMX)
    assert "Votre serveur SMTP est enregistré." in text(response)
    assert db.session.get(UserTransport, teacher.id) is not None
    tested = client.post(f"{PERSONAL}/essai", headers=HTMX)
    assert "Le serveur a accepté l'e-mail d'essai" in text(tested)
    assert len(smtp_server.received) == 1


def test_the_admins_own_server_may_be_internal(client, login_as, db, smtp_server):
    settings(db)
    login_as("admin", email="agnes.martin@lycee-demo.fr")
    response = client.post(PERSONAL, data=own_form("127.0.0.1", smtp_server.port), headers=HTMX)
    assert "Votre serveur SMTP est enregistré." in text(response)
    tested = client.post(f"{PERSONAL}/essai", headers=HTMX)
    assert "Le serveur a accepté l'e-mail d'essai" in text(tested)


def test_the_admin_switches_internal_servers_on_in_the_server_settings(client, login_as, db):
    login_as("admin")
    page = text(client.get("/serveur/parametres-envoi", headers=FR))
    assert "Autoriser les adresses internes pour les serveurs personnels des utilisateurs" in page
    assert server_settings().allow_internal_hosts is False


def test_a_service_that_does_not_speak_smtp_is_named_but_its_banner_never_shown(app, listener):
    ssh = listener(b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n")
    transport = Transport(host="127.0.0.1", port=ssh.port, security="none", timeout_seconds=5)
    diagnosis = diagnose(transport, "a@lycee-demo.fr", "a@lycee-demo.fr")
    assert not diagnosis.succeeded
    failed = diagnosis.failed_step
    assert failed.key == "connect"
    assert failed.detail == "Le service de ce port ne parle pas SMTP."
    shown = " ".join(f"{step.detail} {step.advice}" for step in diagnosis.steps)
    assert "SSH" not in shown and "OpenSSH" not in shown


def test_a_users_test_send_never_waits_more_than_a_minute(client, login_as, db):
    settings(db, allow_internal_hosts=True)
    login_as("teacher")
    page = client.get(PERSONAL, headers=FR).text
    [field] = re.findall(r'<input[^>]*name="timeout_seconds"[^>]*>', page)
    assert 'max="60"' in field
    response = client.post(
        PERSONAL, data={**own_form("smtp.exemple.fr", 587), "timeout_seconds": "600"}, headers=FR
    )
    assert response.status_code == 422
    assert "Le délai d'attente est un nombre de secondes de 1 à 60." in text(response)
