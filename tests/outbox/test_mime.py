"""What arrives at the SMTP server: MIME structure, From policy, Bcc, Message-ID."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hpmail.outbox.api import (
    Address,
    AttachmentSpec,
    EmailSpec,
    Sender,
    dispatch,
    queue_mailing,
)
from hpmail.outbox.attachments import store_attachment
from hpmail.outbox.models import OutboundEmail
from hpmail.outbox.policy import allowed_domain

pytestmark = pytest.mark.usefixtures("no_sender_checks")

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 20


def send(db, sender, emails, **fields):
    values = {
        "author_id": None,
        "sender": sender,
        "subject": "Emploi du temps – semaine 12",
        "text_body": "Bonjour,\nvoici l'emploi du temps.",
        "emails": emails,
    }
    values.update(fields)
    mailing = queue_mailing(**values)
    db.session.commit()
    dispatch(mailing)
    return mailing


def test_text_html_inline_image_and_accented_attachment_arrive_as_built(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    pdf = store_attachment(b"%PDF-1.4 emploi du temps", "application/pdf")
    signature = store_attachment(PNG, "image/png")
    db.session.commit()

    send(
        db,
        Sender("secretariat@lycee-demo.fr", "Secrétariat"),
        [EmailSpec(to=[Address("eleve@example.org", "Élève")], bcc=[Address("cache@example.org")])],
        html_body='<p>Bonjour,</p><img src="cid:signature-1">',
        attachments=[
            AttachmentSpec(pdf, "Emploi du temps – Bérénice.pdf"),
            AttachmentSpec(signature, "signature.png", content_id="signature-1"),
        ],
    )

    (arrived,) = smtp_server.received
    assert sorted(arrived.rcpt_tos) == ["cache@example.org", "eleve@example.org"]
    message = arrived.message
    assert "Bcc" not in message
    assert b"cache@example.org" not in arrived.data
    assert message.get_content_type() == "multipart/mixed"
    types = [part.get_content_type() for part in message.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<signature-1>"
    assert image.get_content() == PNG
    attachment = next(p for p in message.walk() if p.get_content_type() == "application/pdf")
    assert attachment.get_filename() == "Emploi du temps – Bérénice.pdf"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_content() == b"%PDF-1.4 emploi du temps"
    text = message.get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n").startswith("Bonjour,\nvoici l'emploi")
    assert message["Subject"] == "Emploi du temps – semaine 12"
    assert message["Date"]
    assert str(message["To"]) == "Élève <eleve@example.org>"
    stored = db.session.scalars(select(OutboundEmail.message_id)).one()
    assert message["Message-ID"] == stored
    assert stored.endswith("@lycee-demo.fr>")  # the server sender address's domain


def test_an_address_outside_the_allowed_domains_goes_out_via_the_server_sender(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    send(
        db,
        Sender("julien.petit@gmail.com", "Julien Petit"),
        [EmailSpec(to=[Address("a@example.org")])],
    )

    (arrived,) = smtp_server.received
    message = arrived.message
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Julien Petit via Lycée Démo",
        "ne-pas-repondre@lycee-demo.fr",
    )
    assert message["Reply-To"].addresses[0].addr_spec == "julien.petit@gmail.com"
    assert arrived.mail_from == "ne-pas-repondre@lycee-demo.fr"


def test_an_address_inside_the_allowed_domains_sends_as_itself(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    send(
        db,
        Sender("sophie@math.univ-exemple.fr", "Sophie", reply_to="scolarite@lycee-demo.fr"),
        [EmailSpec(to=[Address("a@example.org")])],
    )

    message = smtp_server.received[0].message
    assert message["From"].addresses[0].addr_spec == "sophie@math.univ-exemple.fr"
    assert message["Reply-To"].addresses[0].addr_spec == "scolarite@lycee-demo.fr"
    assert smtp_server.received[0].mail_from == "sophie@math.univ-exemple.fr"


def test_hidden_recipients_all_go_in_bcc_and_to_is_the_empty_undisclosed_recipients_group(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    send(
        db,
        Sender("secretariat@lycee-demo.fr", "Secrétariat"),
        [EmailSpec(to=[Address("a@example.org"), Address("b@example.org")])],
        hide_recipients=True,
    )

    (arrived,) = smtp_server.received
    assert sorted(arrived.rcpt_tos) == ["a@example.org", "b@example.org"]
    # RFC 5322's empty group: the sending account is in From, and To = From looks like spam.
    assert str(arrived.message["To"]) == "undisclosed-recipients:;"
    assert arrived.message["To"].addresses == ()
    assert arrived.message["From"].addresses[0].addr_spec == "secretariat@lycee-demo.fr"
    assert b"a@example.org" not in arrived.data and b"b@example.org" not in arrived.data
    assert "Cc" not in arrived.message and "Bcc" not in arrived.message


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("a@lycee-demo.fr", True),
        ("a@LYCEE-DEMO.FR", True),
        ("a@sub.lycee-demo.fr", False),
        ("a@math.univ-exemple.fr", True),
        ("a@a.b.univ-exemple.fr", True),
        ("a@univ-exemple.fr", False),
        ("a@evil-univ-exemple.fr", False),
        ("a@gmail.com", False),
    ],
)
def test_allowed_domains_one_per_line_with_star_for_subdomains(address, allowed):
    assert allowed_domain(address, "lycee-demo.fr\n  *.univ-exemple.fr  \n\n") is allowed


def test_message_ids_use_the_configured_domain(app, db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    app.config["MESSAGE_ID_DOMAIN"] = "courrier.lycee-demo.fr"
    send(db, Sender("secretariat@lycee-demo.fr"), [EmailSpec(to=[Address("a@example.org")])])
    assert smtp_server.received[0].message["Message-ID"].endswith("@courrier.lycee-demo.fr>")


@pytest.mark.parametrize(
    "fields",
    [
        {
            "sender": Sender(
                "secretariat@lycee-demo.fr", reply_to="a@example.org\r\nBcc: x@evil.org"
            )
        },
        {"sender": Sender("secretariat@lycee-demo.fr", "Nom\nBcc: x@evil.org")},
        {"emails": [EmailSpec(cc=[Address("a@example.org", "Nom\r\nX: y")])]},
    ],
)
def test_line_breaks_anywhere_in_a_header_are_refused(db, smtp_server, delivery_settings, fields):
    from hpmail.outbox.api import InvalidHeader

    delivery_settings(smtp_server)
    values = {
        "sender": Sender("secretariat@lycee-demo.fr"),
        "emails": [EmailSpec(to=[Address("a@example.org")])],
    }
    values.update(fields)
    with pytest.raises(InvalidHeader):
        send(db, values.pop("sender"), values.pop("emails"))
    assert smtp_server.received == []


def test_a_line_break_in_an_attachment_name_is_refused(db, smtp_server, delivery_settings):
    from hpmail.outbox.api import InvalidHeader

    delivery_settings(smtp_server)
    pdf = store_attachment(b"%PDF-1.4", "application/pdf")
    with pytest.raises(InvalidHeader, match="Nom de fichier"):
        send(
            db,
            Sender("secretariat@lycee-demo.fr"),
            [EmailSpec(to=[Address("a@example.org")])],
            attachments=[AttachmentSpec(pdf, "a.pdf\r\nContent-Type: text/html")],
        )


def test_an_attachment_missing_from_the_store_fails_the_email_with_the_reason(
    db, smtp_server, delivery_settings
):
    from hpmail.outbox.attachments import attachment_path

    delivery_settings(smtp_server)
    pdf = store_attachment(b"%PDF-1.4 perdu", "application/pdf")
    db.session.commit()
    attachment_path(pdf.sha256).unlink()

    send(
        db,
        Sender("secretariat@lycee-demo.fr"),
        [EmailSpec(to=[Address("a@example.org")])],
        attachments=[AttachmentSpec(pdf, "perdu.pdf")],
    )

    email = db.session.scalars(select(OutboundEmail)).one()
    assert email.state == "failed"
    assert email.last_error.startswith("L'e-mail n'a pas pu être construit")
    assert smtp_server.received == []


# The characters of issue 8 that end a header line for ``str.splitlines()`` but are not CR/LF.
SPLITTERS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
FORGED = "A{}From: Le Proviseur <proviseur@lycee-demo.fr>{}Subject: Convocation{}{}Corps."


@pytest.mark.parametrize("character", SPLITTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", ["cc_name", "sender_name", "subject", "file_name"])
def test_a_separator_that_is_not_cr_or_lf_is_refused_in_every_header_value(
    db, smtp_server, delivery_settings, character, where
):
    from hpmail.outbox.api import InvalidHeader

    delivery_settings(smtp_server)
    forged = FORGED.format(*[character] * 4)
    values = {
        "sender": Sender("secretariat@lycee-demo.fr", "Secrétariat"),
        "emails": [EmailSpec(to=[Address("a@example.org")])],
    }
    if where == "cc_name":
        values["emails"] = [EmailSpec(cc=[Address("victim@example.org", forged)])]
    elif where == "sender_name":
        values["sender"] = Sender("secretariat@lycee-demo.fr", forged)
    elif where == "subject":
        values["subject"] = forged
    else:
        pdf = store_attachment(b"%PDF-1.4", "application/pdf")
        values["attachments"] = [AttachmentSpec(pdf, forged)]
    with pytest.raises(InvalidHeader):
        send(db, values.pop("sender"), values.pop("emails"), **values)
    assert smtp_server.received == []


@pytest.mark.parametrize("character", SPLITTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_the_mime_builder_refuses_a_separator_whatever_the_caller_checked(app, character):
    """The last line of defence: values that skipped the input checks still cannot forge."""
    from datetime import datetime
    from email.headerregistry import Address as HeaderAddress

    from hpmail.outbox.mime import MailingMessages, Part
    from hpmail.outbox.policy import Identity, InvalidHeader

    forged = FORGED.format(*[character] * 4)

    def build(subject="Objet", name="Lycée", parts=()):
        who = Identity(HeaderAddress(name, addr_spec="a@lycee-demo.fr"), None, "a@lycee-demo.fr")
        return MailingMessages(
            identity=who,
            subject=subject,
            text_body="Bonjour",
            html_body=None,
            parts=list(parts),
            date=datetime(2026, 12, 1, 8, 0),
        )

    with pytest.raises(InvalidHeader):
        build(subject=forged)
    with pytest.raises(InvalidHeader):
        build(name=forged)
    with pytest.raises(InvalidHeader):
        build(parts=[Part(forged, "application/pdf", b"%PDF-1.4")])
    with pytest.raises(InvalidHeader):
        build(parts=[Part("a.pdf", f"application/pdf{character}x-a: b", b"%PDF-1.4")])
    messages = build()
    assert b"Subject: Objet" in messages.message_bytes("<1@lycee-demo.fr>", [("", "v@example.org")])
    with pytest.raises(InvalidHeader):
        messages.message_bytes("<1@lycee-demo.fr>", [(forged, "victim@example.org")])
    with pytest.raises(InvalidHeader):
        messages.message_bytes(f"<1@lycee-demo.fr>{character}X: y", [("", "v@example.org")])
