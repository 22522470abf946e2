"""Files added to an e-mail: size limits, executables refused, and files kept between two tries."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import cached_property
from io import BytesIO
from pathlib import PurePosixPath

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from hpmail.core.text import without_unsafe_characters
from hpmail.extensions import db
from hpmail.outbox.attachments import sniffed_type, store_attachment
from hpmail.outbox.models import Attachment

# Named in the refusal message: programs, scripts and shortcuts Windows runs on a double click.
PROGRAM_EXTENSIONS = {
    ".exe",
    ".bat",
    ".cmd",
    ".com",
    ".scr",
    ".js",
    ".jse",
    ".vbs",
    ".vbe",
    ".wsf",
    ".wsh",
    ".hta",
    ".lnk",
    ".pif",
    ".cpl",
    ".msc",
    ".msi",
    ".msp",
    ".reg",
    ".jar",
    ".ps1",
    ".psm1",
    ".iso",
    ".img",
    ".vhd",
    ".appx",
    ".msix",
    ".dll",
    ".sh",
    ".app",
    ".apk",
    ".docm",
    ".xlsm",
    ".pptm",
}
# Programs by their first bytes, whatever their name says: Windows (MZ), Linux (ELF), macOS.
PROGRAM_TYPES = {
    "application/x-msdownload",
    "application/x-executable",
    "application/x-mach-binary",
}
PROGRAM_MAGIC = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe")
# The allow-list: each type found in the bytes, with the names such a file may have.
ACCEPTED_TYPES = {
    "application/pdf": {".pdf"},
    "image/png": {".png"},
    "image/jpeg": {".jpg", ".jpeg"},
    "image/gif": {".gif"},
    "image/webp": {".webp"},
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {".docx"},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {".xlsx"},
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": {".pptx"},
    "application/vnd.oasis.opendocument.text": {".odt"},
    "application/vnd.oasis.opendocument.spreadsheet": {".ods"},
    "application/vnd.oasis.opendocument.presentation": {".odp"},
    "application/zip": {".zip"},
}
# Files without magic bytes: accepted as text when they decode as text.
TEXT_TYPES = {".txt": "text/plain", ".csv": "text/csv"}
# Zips, and the office documents that are zips (looked into for macros).
ZIP_TYPES = {t for t in ACCEPTED_TYPES if t.startswith("application/vnd.")} | {"application/zip"}
ZIP_MEMBERS_MAX = 1000
IMAGE_TYPES = {"image/png", "image/jpeg"}


@dataclass
class Upload:
    """A file as the browser sent it."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def accepted_type(self) -> str | None:
        """Return the type the file is sent with, found in its bytes; None if not accepted."""
        return accepted_type(self.filename, self.data)


@dataclass
class KeptFile:
    """A file already stored (from an earlier try or a template), carried by a signed token."""

    attachment: Attachment
    filename: str
    content_type: str = ""

    def __post_init__(self) -> None:
        self.content_type = self.content_type or self.attachment.content_type

    @property
    def size(self) -> int:
        return self.attachment.size


def clean_filename(name: str) -> str:
    """Return the last path part of ``name`` without control characters (accents kept)."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = without_unsafe_characters(name).strip().strip(".") or "piece-jointe"
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


def _extension(filename: str) -> str:
    return PurePosixPath(filename.lower()).suffix


def is_executable(filename: str, data: bytes) -> bool:
    """Tell whether a file is a program, by its extension or its first bytes."""
    return (
        _extension(filename) in PROGRAM_EXTENSIONS
        or data.startswith(PROGRAM_MAGIC)
        or sniffed_type(data) in PROGRAM_TYPES
    )


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    for encoding in ("utf-8", "cp1252"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return True
    return False


def accepted_type(filename: str, data: bytes, *, nested: bool = False) -> str | None:
    """Return the content type of an accepted file, or None when the allow-list refuses it.

    The type is found in the bytes (``filetype``), never taken from the browser, and the name
    must be one such a file has (an ELF renamed ``.pdf`` or a PDF renamed ``.hta`` is refused).
    Office documents with macros and zips holding anything but accepted files are refused.
    """
    extension = _extension(filename)
    if is_executable(filename, data):
        return None
    found = sniffed_type(data)
    if found is None:
        text_type = TEXT_TYPES.get(extension)
        return text_type if text_type and _is_text(data) else None
    if extension not in ACCEPTED_TYPES.get(found, ()):
        return None
    if found == "application/zip" and nested:
        return None  # a zip inside a zip: not looked into, so not accepted
    if found in ZIP_TYPES and not _zip_is_accepted(data, plain=found == "application/zip"):
        return None
    return found


def _zip_is_accepted(data: bytes, *, plain: bool) -> bool:
    """Tell whether a zip (or an office document, which is one) holds only harmless members."""
    limit = current_app.config["ATTACHMENT_MAX_FILE_BYTES"]
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > ZIP_MEMBERS_MAX:
                return False
            for member in members:
                name = member.filename.lower()
                if not plain:
                    # Macros: VBA in Office documents, Basic or scripts in OpenDocument ones.
                    if name.endswith("vbaproject.bin") or name.startswith(("basic/", "scripts/")):
                        return False
                    continue
                if member.is_dir() or name.startswith("__macosx/"):
                    continue
                with archive.open(member) as opened:
                    content = opened.read(limit + 1)
                if len(content) > limit:
                    return False
                if accepted_type(name.rsplit("/", 1)[-1], content, nested=True) is None:
                    return False
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, ValueError):
        return False
    return True


def upload_errors(uploads: list[Upload], kept: list[KeptFile] = ()) -> list[str]:
    """Return a message for each file refused and for an e-mail over the total limit."""
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
        elif upload.accepted_type is None:
            errors.append(
                _(
                    "%(name)s cannot be sent: only PDF, images, office documents (docx, xlsx, "
                    "pptx, odt, ods, odp, without macros), text, CSV and zips of these are "
                    "accepted.",
                    name=upload.filename,
                )
            )
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
        KeptFile(store_attachment(u.data, u.accepted_type), u.filename, u.accepted_type)
        for u in uploads
    ]


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:g}"


def image_type(data: bytes) -> str | None:
    """Return the content type of a PNG or JPEG image by its magic bytes, else None."""
    found = sniffed_type(data)
    return found if found in IMAGE_TYPES else None


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
