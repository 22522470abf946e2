"""Whether a person's address can receive e-mail (syntax only, no DNS)."""

from __future__ import annotations

from hpmail.core.addresses import EmailNotValidError, normalized_address
from hpmail.directory.models import EmailStatus


def email_status_of(address: str | None) -> EmailStatus:
    """Return missing, valid or invalid for ``address``; an invalid address is kept by callers."""
    if address is None or not address.strip():
        return EmailStatus.MISSING
    try:
        normalized_address(address)
    except EmailNotValidError:
        return EmailStatus.INVALID
    return EmailStatus.VALID
