"""Attachment files, stored once under ``ATTACHMENT_DIR`` by their SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hpmail.delivery.models import Attachment
from hpmail.extensions import db


def attachment_path(sha256: str) -> Path:
    """Return where the file of this hash lives."""
    return Path(current_app.config["ATTACHMENT_DIR"]) / sha256[:2] / sha256


def store_attachment(data: bytes, content_type: str) -> Attachment:
    """Store ``data`` once (deduplicated by SHA-256) and return its row (flushed, not committed)."""
    digest = hashlib.sha256(data).hexdigest()
    path = attachment_path(digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    existing = db.session.scalar(select(Attachment).where(Attachment.sha256 == digest))
    if existing is not None:
        return existing
    attachment = Attachment(sha256=digest, size=len(data), content_type=content_type)
    try:
        with db.session.begin_nested():
            db.session.add(attachment)
    except IntegrityError:  # stored at the same moment by another request
        return db.session.scalar(select(Attachment).where(Attachment.sha256 == digest))
    return attachment


def read_attachment(attachment: Attachment) -> bytes:
    """Return the bytes of a stored attachment."""
    return attachment_path(attachment.sha256).read_bytes()
