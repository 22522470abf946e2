"""SMTP secrets at rest: Fernet with the key kept in ``instance/fernet.key`` (``FERNET_KEY``)."""

from __future__ import annotations

from cryptography.fernet import Fernet
from flask import current_app


def _fernet() -> Fernet:
    key = current_app.config["FERNET_KEY"]
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt_secret(secret: str) -> bytes:
    """Return ``secret`` encrypted with the instance's Fernet key."""
    return _fernet().encrypt(secret.encode("utf-8"))


def decrypt_secret(token: bytes) -> str:
    """Return the secret that ``encrypt_secret`` encrypted."""
    return _fernet().decrypt(bytes(token)).decode("utf-8")
