"""An archived e-mail's attachments download as files, never as a page of the site."""

from __future__ import annotations

from hpmail.outbox.api import AttachmentSpec
from hpmail.outbox.attachments import store_attachment
from tests.archive.test_archive import send


def test_an_attachment_stored_as_html_downloads_as_bytes_with_nosniff(client, sender, db):
    from hpmail.accounts.service import default_account

    page = b"<html><script>alert(document.cookie)</script></html>"
    stored = store_attachment(page, "text/html")
    mailing = send(
        db, sender, default_account(sender), "Page", attachments=[AttachmentSpec(stored, "a.html")]
    )
    (item,) = mailing.attachments

    response = client.get(f"/e-mails/{mailing.id}/pieces-jointes/{item.id}")

    assert response.status_code == 200 and response.data == page
    assert response.mimetype == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith("attachment")
