"""Files of one e-mail (each recipient's own document): queued, built, and what arrives."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hpmail.outbox.api import (
    DOCUMENT_PREVIEW,
    Address,
    AttachmentSpec,
    EmailSpec,
    InvalidHeader,
    Sender,
    dispatch,
    dispatch_emails,
    queue_mailing,
    queue_more_emails,
    resend_failed_recipients,
)
from hpmail.outbox.attachments import store_attachment
from hpmail.outbox.models import EmailAttachment, EmailState, OutboundEmail

pytestmark = pytest.mark.usefixtures("no_sender_checks")

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
SENDER = Sender("secretariat@lycee-demo.fr", "Secrétariat")
UNSAFE = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)]
HTML = f'<p>Bonjour,</p><p>Votre emploi du temps :</p><img src="cid:{DOCUMENT_PREVIEW}">'


def timetable_of(db, name: str) -> tuple:
    """Store a person's own PDF and PNG preview (different bytes for each person)."""
    pdf = store_attachment(f"%PDF-1.4 emploi du temps de {name}".encode(), "application/pdf")
    png = store_attachment(PNG + name.encode() + b"\x00" * 20, "image/png")
    return pdf, png


def document_email(db, address: str, name: str) -> EmailSpec:
    pdf, png = timetable_of(db, name)
    return EmailSpec(
        to=[Address(address, name)],
        attachments=[
            AttachmentSpec(pdf, f"Emploi du temps – {name}.pdf"),
            AttachmentSpec(png, "apercu.png", content_id=DOCUMENT_PREVIEW),
        ],
    )


def queue_documents(db, emails, **fields):
    values = {
        "author_id": None,
        "sender": SENDER,
        "subject": "Emploi du temps",
        "text_body": "Bonjour,\nvotre emploi du temps est joint.",
        "html_body": HTML,
        "kind": "document",
        "emails": emails,
    }
    values.update(fields)
    mailing = queue_mailing(**values)
    db.session.commit()
    return mailing


def arrived_for(server, address: str):
    (received,) = [r for r in server.received if address in r.rcpt_tos]
    return received.message


def pdf_of(message) -> bytes:
    (part,) = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert part.get_content_disposition() == "attachment"
    return part.get_content()


def test_each_recipient_receives_their_own_pdf_and_inline_preview_with_a_content_id_of_their_own(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    dispatch(
        queue_documents(
            db,
            [
                document_email(db, "berenice@example.org", "Bérénice"),
                document_email(db, "oscar@example.org", "Oscar"),
            ],
        )
    )

    assert len(smtp_server.received) == 2
    content_ids = []
    for address, name in (("berenice@example.org", "Bérénice"), ("oscar@example.org", "Oscar")):
        message = arrived_for(smtp_server, address)
        assert [p.get_content_type() for p in message.walk()] == [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "multipart/related",
            "text/html",
            "image/png",
            "application/pdf",
        ]
        assert pdf_of(message) == f"%PDF-1.4 emploi du temps de {name}".encode()
        text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
        assert "votre emploi du temps est joint" in text.get_content()
        image = next(p for p in message.walk() if p.get_content_type() == "image/png")
        assert image.get_content() == PNG + name.encode() + b"\x00" * 20
        assert image.get_content_disposition() == "inline"
        content_id = image["Content-ID"].strip()
        html = next(p for p in message.walk() if p.get_content_type() == "text/html")
        assert f'src="cid:{content_id.strip("<>")}"' in html.get_content()
        assert f'cid:{DOCUMENT_PREVIEW}"' not in html.get_content()
        # Made from the message's own Message-ID, so unique to it.
        assert message["Message-ID"].strip("<>") in content_id
        content_ids.append(content_id)
    assert content_ids[0] != content_ids[1]


def test_emails_without_files_of_their_own_share_the_mailing_body_built_once(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    mailing = queue_documents(
        db,
        [
            document_email(db, "berenice@example.org", "Bérénice"),
            EmailSpec(to=[Address("mere@example.org")]),
            document_email(db, "oscar@example.org", "Oscar"),
            EmailSpec(to=[Address("pere@example.org")]),
        ],
        html_body="<p>Bonjour</p>",
    )
    dispatch(mailing)

    mother, father = (arrived_for(smtp_server, a) for a in ("mere@example.org", "pere@example.org"))
    assert [p.get_content_type() for p in mother.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    # One body serialised once for the mailing: the same MIME boundary in both messages.
    assert mother.get_boundary() == father.get_boundary()
    documents = [arrived_for(smtp_server, a) for a in ("berenice@example.org", "oscar@example.org")]
    assert len({m.get_boundary() for m in documents} | {mother.get_boundary()}) == 3


def test_a_file_name_with_a_control_character_is_refused_when_queued_and_nothing_is_kept(db):
    pdf, _png = timetable_of(db, "Oscar")
    db.session.commit()
    hostile = EmailSpec(
        to=[Address("oscar@example.org")],
        attachments=[AttachmentSpec(pdf, "edt.pdf\r\nBcc: tous@example.org")],
    )
    with pytest.raises(InvalidHeader):
        queue_documents(db, [document_email(db, "berenice@example.org", "Bérénice"), hostile])
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboundEmail)) == 0
    assert db.session.scalar(select(func.count()).select_from(EmailAttachment)) == 0


def test_every_control_or_separator_character_in_an_emails_file_name_or_cid_is_refused(db):
    pdf, png = timetable_of(db, "Oscar")
    db.session.commit()
    for character in UNSAFE:
        for file in (
            AttachmentSpec(pdf, f"edt{character}.pdf"),
            AttachmentSpec(png, "apercu.png", content_id=f"apercu{character}"),
        ):
            with pytest.raises(InvalidHeader):
                queue_documents(
                    db, [EmailSpec(to=[Address("oscar@example.org")], attachments=[file])]
                )
            db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboundEmail)) == 0


def test_an_inline_image_of_one_email_must_be_named_by_a_word(db):
    _pdf, png = timetable_of(db, "Oscar")
    db.session.commit()
    for name in ("apercu@hpmail", "aperçu", "deux mots", "<x>", "-x"):
        preview = AttachmentSpec(png, "apercu.png", content_id=name)
        with pytest.raises(InvalidHeader, match="Nom d'image intégrée non valable"):
            queue_documents(db, [EmailSpec(to=[Address("o@example.org")], attachments=[preview])])
        db.session.rollback()


def test_a_hostile_file_name_is_refused_when_emails_are_added_to_a_mailing(db, delivery_settings):
    delivery_settings()
    mailing = queue_documents(db, [document_email(db, "berenice@example.org", "Bérénice")])
    pdf, _png = timetable_of(db, "Oscar")
    hostile = EmailSpec(
        to=[Address("oscar@example.org")],
        attachments=[AttachmentSpec(pdf, "edt\u2028.pdf")],
    )
    with pytest.raises(InvalidHeader):
        queue_more_emails(mailing, [hostile])


def test_emails_added_to_a_mailing_in_chunks_arrive_each_with_their_own_files(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    mailing = queue_documents(db, [document_email(db, "eleve0@example.org", "Élève 0")])
    dispatch(mailing)
    for chunk in range(2):
        names = [f"Élève {chunk * 3 + i + 1}" for i in range(3)]
        ids = queue_more_emails(
            mailing,
            [document_email(db, f"eleve{n.split()[-1]}@example.org", n) for n in names],
        )
        db.session.commit()
        assert len(ids) == 3
        dispatch_emails(ids)

    assert len(smtp_server.received) == 7
    for number in range(7):
        message = arrived_for(smtp_server, f"eleve{number}@example.org")
        assert pdf_of(message) == f"%PDF-1.4 emploi du temps de Élève {number}".encode()


def test_an_email_queued_again_for_its_failed_recipient_carries_the_same_files(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    smtp_server.recorder.refused_recipients["oscar@example.org"] = "550 5.1.1 No such user"
    mailing = queue_documents(
        db,
        [
            document_email(db, "berenice@example.org", "Bérénice"),
            document_email(db, "oscar@example.org", "Oscar"),
        ],
    )
    dispatch(mailing)
    assert len(smtp_server.received) == 1

    smtp_server.recorder.refused_recipients.clear()
    ids = resend_failed_recipients(mailing)
    db.session.commit()
    dispatch_emails(ids)

    message = arrived_for(smtp_server, "oscar@example.org")
    assert pdf_of(message) == b"%PDF-1.4 emploi du temps de Oscar"
    assert db.session.get(OutboundEmail, ids[0]).state == EmailState.SENT
