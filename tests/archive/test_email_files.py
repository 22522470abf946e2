"""The archive shows what each person received: the files of their own e-mail, served to those
allowed to see the mailing only."""

from __future__ import annotations

import re

from hpmail.outbox.api import (
    DOCUMENT_PREVIEW,
    Address,
    AttachmentSpec,
    EmailSpec,
    Sender,
    dispatch,
    queue_mailing,
)
from hpmail.outbox.attachments import store_attachment
from hpmail.outbox.models import EmailAttachment
from tests.compose.conftest import FR, HTMX

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


def send_documents(db, user, account, people: dict[str, str]):
    """Queue and send one e-mail per person, each with their own PDF and inline preview."""
    emails = []
    for address, name in people.items():
        pdf = store_attachment(f"%PDF-1.4 bulletin de {name}".encode(), "application/pdf")
        png = store_attachment(PNG + name.encode(), "image/png")
        emails.append(
            EmailSpec(
                to=[Address(address, name)],
                attachments=[
                    AttachmentSpec(pdf, f"Bulletin {name}.pdf"),
                    AttachmentSpec(png, f"Aperçu {name}.png", content_id=DOCUMENT_PREVIEW),
                ],
            )
        )
    mailing = queue_mailing(
        author_id=user.id,
        sender=Sender(account.address, account.label, account_id=account.id),
        subject="Bulletins du trimestre",
        text_body="Bonjour, votre bulletin est joint.",
        html_body=f'<p>Bonjour</p><img src="cid:{DOCUMENT_PREVIEW}">',
        kind="document",
        emails=emails,
    )
    db.session.commit()
    dispatch(mailing)
    return mailing


def files_of(db, mailing, address: str) -> list[EmailAttachment]:
    email = next(e for e in mailing.emails if e.recipients[0].address == address)
    return list(email.attachments)


def row_of(page: str, address: str) -> str:
    (row,) = [r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if f"&lt;{address}&gt;" in r]
    return row


def test_the_detail_shows_each_recipient_the_files_of_their_own_email_and_serves_them(
    client, sender, db
):
    from hpmail.accounts.service import default_account

    people = {"berenice@example.org": "Bérénice", "oscar@example.org": "Oscar"}
    mailing = send_documents(db, sender, default_account(sender), people)

    page = client.get(f"/e-mails/{mailing.id}", headers=FR).text
    assert "Fichiers personnels" in page
    berenice, oscar = row_of(page, "berenice@example.org"), row_of(page, "oscar@example.org")
    assert "Bulletin Bérénice.pdf" in berenice and "Bulletin Oscar.pdf" not in berenice
    assert "Bulletin Oscar.pdf" in oscar and "Bulletin Bérénice.pdf" not in oscar
    assert "dans le message" in oscar  # the preview was inline
    for address, name in people.items():
        pdf, png = files_of(db, mailing, address)
        url = f"/e-mails/{mailing.id}/fichiers/{pdf.id}"
        assert url in page
        response = client.get(url)
        assert response.status_code == 200
        assert response.data == f"%PDF-1.4 bulletin de {name}".encode()
        assert response.mimetype == "application/pdf"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert client.get(f"/e-mails/{mailing.id}/fichiers/{png.id}").data == PNG + name.encode()


def test_an_email_file_is_404_to_another_user_and_through_another_mailing(
    client, db, make_user, login_as, personal_account, delivery_settings, smtp_server
):
    delivery_settings(smtp_server)
    author = make_user("staff")
    private = send_documents(db, author, personal_account(author), {"a@example.org": "Alice"})
    (pdf, _png) = files_of(db, private, "a@example.org")

    outsider = login_as("staff")
    theirs = send_documents(db, outsider, personal_account(outsider), {"b@example.org": "Bob"})
    for headers in (FR, HTMX):
        assert (
            client.get(f"/e-mails/{private.id}/fichiers/{pdf.id}", headers=headers).status_code
            == 404
        )
        # Their own mailing's URL does not open another mailing's file either.
        assert (
            client.get(f"/e-mails/{theirs.id}/fichiers/{pdf.id}", headers=headers).status_code
            == 404
        )
    (own_pdf, _own_png) = files_of(db, theirs, "b@example.org")
    assert client.get(f"/e-mails/{theirs.id}/fichiers/{own_pdf.id}").status_code == 200
    assert "Bulletin Alice.pdf" not in client.get(f"/e-mails/{theirs.id}", headers=FR).text
