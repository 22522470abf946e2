"""E-mails with their own files through a real ``huey_consumer``: one that cannot be built (its
file gone from the store) fails alone, and the others of the same batch arrive with their own."""

from __future__ import annotations

import pytest

from hpmail.outbox.api import (
    DOCUMENT_PREVIEW,
    Address,
    AttachmentSpec,
    EmailSpec,
    Sender,
    dispatch,
    queue_mailing,
    queue_more_emails,
)
from hpmail.outbox.attachments import attachment_path, store_attachment
from hpmail.outbox.models import EmailState
from tests.fixtures.worker import worker_app_config
from tests.outbox.test_worker import count_in, emails_of, sweep_until

pytestmark = pytest.mark.worker

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


@pytest.fixture
def app_config(tmp_path):
    return worker_app_config(tmp_path)


def document_email(number: int) -> EmailSpec:
    pdf = store_attachment(f"%PDF-1.4 emploi du temps {number}".encode(), "application/pdf")
    png = store_attachment(PNG + str(number).encode(), "image/png")
    return EmailSpec(
        to=[Address(f"eleve{number}@example.org")],
        attachments=[
            AttachmentSpec(pdf, f"edt-{number}.pdf"),
            AttachmentSpec(png, "apercu.png", content_id=DOCUMENT_PREVIEW),
        ],
    )


def test_an_email_whose_file_is_gone_fails_alone_and_the_others_arrive_with_their_own(
    db, smtp_server, delivery_settings, worker
):
    delivery_settings(smtp_server)
    mailing = queue_mailing(
        author_id=None,
        sender=Sender("ne-pas-repondre@lycee-demo.fr", "Lycée Démo"),
        subject="Emploi du temps",
        text_body="Bonjour",
        html_body=f'<img src="cid:{DOCUMENT_PREVIEW}">',
        kind="document",
        emails=[document_email(n) for n in range(3)],
    )
    queue_more_emails(mailing, [document_email(n) for n in range(3, 6)])
    db.session.commit()
    (fifth,) = [e for e in emails_of(db, mailing) if e.recipients[0].address.startswith("eleve4")]
    lost = fifth.attachments[0].attachment
    attachment_path(lost.sha256).unlink()
    dispatch(mailing)
    worker()

    sweep_until(db, lambda: count_in(db, EmailState.SENT, EmailState.FAILED) == 6, timeout=30)
    states = {e.recipients[0].address: e.state for e in emails_of(db, mailing)}
    assert states.pop("eleve4@example.org") == EmailState.FAILED
    assert set(states.values()) == {EmailState.SENT}
    assert len(smtp_server.received) == 5
    for received in smtp_server.received:
        number = received.rcpt_tos[0].removeprefix("eleve").split("@")[0]
        (pdf,) = [p for p in received.message.walk() if p.get_content_type() == "application/pdf"]
        assert pdf.get_content() == f"%PDF-1.4 emploi du temps {number}".encode()
