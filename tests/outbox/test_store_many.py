"""Many generated files stored at once (a print job's chunk): the same rules as one by one."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from hpmail.core.time import utcnow
from hpmail.outbox.attachments import (
    attachment_path,
    read_attachment,
    store_attachment,
    store_attachments,
)
from hpmail.outbox.models import Attachment

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_files_stored_at_once_come_back_in_order_each_stored_once(db):
    already = store_attachment(b"%PDF-1.4 deja la", "application/pdf")
    long_ago = utcnow() - timedelta(days=3)
    db.session.execute(update(Attachment).values(stored_at=long_ago))
    db.session.commit()
    files = [
        (b"%PDF-1.4 Alice", "application/pdf"),
        (PNG, "image/png"),
        (b"%PDF-1.4 deja la", "application/pdf"),
        (b"%PDF-1.4 Alice", "application/pdf"),
    ]

    stored = store_attachments(files)
    db.session.commit()

    assert [read_attachment(a) for a in stored] == [data for data, _kind in files]
    assert stored[0].id == stored[3].id and stored[2].id == already.id
    assert [a.content_type for a in stored[:2]] == ["application/pdf", "image/png"]
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 3
    db.session.refresh(already)
    assert already.stored_at > long_ago  # renewed, as storing it again one by one does
    assert all(attachment_path(a.sha256).exists() for a in stored)
    assert store_attachments([]) == []
