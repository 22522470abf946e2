"""The headers good senders add, as they arrive at the SMTP server: the language of every e-mail
(and of its HTML part), ``Auto-Submitted`` on the server's own e-mails only."""

from __future__ import annotations

import pytest

from hpmail.outbox.api import Address, EmailSpec, Sender, dispatch, queue_mailing
from hpmail.outbox.models import MailingKind

pytestmark = pytest.mark.usefixtures("no_sender_checks")


def send(db, kind=MailingKind.EMAIL, **fields) -> None:
    mailing = queue_mailing(
        author_id=None,
        sender=Sender("secretariat@lycee-demo.fr", "Secrétariat"),
        subject="Sortie au musée",
        text_body="Bonjour,\nla sortie a lieu vendredi.",
        html_body="<p>Bonjour,</p><p>la sortie a lieu <b>vendredi</b>.</p>",
        emails=[EmailSpec(to=[Address("parent@example.org")])],
        kind=kind,
        **fields,
    )
    db.session.commit()
    dispatch(mailing)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_e_mail_says_the_app_s_language_and_its_html_is_a_whole_document_in_it(
    app, db, smtp_server, delivery_settings, language
):
    app.config["BABEL_DEFAULT_LOCALE"] = language
    delivery_settings(smtp_server)

    send(db)

    message = smtp_server.received[0].message
    assert message["Content-Language"] == language
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert html.startswith(f'<!DOCTYPE html>\n<html lang="{language}">\n')
    assert "<body>\n<p>Bonjour,</p><p>la sortie a lieu <b>vendredi</b>.</p>\n</body>" in html
    assert (
        message.get_body(("plain",)).get_content().startswith("Bonjour,\r\nla sortie")
    )  # text as is


@pytest.mark.parametrize("kind", list(MailingKind))
def test_only_the_server_s_own_e_mails_are_marked_auto_generated(
    db, smtp_server, delivery_settings, kind
):
    delivery_settings(smtp_server)

    send(db, kind=kind)

    message = smtp_server.received[0].message
    # Named here, not read from GENERATED_KINDS: a kind added there by mistake must fail this.
    generated = {MailingKind.TEST, MailingKind.VERIFICATION}
    expected = "auto-generated" if kind in generated else None
    assert message["Auto-Submitted"] == expected
    assert message["Precedence"] is None  # measured: SpamAssassin gives it nothing


def test_hidden_recipients_say_their_language_too(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)

    send(db, hide_recipients=True)

    message = smtp_server.received[0].message
    assert str(message["To"]) == "undisclosed-recipients:;"
    assert message["Content-Language"] == "fr"
    assert message["Auto-Submitted"] is None
