"""Files added to an e-mail: size limits, executables refused, and files kept between two tries."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from hpmail.delivery.attachments import store_attachment
from hpmail.delivery.models import Attachment
from hpmail.extensions import db

FORBIDDEN_EXTENSIONS = {
    ".exe",
    ".bat",
    ".cmd",
    ".com",
    ".scr",
    ".js",
    ".vbs",
    ".msi",
    ".jar",
    ".ps1",
}
# Windows executables (MZ) whatever their name says.
EXECUTABLE_MAGIC = (b"MZ",)
IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


@dataclass
class Upload:
    """A file as the browser sent it."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class KeptFile:
    """A file already stored (from an earlier try or a template), carried by a signed token."""

    attachment: Attachment
    filename: str

    @property
    def size(self) -> int:
        return self.attachment.size


def clean_filename(name: str) -> str:
    """Return the last path part of ``name`` without control characters (accents kept)."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().strip(".") or "piece-jointe"
    return name[-255:]


def read_uploads(files) -> list[Upload]:
    """Return the non-empty files of a request, each read up to one byte over the limit."""
    limit = current_app.config["ATTACHMENT_MAX_FILE_BYTES"]
    uploads = []
    for storage in files:
        if not storage or not storage.filename:
            continue
        data = storage.stream.read(limit + 1)
        uploads.append(Upload(clean_filename(storage.filename), storage.mimetype or "", data))
    return uploads


def is_executable(filename: str, data: bytes) -> bool:
    """Tell whether a file is a program, by its extension or its first bytes."""
    lowered = filename.lower()
    return any(lowered.endswith(ext) for ext in FORBIDDEN_EXTENSIONS) or data.startswith(
        EXECUTABLE_MAGIC
    )


def upload_errors(uploads: list[Upload], kept: list[KeptFile] = ()) -> list[str]:
    """Return a French message for each file refused and for an e-mail over the total limit."""
    config = current_app.config
    per_file, per_email = config["ATTACHMENT_MAX_FILE_BYTES"], config["ATTACHMENT_MAX_EMAIL_BYTES"]
    errors = []
    for upload in uploads:
        if is_executable(upload.filename, upload.data):
            errors.append(
                _("%(name)s is a program: programs cannot be sent.", name=upload.filename)
            )
        elif upload.size > per_file:
            errors.append(
                _(
                    "%(name)s is over %(limit)s MB, the limit for one file.",
                    name=upload.filename,
                    limit=_megabytes(per_file),
                )
            )
        elif upload.size == 0:
            errors.append(_("%(name)s is empty.", name=upload.filename))
    total = sum(u.size for u in uploads) + sum(k.size for k in kept)
    if not errors and total > per_email:
        errors.append(
            _(
                "The attachments add up to more than %(limit)s MB, the limit for one e-mail.",
                limit=_megabytes(per_email),
            )
        )
    return errors


def store_uploads(uploads: list[Upload]) -> list[KeptFile]:
    """Store files that passed the checks and return them as kept files (flushed)."""
    return [
        KeptFile(store_attachment(u.data, u.content_type or "application/octet-stream"), u.filename)
        for u in uploads
    ]


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:g}"


def image_type(data: bytes) -> str | None:
    """Return the content type of a PNG or JPEG image by its magic bytes, else None."""
    for magic, content_type in IMAGE_MAGIC.items():
        if data.startswith(magic):
            return content_type
    return None


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="compose-kept-file")


def keep_token(user_id: int, attachment_id: int, filename: str) -> str:
    """Return a token that lets this user carry a stored file to their next try."""
    return _serializer().dumps([user_id, attachment_id, filename])


def kept_files(user_id: int, tokens: list[str]) -> list[KeptFile]:
    """Return the stored files named by valid tokens of this user (others are ignored)."""
    files, seen = [], set()
    for token in tokens:
        try:
            owner, attachment_id, filename = _serializer().loads(token)
        except (BadSignature, ValueError, TypeError):
            continue
        if owner != user_id or (attachment_id, filename) in seen:
            continue
        attachment = db.session.get(Attachment, attachment_id)
        if attachment is not None:
            seen.add((attachment_id, filename))
            files.append(KeptFile(attachment, filename))
    return files
