"""Stored files: kept while any row uses them (mailing, e-mail, template), then removed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hpmail.compose.models import Template, TemplateAttachment
from hpmail.core.time import utcnow
from hpmail.outbox.api import Address, AttachmentSpec, EmailSpec, Sender, queue_mailing
from hpmail.outbox.attachments import attachment_path, remove_unused_files, store_attachment
from hpmail.outbox.models import Attachment


@pytest.fixture(autouse=True)
def server_transport(delivery_settings):
    delivery_settings()


LATER = timedelta(days=30)


def mailing_with_own_file(db, attachment, address: str):
    mailing = queue_mailing(
        author_id=None,
        sender=Sender("secretariat@lycee-demo.fr"),
        subject="Emploi du temps",
        text_body="Bonjour",
        emails=[
            EmailSpec(
                to=[Address(address)],
                attachments=[AttachmentSpec(attachment, "emploi-du-temps.pdf")],
            )
        ],
    )
    db.session.commit()
    return mailing


def is_stored(db, attachment_id: int, sha256: str) -> bool:
    db.session.expire_all()
    return (
        db.session.get(Attachment, attachment_id) is not None and attachment_path(sha256).exists()
    )


def test_a_file_still_carried_by_another_email_is_kept_and_removed_once_no_email_carries_it(db):
    shared = store_attachment(b"%PDF-1.4 emploi du temps de la 2nde B", "application/pdf")
    db.session.commit()
    file_id, sha256 = shared.id, shared.sha256
    first = mailing_with_own_file(db, shared, "berenice@example.org")
    second = mailing_with_own_file(db, shared, "oscar@example.org")

    db.session.delete(first)
    db.session.commit()
    assert remove_unused_files(utcnow() + LATER) == 0
    assert is_stored(db, file_id, sha256)

    db.session.delete(second)
    db.session.commit()
    assert remove_unused_files(utcnow() + LATER) == 1
    assert not is_stored(db, file_id, sha256)
    assert not attachment_path(sha256).exists()


def test_a_file_no_row_uses_is_kept_while_recent_and_storing_it_again_makes_it_recent(db):
    unused = store_attachment(b"%PDF-1.4 brouillon", "application/pdf")
    db.session.commit()
    file_id, sha256 = unused.id, unused.sha256

    assert remove_unused_files(utcnow() + timedelta(hours=1)) == 0
    assert is_stored(db, file_id, sha256)

    # Uploaded again later (the same bytes): the composer is about to send it.
    unused.stored_at = utcnow() - LATER
    db.session.commit()
    store_attachment(b"%PDF-1.4 brouillon", "application/pdf")
    db.session.commit()
    assert remove_unused_files(utcnow() + timedelta(hours=1)) == 0
    assert is_stored(db, file_id, sha256)


def test_a_file_used_by_a_saved_template_or_a_mailing_is_never_removed(db, make_user):
    author = make_user("teacher")
    by_template = store_attachment(b"%PDF-1.4 reglement interieur", "application/pdf")
    by_mailing = store_attachment(b"%PDF-1.4 circulaire", "application/pdf")
    db.session.add(
        Template(
            owner_id=author.id,
            label="Rentrée",
            attachments=[TemplateAttachment(attachment=by_template, filename="reglement.pdf")],
        )
    )
    db.session.commit()
    queue_mailing(
        author_id=None,
        sender=Sender("secretariat@lycee-demo.fr"),
        subject="Circulaire",
        text_body="Bonjour",
        emails=[EmailSpec(to=[Address("parent@example.org")])],
        attachments=[AttachmentSpec(by_mailing, "circulaire.pdf")],
    )
    db.session.commit()

    assert remove_unused_files(utcnow() + LATER) == 0
    assert is_stored(db, by_template.id, by_template.sha256)
    assert is_stored(db, by_mailing.id, by_mailing.sha256)
