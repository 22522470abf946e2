"""The outbox contract: a mailing queued, committed and dispatched arrives at a real SMTP server."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hpmail.outbox.api import (
    Address,
    EmailSpec,
    InvalidHeader,
    NoTransport,
    Sender,
    cancel,
    counts_by_state,
    dispatch,
    dispatch_emails,
    queue_mailing,
    register_sender_check,
    resend_failed_recipients,
    retry_now,
)
from hpmail.outbox.attachments import read_attachment, store_attachment
from hpmail.outbox.models import EmailRecipient, EmailState, OutboundEmail, RecipientState

pytestmark = pytest.mark.usefixtures("no_sender_checks")

SENDER = Sender("secretariat@lycee-demo.fr", "Secrétariat", account_id=None)


def queue(db, emails, **fields):
    values = {
        "author_id": None,
        "sender": SENDER,
        "subject": "Réunion de rentrée",
        "text_body": "Bonjour,\nà lundi.",
        "emails": emails,
    }
    values.update(fields)
    mailing = queue_mailing(**values)
    db.session.commit()
    return mailing


def test_queued_mailing_arrives_at_the_smtp_server(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    mailing = queue(
        db,
        [
            EmailSpec(to=[Address("eleve1@example.org", "Élève Un")]),
            EmailSpec(to=[Address("eleve2@example.org")], cc=[Address("parent@example.org")]),
        ],
    )

    result = dispatch(mailing)

    assert result.queued == 2
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "eleve1@example.org",
        "eleve2@example.org",
    ]
    states = db.session.scalars(select(OutboundEmail.state)).all()
    assert states == [EmailState.SENT, EmailState.SENT]
    assert set(db.session.scalars(select(EmailRecipient.state))) == {RecipientState.ACCEPTED}
    message = smtp_server.received[0].message
    assert message["Subject"] == "Réunion de rentrée"
    assert message["From"].addresses[0].addr_spec == "secretariat@lycee-demo.fr"
    stored = {e.message_id for e in db.session.scalars(select(OutboundEmail))}
    assert {r.message["Message-ID"] for r in smtp_server.received} == stored
    assert counts_by_state()["sent"] == 2


def test_not_delegated_sends_in_the_request_and_reports_each_outcome(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server, delegate=False)
    smtp_server.refuse("absent@example.org", "550 5.1.1 Mailbox unknown")
    mailing = queue(
        db,
        [EmailSpec(to=[Address("ok@example.org")]), EmailSpec(to=[Address("absent@example.org")])],
        kind="verification",
    )

    result = dispatch(mailing)

    assert (result.queued, result.sent, result.failed) == (0, 1, 1)
    assert any("5.1.1 Mailbox unknown" in error for error in result.errors)
    assert len(smtp_server.received) == 1


def test_a_line_break_in_a_header_value_is_refused_and_nothing_is_written(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    with pytest.raises(InvalidHeader, match="tenir sur une seule ligne"):
        queue(
            db, [EmailSpec(to=[Address("a@example.org")])], subject="Hello\r\nBcc: victim@evil.org"
        )
    with pytest.raises(InvalidHeader):
        queue(db, [EmailSpec(to=[Address("a@example.org\nBcc: x@evil.org")])])
    with pytest.raises(InvalidHeader):
        queue(db, [EmailSpec(to=[Address("a@example.org", "Nom\rBcc: x@evil.org")])])
    with pytest.raises(InvalidHeader, match="Adresse e-mail invalide"):
        queue(db, [EmailSpec(to=[Address("pas-une-adresse")])])
    db.session.rollback()
    assert db.session.scalars(select(OutboundEmail)).all() == []


def test_no_transport_configured_is_refused_in_french(db):
    with pytest.raises(NoTransport, match="Aucun serveur SMTP"):
        queue(db, [EmailSpec(to=[Address("a@example.org")])])


def test_attachments_are_stored_once_by_content(db):
    first = store_attachment(b"%PDF-1.4 emploi du temps", "application/pdf")
    second = store_attachment(b"%PDF-1.4 emploi du temps", "application/pdf")
    db.session.commit()
    assert first.id == second.id
    assert read_attachment(second) == b"%PDF-1.4 emploi du temps"


def test_a_sender_check_refusal_fails_the_email_without_sending(
    app, db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)

    def refuse_everything(mailing):
        return "Compte non autorisé" if mailing.subject == "Interdit" else None

    register_sender_check(app, refuse_everything)
    mailing = queue(db, [EmailSpec(to=[Address("a@example.org")])], subject="Interdit")
    dispatch(mailing)
    email = db.session.scalars(select(OutboundEmail)).one()
    assert (email.state, email.last_error) == (EmailState.FAILED, "Compte non autorisé")
    assert smtp_server.received == []


def test_failed_recipients_are_sent_again_after_retry(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    smtp_server.refuse("absent@example.org", "550 5.1.1 Mailbox unknown")
    mailing = queue(db, [EmailSpec(to=[Address("ok@example.org"), Address("absent@example.org")])])
    dispatch(mailing)
    email = db.session.scalars(select(OutboundEmail)).one()
    assert email.state == EmailState.SENT
    refused = [r for r in email.recipients if r.state == RecipientState.REFUSED]
    assert [(r.address, r.code, r.reply) for r in refused] == [
        ("absent@example.org", 550, "5.1.1 Mailbox unknown")
    ]

    smtp_server.recorder.refused_recipients.clear()
    new_ids = resend_failed_recipients(mailing)
    db.session.commit()
    dispatch(mailing)
    assert smtp_server.received[-1].rcpt_tos == ["absent@example.org"]
    assert db.session.get(OutboundEmail, new_ids[0]).state == EmailState.SENT


def test_resending_a_mailing_queues_one_email_per_email_with_failed_recipients(
    db, smtp_server, delivery_settings
):
    delivery_settings(smtp_server)
    for address in ("absent@example.org", "parti@example.org", "copie@example.org"):
        smtp_server.refuse(address, "550 5.1.1 Mailbox unknown")
    mailing = queue(
        db,
        [
            EmailSpec(to=[Address("ok@example.org"), Address("absent@example.org")]),
            EmailSpec(to=[Address("parti@example.org")], cc=[Address("copie@example.org")]),
            EmailSpec(to=[Address("recu@example.org")]),
        ],
    )
    dispatch(mailing)
    smtp_server.recorder.refused_recipients.clear()
    received_before = len(smtp_server.received)

    new_ids = resend_failed_recipients(mailing)
    db.session.commit()
    dispatch(mailing)

    assert len(new_ids) == 2
    again = [
        [(r.field, r.address) for r in db.session.get(OutboundEmail, email_id).recipients]
        for email_id in new_ids
    ]
    assert again == [
        [("to", "absent@example.org")],
        [("to", "parti@example.org"), ("cc", "copie@example.org")],
    ]
    assert sorted(sorted(r.rcpt_tos) for r in smtp_server.received[received_before:]) == [
        ["absent@example.org"],
        ["copie@example.org", "parti@example.org"],
    ]
    assert resend_failed_recipients(db.session.get(OutboundEmail, new_ids[0])) == []


def test_cancel_and_retry_now(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    mailing = queue(db, [EmailSpec(to=[Address("a@example.org")])])
    email_id = db.session.scalars(select(OutboundEmail.id)).one()
    assert cancel([email_id]) == 1
    db.session.commit()
    dispatch(mailing)
    assert smtp_server.received == []
    assert retry_now([email_id]) == []  # a cancelled e-mail stays cancelled


def test_not_delegated_sends_with_the_authors_profile(
    db, smtp_server, make_transport, make_user, delivery_settings
):
    from hpmail.outbox.models import SendingProfile, UserTransport

    delivery_settings(delegate=False)  # the server's transport is a dead end
    author = make_user("teacher")
    profile = SendingProfile(name="Rectorat", transport=make_transport(smtp_server))
    db.session.add_all([profile, UserTransport(user_id=author.id, profile=profile)])
    db.session.commit()

    mailing = queue(db, [EmailSpec(to=[Address("a@example.org")])], author_id=author.id)
    result = dispatch(mailing)

    assert (result.queued, result.sent, result.failed) == (0, 1, 0)
    assert mailing.transport_id == profile.transport_id
    assert len(smtp_server.received) == 1


def test_not_delegated_without_a_transport_of_ones_own_is_refused(
    db, smtp_server, make_user, delivery_settings
):
    delivery_settings(smtp_server, delegate=False)
    author = make_user("teacher")
    with pytest.raises(NoTransport):
        queue(db, [EmailSpec(to=[Address("a@example.org")])], author_id=author.id)


def test_retry_now_sends_a_failed_email_again(db, smtp_server, delivery_settings):
    delivery_settings(smtp_server)
    smtp_server.recorder.data_reply = "554 5.7.1 Rejected for now"
    mailing = queue(db, [EmailSpec(to=[Address("a@example.org")])])
    dispatch(mailing)
    email = db.session.scalars(select(OutboundEmail)).one()
    assert email.state == EmailState.FAILED
    message_id = email.message_id

    smtp_server.recorder.data_reply = None
    ids = retry_now([email.id])
    db.session.commit()
    dispatch_emails(ids)

    db.session.refresh(email)
    assert email.state == EmailState.SENT
    assert smtp_server.received[0].message["Message-ID"] == message_id
