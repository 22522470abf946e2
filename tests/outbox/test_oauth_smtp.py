"""XOAUTH2 in one process: the SMTP server's refusal of a kept token, a provider's refusals."""

from __future__ import annotations

import pytest

from hpmail.outbox import clock
from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing, retry_now
from hpmail.outbox.models import EmailState, OAuthApplication, OutboundEmail
from hpmail.outbox.secrets import encrypt_secret
from hpmail.outbox.send import deliver

pytestmark = pytest.mark.usefixtures("no_sender_checks")

SENDER = Sender("secretariat@lycee-demo.fr", "Secrétariat")


@pytest.fixture
def app_config(app_config, oauth_provider):
    return {**app_config, "OAUTH_PROVIDERS": oauth_provider.providers()}


@pytest.fixture
def granted(db, oauth_provider, oauth_application, oauth_transport, delivery_settings):
    """The server's transport holding a refresh token the provider gave for envoi@…"""
    oauth_application("microsoft")
    refresh_token = oauth_provider.grant("envoi@lycee-demo.fr")
    transport = oauth_transport(
        "microsoft",
        oauth_account="envoi@lycee-demo.fr",
        oauth_refresh_encrypted=encrypt_secret(refresh_token),
    )
    delivery_settings(transport=transport)
    return transport


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
    db.session.expire_all()
    return db.session.get(OutboundEmail, mailing.emails[0].id)


def test_a_kept_token_the_server_refuses_is_forgotten_and_the_next_try_takes_a_new_one(
    db, granted, oauth_provider, xoauth2_smtp_server
):
    assert send(db, "Premier").state == EmailState.SENT
    assert oauth_provider.refreshes == 1
    oauth_provider.expire_access_tokens()  # the provider ended it before its announced expiry

    refused = send(db, "Second")
    assert refused.state == EmailState.DEFERRED
    assert "535" in refused.last_error
    retry_now([refused.id])
    db.session.commit()
    deliver([refused.id])
    db.session.expire_all()
    assert db.session.get(OutboundEmail, refused.id).state == EmailState.SENT
    assert oauth_provider.refreshes == 2
    assert [r.message["Subject"] for r in xoauth2_smtp_server.received] == ["Premier", "Second"]


def test_a_wrong_client_secret_defers_the_mail_and_says_to_check_the_application(
    db, granted, xoauth2_smtp_server
):
    db.session.get(OAuthApplication, "microsoft").client_secret_encrypted = encrypt_secret("x")
    db.session.commit()
    email = send(db, "Conseil de classe")
    assert email.state == EmailState.DEFERRED
    assert "Microsoft 365 refuse l'application de l'établissement (invalid_client)" in (
        email.last_error
    )
    assert xoauth2_smtp_server.received == []
    assert email.next_attempt_at > clock.now()  # tried again later, never lost
