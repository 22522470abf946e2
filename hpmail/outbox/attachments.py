"""Attachment files, stored once under ``ATTACHMENT_DIR`` by their SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from io import BytesIO
from pathlib import Path

import filetype
from flask import Response, current_app, send_file
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hpmail.core.text import InvalidHeader, is_content_type
from hpmail.extensions import db
from hpmail.outbox.models import Attachment

# The only types a stored file is ever served as; anything else is a download of bytes.
SERVED_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"}
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def attachment_path(sha256: str) -> Path:
    """Return where the file of this hash lives."""
    return Path(current_app.config["ATTACHMENT_DIR"]) / sha256[:2] / sha256


def sniffed_type(data: bytes) -> str | None:
    """Return the content type found in the first bytes of ``data`` (magic numbers), or None."""
    kind = filetype.guess(data[:8192])
    return kind.mime if kind is not None else None


def store_attachment(data: bytes, content_type: str) -> Attachment:
    """Store ``data`` once (deduplicated by SHA-256) and return its row (flushed, not committed).

    The row's type is the one found in the bytes when there is one, so that it is the same
    whoever stores the file first; ``content_type`` (checked) is used for bytes without magic.
    """
    content_type = sniffed_type(data) or content_type
    if not is_content_type(content_type):
        raise InvalidHeader(f"invalid content type {content_type!r}")
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


def stored_file_response(data: bytes, filename: str, *, inline: bool = False) -> Response:
    """Return a stored file as a response that no browser renders as a page of the site.

    The type is found in the bytes, from a short list (else ``application/octet-stream``), never
    taken from the uploader; ``nosniff`` stops the browser from guessing another; only images are
    shown inline.
    """
    content_type = sniffed_type(data)
    if content_type not in SERVED_TYPES:
        content_type = "application/octet-stream"
    response = send_file(
        BytesIO(data),
        mimetype=content_type,
        as_attachment=not (inline and content_type in INLINE_TYPES),
        download_name=filename,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
