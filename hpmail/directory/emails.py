"""Whether a person's address can receive e-mail (syntax only, no DNS)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from hpmail.directory.models import EmailStatus


def email_status_of(address: str | None) -> EmailStatus:
    """Return missing, valid or invalid for ``address``; an invalid address is kept by callers."""
    if address is None or not address.strip():
        return EmailStatus.MISSING
    try:
        validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError:
        return EmailStatus.INVALID
    return EmailStatus.VALID
