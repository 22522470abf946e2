"""SMTP secrets at rest: Fernet with the key kept in ``instance/fernet.key`` (``FERNET_KEY``)."""

from __future__ import annotations

from cryptography.fernet import Fernet
from flask import current_app


def instance_fernet() -> Fernet:
    """Return the Fernet of the instance's key (``FERNET_KEY``); ``ValueError`` if it is not one."""
    key = current_app.config.get("FERNET_KEY") or b""
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt_secret(secret: str) -> bytes:
    """Return ``secret`` encrypted with the instance's Fernet key."""
    return instance_fernet().encrypt(secret.encode("utf-8"))


def decrypt_secret(token: bytes) -> str:
    """Return the secret that ``encrypt_secret`` encrypted."""
    return instance_fernet().decrypt(bytes(token)).decode("utf-8")
