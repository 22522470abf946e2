"""The one check of e-mail address syntax that every form, import and list uses.

Syntax only (email-validator, no DNS look-up). Local parts must be ASCII: the outbox speaks SMTP
without the SMTPUTF8 extension, so an address it could not carry must not be counted as reachable.
An internationalised domain is returned in its ASCII (IDNA) form, which every server accepts.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

__all__ = ["EmailNotValidError", "normalized_address"]


def normalized_address(value: str) -> str:
    """Return ``value`` as a deliverable address in normal form, or raise EmailNotValidError."""
    checked = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    return checked.ascii_email or checked.normalized
