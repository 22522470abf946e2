"""A 50 MB upload is refused before it is read, with a French page, and nothing is stored."""

import io

from sqlalchemy import func, select

from hpmail.directory.models import Person
from hpmail.outbox.models import Attachment, Mailing

FIFTY_MB = 50 * 1024 * 1024


def big_file(name: str):
    return (io.BytesIO(b"x" * FIFTY_MB), name)


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_50_mb_attachment_is_refused_and_nothing_is_queued(client, login_as, db):
    login_as("staff")
    response = client.post(
        "/e-mail/nouveau",
        data={"subject": "Photos", "body": "Bonjour", "attachments": big_file("photos.zip")},
        content_type="multipart/form-data",
        headers={"Accept-Language": "fr"},
    )
    assert response.status_code == 413
    assert "dépasse la taille acceptée par le serveur (25 Mo au plus par envoi)" in response.text
    assert count(db, Mailing) == 0
    assert count(db, Attachment) == 0


def test_a_50_mb_csv_is_refused_and_nothing_is_imported(client, login_as, db):
    login_as("admin")
    response = client.post(
        "/import",
        data={"file": big_file("eleves.csv")},
        content_type="multipart/form-data",
        headers={"Accept-Language": "fr"},
    )
    assert response.status_code == 413
    assert (
        "Rien n'a été enregistré" in response.text or "Rien n&#39;a été enregistré" in response.text
    )
    assert count(db, Person) == 0
