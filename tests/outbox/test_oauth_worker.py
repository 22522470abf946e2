"""The worker signs in with XOAUTH2: real consumer, real fake provider, real STARTTLS server.

The admin connects the server's account through the pages (start → the provider's consent →
the callback); the consumer process then refreshes access tokens itself (rotated refresh tokens
stored), and a grant the provider revoked defers the mail with a French reason until the admin
signs in again.
"""

from __future__ import annotations

import time
from html import unescape

import pytest

from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import EmailState, OutboundEmail, Transport
from hpmail.outbox.secrets import decrypt_secret
from tests.fixtures.oauth import CLIENT_SECRET, connect_through_routes
from tests.fixtures.worker import wait_until, worker_app_config

pytestmark = pytest.mark.worker

SENDER = Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo")
REVOKED = (
    "La connexion à Microsoft 365 a expiré ou a été révoquée : reconnectez le compte dans "
    "Serveur › Paramètres d'envoi des e-mails."
)


@pytest.fixture
def app_config(tmp_path, oauth_provider):
    return worker_app_config(
        tmp_path, OAUTH_PROVIDERS=oauth_provider.providers(), OAUTH_REFRESH_MARGIN_SECONDS=1
    )


@pytest.fixture
def oauth_worker(worker):
    """A started consumer; ``worker`` hands it the ``OAUTH_*`` settings (the fake provider)."""
    return worker().wait_ready()


@pytest.fixture
def connected(client, login_as, delivery_settings, oauth_transport, oauth_application):
    """The server's account at "Microsoft 365", connected by the admin through the pages."""
    oauth_application("microsoft")
    settings = delivery_settings(transport=oauth_transport("microsoft"))
    login_as("admin")
    page = connect_through_routes(client, settings.transport, "envoi@lycee-demo.fr")
    assert "Connecté à Microsoft 365 en tant que envoi@lycee-demo.fr" in unescape(page.text)
    return settings.transport


def send(db, subject: str) -> OutboundEmail:
    mailing = queue_mailing(
        author_id=None,
        sender=SENDER,
        subject=subject,
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address("parent@example.org")])],
    )
    db.session.commit()
    dispatch(mailing)
    return mailing.emails[0]


def state_of(db, email: OutboundEmail) -> OutboundEmail:
    db.session.rollback()  # a new snapshot: the worker writes from another process
    return db.session.get(OutboundEmail, email.id)


def arrived(server, count: int):
    return lambda: len(server.received) >= count


def test_the_worker_sends_with_xoauth2_keeps_the_token_and_refreshes_it_when_it_expires(
    db, connected, oauth_provider, xoauth2_smtp_server, oauth_worker
):
    oauth_provider.rotate = True  # each refresh gives a new refresh token, the old one dies
    oauth_provider.expires_in = 3  # kept until 1 s before: 2 s
    worker = oauth_worker
    first = send(db, "Conseil de classe")
    wait_until(arrived(xoauth2_smtp_server, 1), message=worker.log_text())
    assert oauth_provider.refreshes == 1

    # The token has expired: the next send takes a new one before the server would refuse it.
    time.sleep(3.5)
    late = send(db, "Bulletins")
    wait_until(arrived(xoauth2_smtp_server, 2), message=worker.log_text())
    assert oauth_provider.refreshes == 2
    assert state_of(db, late).attempts == 1  # no refusal, no retry: the token was fresh

    # A token that lives an hour is kept: two more e-mails, one refresh.
    oauth_provider.expires_in = 3600
    time.sleep(3.5)
    third = send(db, "Sortie au musée")
    wait_until(arrived(xoauth2_smtp_server, 3), message=worker.log_text())
    fourth = send(db, "Réunion parents-professeurs")
    wait_until(arrived(xoauth2_smtp_server, 4), message=worker.log_text())
    assert oauth_provider.refreshes == 3
    assert len(xoauth2_smtp_server.recorder.sign_ins) == 4  # one sign-in each, none refused
    assert {received.login for received in xoauth2_smtp_server.received} == {"envoi@lycee-demo.fr"}

    # The rotated refresh token was stored (the provider no longer knows the first one).
    db.session.expire_all()
    stored = decrypt_secret(db.session.get(Transport, connected.id).oauth_refresh_encrypted)
    assert list(oauth_provider.refresh_tokens) == [stored]
    for email in (first, late, third, fourth):
        wait_until(lambda email=email: state_of(db, email).state == EmailState.SENT)

    log = worker.log_text()
    for secret in [CLIENT_SECRET, *oauth_provider.issued]:
        assert secret not in log


def test_a_revoked_grant_defers_the_email_with_the_reason_and_signing_in_again_sends_it(
    db, client, connected, oauth_provider, xoauth2_smtp_server, oauth_worker
):
    oauth_provider.revoke()  # the user withdrew consent, or changed their password
    email = send(db, "Conseil de classe")
    wait_until(
        lambda: state_of(db, email).state == EmailState.DEFERRED,
        message=oauth_worker.log_text(),
    )
    assert state_of(db, email).last_error == REVOKED
    assert xoauth2_smtp_server.received == []
    db.session.expire_all()
    assert db.session.get(Transport, connected.id).oauth_error == REVOKED

    outbox = unescape(client.get("/serveur/file-envoi?etat=deferred").text)
    assert outbox.count(REVOKED) == 2  # the banner, and the e-mail's last error
    settings_page = unescape(client.get("/serveur/parametres-envoi").text)
    assert REVOKED in settings_page

    page = connect_through_routes(client, connected, "envoi@lycee-demo.fr")
    assert "Connecté à Microsoft 365" in unescape(page.text)
    wait_until(
        lambda: state_of(db, email).state == EmailState.SENT, message=oauth_worker.log_text()
    )
    db.session.expire_all()
    assert db.session.get(Transport, connected.id).oauth_error is None
    assert REVOKED not in unescape(client.get("/serveur/file-envoi").text)
    [received] = xoauth2_smtp_server.received
    assert received.message["Subject"] == "Conseil de classe"

    log = oauth_worker.log_text()
    for secret in [CLIENT_SECRET, *oauth_provider.issued]:
        assert secret not in log
        assert secret not in outbox
