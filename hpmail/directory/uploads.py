"""CSV files waiting for the admin's "import the valid rows", kept under instance/ by token."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from flask import current_app

KEEP_SECONDS = 24 * 3600
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _folder() -> Path:
    folder = Path(current_app.instance_path) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _path(user_id: int, token: str) -> Path | None:
    if not TOKEN.match(token or ""):
        return None
    return _folder() / f"{int(user_id)}-{token}.csv"


def keep_upload(user_id: int, data: bytes) -> str:
    """Store an uploaded file for this user and return its token (older files are deleted)."""
    now = time.time()
    for old in _folder().glob("*.csv"):
        if now - old.stat().st_mtime > KEEP_SECONDS:
            old.unlink(missing_ok=True)
    token = secrets.token_urlsafe(24)
    _path(user_id, token).write_bytes(data)
    return token


def read_upload(user_id: int, token: str) -> bytes | None:
    """Return the stored file of this user and token, or None if it is gone."""
    path = _path(user_id, token)
    return path.read_bytes() if path and path.exists() else None


def discard_upload(user_id: int, token: str) -> None:
    """Delete the stored file."""
    path = _path(user_id, token)
    if path:
        path.unlink(missing_ok=True)
