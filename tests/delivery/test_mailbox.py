"""The demo mailbox: a real SMTP server keeping .eml files, its CLI, and Serveur › Boîte de test."""

from __future__ import annotations

import html
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from hpmail.delivery import mailbox
from hpmail.delivery.demo import configure_demo_delivery
from hpmail.delivery.diagnostics import diagnose
from tests.fixtures.smtp import free_port

FR = {"Accept-Language": "fr"}
ROOT = Path(__file__).resolve().parents[2]


def text(response) -> str:
    return html.unescape(response.text)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "DEMO": True, "DEMO_MAILBOX_PORT": free_port()}


@pytest.fixture
def running_mailbox(app):
    """The demo mailbox running in this process on the configured port."""
    folder = Path(app.config["DEMO_MAILBOX_DIR"])
    controller = Controller(
        mailbox.MailboxHandler(folder),
        hostname=app.config["DEMO_MAILBOX_HOST"],
        port=app.config["DEMO_MAILBOX_PORT"],
    )
    controller.start()
    yield folder
    controller.stop()


def send(port: int, subject: str, body: str = "Bonjour", to: str = "parent@exemple.fr") -> None:
    message = EmailMessage()
    message["From"] = "Secrétariat <secretariat@lycee-demo.fr>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Thu, 26 Nov 2026 08:30:00 +0100"
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        smtp.send_message(message)


def test_each_message_is_kept_as_an_eml_file_and_listed_newest_first(app, running_mailbox):
    port = app.config["DEMO_MAILBOX_PORT"]
    send(port, "Premier message")
    send(port, "Réunion parents-professeurs")
    files = sorted(p.name for p in running_mailbox.iterdir())
    messages = [name for name in files if mailbox.MESSAGE_NAME.match(name)]
    assert len(messages) == 2
    assert files == sorted(messages + [name + mailbox.ENVELOPE_SUFFIX for name in messages])
    listed = mailbox.list_messages(running_mailbox)
    assert [m.subject for m in listed] == ["Réunion parents-professeurs", "Premier message"]
    assert listed[0].recipients == "parent@exemple.fr"
    assert listed[0].delivered_to == ("parent@exemple.fr",)
    assert "secretariat@lycee-demo.fr" in listed[0].sender
    assert b"Subject: =?utf-8?q?R=C3=A9union" in mailbox.read_message(
        running_mailbox, listed[0].name
    )


@pytest.mark.parametrize(
    "name", ["../hpmail.sqlite3", "..", "/etc/passwd", "fernet.key", "x.eml", ".hidden.eml.tmp", ""]
)
def test_only_names_the_mailbox_made_can_be_read(app, running_mailbox, name):
    (running_mailbox.parent / "fernet.key").write_bytes(b"secret")
    assert mailbox.read_message(running_mailbox, name) is None


def test_admin_lists_what_arrived_and_reads_it_raw_never_as_html(
    client, login_as, app, running_mailbox
):
    send(
        app.config["DEMO_MAILBOX_PORT"],
        "Bulletin <b>trimestriel</b>",
        body="<script>alert(1)</script>",
    )
    login_as("admin")
    page = client.get("/serveur/boite-de-test", headers=FR)
    assert page.status_code == 200
    assert "Boîte de test" in text(page)
    assert "Bulletin <b>trimestriel</b>" in text(page)
    assert "<b>trimestriel</b>" not in page.text  # escaped
    [message] = mailbox.list_messages(running_mailbox)
    raw = client.get(f"/serveur/boite-de-test/{message.name}", headers=FR)
    assert raw.status_code == 200
    assert "<script>alert(1)</script>" not in raw.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw.text
    assert "Message-ID" in raw.text or "Subject:" in raw.text


def send_newsletter(port: int) -> None:
    """A multipart e-mail as hpmail sends them: text and HTML, an attachment, one Bcc."""
    message = EmailMessage()
    message["From"] = "Secrétariat <secretariat@lycee-demo.fr>"
    message["To"] = "Parent d'élève <parent@exemple.fr>"
    message["Cc"] = "Professeur principal <pp@lycee-demo.fr>"
    message["Subject"] = "Réunion parents-professeurs"
    message["Date"] = "Thu, 26 Nov 2026 08:30:00 +0100"
    message.set_content("Réunion à 18 h — salle 2.\n", cte="quoted-printable")
    message.add_alternative(
        "<p>Réunion <b>à 18 h</b></p><script>parent.document.title='pris'</script>",
        subtype="html",
        cte="quoted-printable",
    )
    message.add_attachment(
        b"%PDF-1.4 bulletin", maintype="application", subtype="pdf", filename="bulletin-T1.pdf"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        smtp.send_message(
            message,
            to_addrs=["parent@exemple.fr", "pp@lycee-demo.fr", "direction@lycee-demo.fr"],
        )


def test_a_message_is_shown_decoded_with_its_envelope_recipients_html_in_a_sandbox_and_files(
    client, login_as, app, running_mailbox
):
    send_newsletter(app.config["DEMO_MAILBOX_PORT"])
    login_as("admin")
    listing = text(client.get("/serveur/boite-de-test", headers=FR))
    assert "Remis à" in listing
    assert "parent@exemple.fr, pp@lycee-demo.fr, direction@lycee-demo.fr" in listing
    [message] = mailbox.list_messages(running_mailbox)
    response = client.get(f"/serveur/boite-de-test/{message.name}", headers=FR)
    assert response.status_code == 200
    page = text(response)
    shown, raw = page.split('<details class="card">', 1)
    assert "Réunion parents-professeurs" in shown
    assert "Parent d'élève <parent@exemple.fr>" in shown
    assert "Réunion à 18 h — salle 2." in shown
    assert "=?utf-8?" not in shown and "=C3=A9" not in shown
    assert "=?utf-8?" in raw  # the raw source is still there, folded away
    assert "Remis à" in shown and "direction@lycee-demo.fr" in shown
    assert "Absents de « À » et « Cc » (Cci) : direction@lycee-demo.fr" in shown
    assert "jeudi 26 novembre 2026" in shown
    assert "bulletin-T1.pdf" in shown and "application/pdf" in shown
    html_url = f"/serveur/boite-de-test/{message.name}/html"
    assert '<iframe class="mail-body" sandbox="" referrerpolicy="no-referrer"' in response.text
    assert f'src="{html_url}"' in response.text
    assert "<script>parent" not in response.text

    frame = client.get(html_url, headers=FR)
    assert frame.status_code == 200
    assert frame.mimetype == "text/html"
    policy = frame.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy
    assert "script-src" not in policy
    assert "<p>Réunion <b>à 18 h</b></p>" in frame.text  # decoded from quoted-printable


def test_a_message_without_html_has_no_frame_and_its_html_address_is_a_404(
    client, login_as, app, running_mailbox
):
    send(app.config["DEMO_MAILBOX_PORT"], "Texte seul", body="Bonjour à tous")
    login_as("admin")
    [message] = mailbox.list_messages(running_mailbox)
    page = client.get(f"/serveur/boite-de-test/{message.name}", headers=FR)
    assert "<iframe" not in page.text
    assert "Aucune pièce jointe." in text(page)
    assert client.get(f"/serveur/boite-de-test/{message.name}/html").status_code == 404


def test_unknown_or_hostile_message_names_get_a_404(client, login_as, running_mailbox):
    login_as("admin")
    for name in ("..%2Fhpmail.sqlite3", "20261126T083000000000-0123456789abcdef.eml", "x.eml"):
        assert client.get(f"/serveur/boite-de-test/{name}", headers=FR).status_code == 404


@pytest.mark.parametrize("role", ["staff", "teacher"])
def test_test_mailbox_is_for_the_admin(client, login_as, app, running_mailbox, role):
    send_newsletter(app.config["DEMO_MAILBOX_PORT"])
    [message] = mailbox.list_messages(running_mailbox)
    login_as(role)
    assert client.get("/serveur/boite-de-test", headers=FR).status_code == 403
    for url in (
        f"/serveur/boite-de-test/{message.name}",
        f"/serveur/boite-de-test/{message.name}/html",
    ):
        assert client.get(url, headers=FR).status_code == 403


def test_demo_settings_point_at_the_mailbox_and_a_test_send_arrives(app, db, running_mailbox):
    settings = configure_demo_delivery()
    db.session.commit()
    assert settings.delegate is True
    assert settings.sender_name == "Lycée de démonstration"
    assert settings.sender_address == "ne-pas-repondre@lycee-demo.fr"
    assert settings.allowed_domains == "lycee-demo.fr"
    transport = settings.transport
    assert (transport.host, transport.port, transport.security) == (
        "127.0.0.1",
        app.config["DEMO_MAILBOX_PORT"],
        "none",
    )
    diagnosis = diagnose(transport, settings.sender_address, "admin.demo@lycee-demo.fr")
    assert diagnosis.succeeded
    [arrived] = mailbox.list_messages(running_mailbox)
    assert arrived.recipients == "admin.demo@lycee-demo.fr"


def test_mailbox_command_serves_until_stopped(app, tmp_path):
    port = free_port()
    instance = tmp_path / "demo-instance"
    environment = {
        **os.environ,
        "HPMAIL_INSTANCE_PATH": str(instance),
        "HPMAIL_DEMO": "1",
        "HPMAIL_DEMO_MAILBOX_PORT": str(port),
        "HPMAIL_QUEUE_URL": "memory",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "demo-mailbox"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "the demo mailbox did not start"
                time.sleep(0.2)
        send(port, "Par la boîte de démonstration")
        [saved] = mailbox.list_messages(instance / "demo-mailbox")
        assert saved.subject == "Par la boîte de démonstration"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=15)[0].decode()
    assert process.returncode == 0, output
    assert "Boîte de test" in output


class TestWithoutDemo:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "DEMO": False}

    def test_the_page_does_not_exist_and_is_not_in_the_menu(self, client, login_as):
        login_as("admin")
        assert client.get("/serveur/boite-de-test", headers=FR).status_code == 404
        home = text(client.get("/", headers=FR))
        assert "Boîte de test" not in home
        assert "File d'envoi" in home

    def test_the_command_refuses_to_start(self, app):
        result = app.test_cli_runner().invoke(args=["demo-mailbox"])
        assert result.exit_code == 1
        assert "mode démonstration" in result.output


@pytest.mark.browser
def test_in_the_browser_the_html_part_shows_in_its_frame_and_its_script_never_runs(
    page, sign_in_page, app, running_mailbox
):
    send_newsletter(app.config["DEMO_MAILBOX_PORT"])
    [message] = mailbox.list_messages(running_mailbox)
    sign_in_page("admin", at="/serveur/boite-de-test")
    page.get_by_role("link", name="Réunion parents-professeurs").click()
    page.get_by_role("heading", name="Réunion parents-professeurs").wait_for()
    title = page.title()
    body = page.frame_locator("iframe.mail-body").locator("b")
    assert body.inner_text() == "à 18 h"
    assert page.title() == title != "pris"
    assert page.url.endswith(message.name)
    assert page.get_by_text("Réunion à 18 h — salle 2.").is_visible()
