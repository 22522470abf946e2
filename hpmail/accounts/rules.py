"""The rules every account form obeys: names on one line, valid and free addresses, answers."""

from __future__ import annotations

import logging

from flask_babel import gettext as _
from sqlalchemy import func, select

from hpmail.accounts import verification
from hpmail.accounts.models import Account, AccountKind
from hpmail.core.addresses import EmailNotValidError, normalized_address
from hpmail.core.forms import InputRefused
from hpmail.core.text import is_header_safe
from hpmail.extensions import db

log = logging.getLogger(__name__)


class AccountInvalid(InputRefused):
    """An account's input refused; ``errors`` maps a form field to its messages."""


def clean_name(value: str | None, field: str, max_length: int = 120) -> str:
    """Return a one-line name (label, display name, question) or raise AccountInvalid.

    Quotes and commas are kept: the MIME builder quotes them; line breaks would inject headers.
    """
    value = (value or "").strip()
    if not value:
        raise AccountInvalid({field: _("This field is required.")})
    if not is_header_safe(value):
        raise AccountInvalid({field: _("Line breaks and control characters are not allowed.")})
    if len(value) > max_length:
        raise AccountInvalid({field: _("At most %(num)d characters.", num=max_length)})
    return value


def clean_address(value: str | None, field: str = "address") -> str:
    """Return a normalised e-mail address or raise AccountInvalid."""
    value = (value or "").strip()
    if not value:
        raise AccountInvalid({field: _("Enter an e-mail address.")})
    if not is_header_safe(value):
        raise AccountInvalid({field: _("Line breaks and control characters are not allowed.")})
    if len(value) > 254:
        raise AccountInvalid({field: _("At most %(num)d characters.", num=254)})
    try:
        return normalized_address(value)
    except EmailNotValidError:
        raise AccountInvalid({field: _("This is not a valid e-mail address.")}) from None


def _holders(address: str, account: Account | None):
    query = select(Account).where(func.lower(Account.address) == address.lower())
    if account is not None and account.id is not None:
        query = query.where(Account.id != account.id)
    return db.session.scalars(query)


def _is_unproven_claim(holder: Account) -> bool:
    # A personal account not verified has not proven its address: the address is not really
    # taken, so that a user cannot block the school's own address by typing it in their settings.
    return holder.kind == AccountKind.PERSONAL and holder.verified_at is None


def ensure_address_free(address: str, account: Account | None = None) -> None:
    """Raise AccountInvalid if another account already uses ``address``.

    Only proven holders count (a school account, a verified personal account). Unproven claims
    of other users are never deleted nor changed: several may wait for the same code-proof, the
    first one verified takes the address (``verify_code`` checks this again), and the others
    keep their account and archive. The database keeps proven addresses unique.
    """
    if any(not _is_unproven_claim(holder) for holder in _holders(address, account)):
        raise AccountInvalid({"address": _("Another account already uses this address.")})


def clean_answer(value: str | None, field: str = "answer") -> str:
    value = (value or "").strip()
    if len(verification.normalise_answer(value)) < 2:
        raise AccountInvalid({field: _("Enter an answer of at least 2 characters.")})
    if not is_header_safe(value):
        raise AccountInvalid({field: _("Line breaks and control characters are not allowed.")})
    if len(value) > 200:
        raise AccountInvalid({field: _("At most %(num)d characters.", num=200)})
    return value


def clean_name_and_address(
    name: str | None, field: str, address: str | None, account: Account | None = None
) -> tuple[str, str]:
    """Return the cleaned name and free address, or raise AccountInvalid with every error."""
    errors = {}
    try:
        name = clean_name(name, field)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    try:
        address = clean_address(address)
        ensure_address_free(address, account)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise AccountInvalid(errors)
    return name, address


def clean_secret(question: str | None, answer: str | None) -> tuple[str, str]:
    """Return the cleaned secret question and answer, or raise AccountInvalid with every error."""
    errors = {}
    try:
        question = clean_name(question, "question", 200)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    try:
        answer = clean_answer(answer)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise AccountInvalid(errors)
    return question, answer


def check_secret_answer(account: Account, answer: str | None) -> None:
    try:
        verification.check_answer(account, answer or "")
    except verification.SecretRefused as refused:
        raise AccountInvalid({"current_answer": str(refused)}) from None
