"""Attachment files, stored once under ``ATTACHMENT_DIR`` by their SHA-256, removed once unused.

A file is used by every row whose foreign key points at it (a mailing's attachment, an e-mail's
own file, a template's, a signature): ``remove_unused_files`` finds those tables in the schema, so
a feature's new table counts without being named here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import Path

from flask import Response, current_app, send_file
from sqlalchemy import Column, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from hpmail.core.text import InvalidHeader, is_content_type
from hpmail.core.time import utcnow
from hpmail.extensions import db
from hpmail.outbox.models import Attachment

log = logging.getLogger(__name__)

# The only types a stored file is ever served as; anything else is a download of bytes.
SERVED_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"}
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def attachment_path(sha256: str) -> Path:
    """Return where the file of this hash lives."""
    return Path(current_app.config["ATTACHMENT_DIR"]) / sha256[:2] / sha256


def sniffed_type(data: bytes) -> str | None:
    """Return the content type found in the first bytes of ``data`` (magic numbers), or None."""
    import filetype  # ~15 ms to import: only an upload or a stored document is sniffed

    kind = filetype.guess(data[:8192])
    return kind.mime if kind is not None else None


def store_attachment(data: bytes, content_type: str) -> Attachment:
    """Store ``data`` once (deduplicated by SHA-256) and return its row (flushed, not committed).

    The row's type is the one found in the bytes when there is one, so that it is the same
    whoever stores the file first; ``content_type`` (checked) is used for bytes without magic.
    Storing bytes already there renews their ``stored_at``, so that the clean-up leaves them to
    the use about to come. The row is written before the file: a clean-up removing the same file
    at that moment holds the row until it has deleted the file, which is then written again.
    """
    content_type = sniffed_type(data) or content_type
    if not is_content_type(content_type):
        raise InvalidHeader(f"invalid content type {content_type!r}")
    digest = hashlib.sha256(data).hexdigest()
    attachment = _renewed(digest)
    if attachment is None:
        attachment = Attachment(sha256=digest, size=len(data), content_type=content_type)
        try:
            with db.session.begin_nested():
                db.session.add(attachment)
        except IntegrityError:  # stored at the same moment by another request
            attachment = _renewed(digest)
    path = attachment_path(digest)
    if not path.exists():
        _write_file(path, data)
    return attachment


def store_attachments(files: Sequence[tuple[bytes, str]]) -> list[Attachment]:
    """Store many files at once, by the rules of ``store_attachment``; return their rows in order.

    For a worker storing hundreds of generated documents: one UPDATE renews the rows already
    there, one INSERT adds the others (rows first, as ``store_attachment`` does), and the new
    files are written and synced side by side, so that the disk's journal commits them together.
    Bytes stored at the same moment by another request fall back to ``store_attachment``.
    """
    if not files:
        return []
    wanted: dict[str, tuple[bytes, str]] = {}
    digests = []
    for data, content_type in files:
        content_type = sniffed_type(data) or content_type
        if not is_content_type(content_type):
            raise InvalidHeader(f"invalid content type {content_type!r}")
        digest = hashlib.sha256(data).hexdigest()
        wanted.setdefault(digest, (data, content_type))
        digests.append(digest)
    table = Attachment.__table__
    ids = dict(
        db.session.execute(
            update(table)
            .where(table.c.sha256.in_(list(wanted)))
            .values(stored_at=utcnow())
            .returning(table.c.sha256, table.c.id)
        ).all()
    )
    new = [
        {
            "sha256": d,
            "size": len(data),
            "content_type": kind,
            "created_at": utcnow(),
            "stored_at": utcnow(),
        }
        for d, (data, kind) in wanted.items()
        if d not in ids
    ]
    if new:
        try:
            with db.session.begin_nested():
                ids.update(
                    db.session.execute(
                        insert(table).returning(table.c.sha256, table.c.id), new
                    ).all()
                )
        except IntegrityError:  # some were stored at the same moment by another request
            for row in new:
                ids[row["sha256"]] = store_attachment(*wanted[row["sha256"]]).id
    # The paths are found here: the threads that write have no app context.
    missing = [(path, wanted[d][0]) for d in wanted if not (path := attachment_path(d)).exists()]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda pair: _write_file(*pair), missing))
    rows = {
        a.id: a
        for a in db.session.scalars(select(Attachment).where(Attachment.id.in_(ids.values())))
    }
    return [rows[ids[digest]] for digest in digests]


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` at ``path`` whole or not at all (a temporary file, synced, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _renewed(digest: str) -> Attachment | None:
    """Return the stored row of this hash with its ``stored_at`` set to now, or None."""
    found = db.session.scalar(
        update(Attachment)
        .where(Attachment.sha256 == digest)
        .values(stored_at=utcnow())
        .returning(Attachment.id)
        .execution_options(synchronize_session=False)
    )
    return db.session.get(Attachment, found, populate_existing=True) if found else None


def _uses() -> Iterator[Column]:
    """Yield every column of the schema that points at a stored file."""
    table = Attachment.__table__
    for other in db.metadata.tables.values():
        for key in other.foreign_keys:
            if key.column.table is table:
                yield key.parent


def remove_unused_files(now: datetime | None = None) -> int:
    """Delete the stored files no row uses, last stored over ``UNUSED_FILES_KEPT_HOURS`` ago.

    The grace leaves time to a file just uploaded and not yet sent (the composer carries it from
    one try to the next). Rows and files go together: the rows are deleted first, the files while
    the deletion still holds them, then it commits. Return how many files were removed.
    """
    now = now or utcnow()
    kept = timedelta(hours=current_app.config["UNUSED_FILES_KEPT_HOURS"])
    table = Attachment.__table__
    # One list per use, read once (not a lookup per file: some uses have no index), NULLs left
    # out (``NOT IN`` a list holding NULL is never true).
    unused = [table.c.id.not_in(select(c).where(c.is_not(None))) for c in _uses()]
    removed = (
        db.session.execute(
            delete(table).where(table.c.stored_at < now - kept, *unused).returning(table.c.sha256)
        )
        .scalars()
        .all()
    )
    for digest in removed:
        attachment_path(digest).unlink(missing_ok=True)
    db.session.commit()
    if removed:
        log.info("removed %s stored files no e-mail, template or signature uses", len(removed))
    return len(removed)


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
