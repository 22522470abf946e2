"""Proof of an address (6-digit codes) and of the admin's knowledge (secret answers).

Codes are stored as an HMAC keyed by the app's secret key and bound to the account and the
address; secret answers are hashed like passwords after normalising case, accents and spaces.
Both are throttled with counters kept in the database.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import unicodedata
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, or_, select, update
from werkzeug.security import check_password_hash

from hpmail.accounts.models import Account, VerificationCode
from hpmail.auth.models import hash_secret
from hpmail.core.forms import InputRefused
from hpmail.core.time import utcnow
from hpmail.extensions import db

log = logging.getLogger(__name__)


class CodeRefused(InputRefused):
    """A code was not accepted, or a new one cannot be sent yet; the message says why."""


class SecretRefused(InputRefused):
    """A secret answer was wrong or answers are locked for a while; the message says why."""


def _config(name: str) -> int:
    return int(current_app.config[name])


def code_minutes() -> int:
    """Return how many minutes a code lasts, as users are told (from the configuration)."""
    return max(1, _config("VERIFICATION_CODE_TTL_SECONDS") // 60)


def hash_code(account_id: int, address: str, code: str) -> str:
    """Return the keyed hash of ``code`` for this account and address."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"verification:{account_id}:{address.lower()}:{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def latest_code(account: Account) -> VerificationCode | None:
    """Return the most recent code sent for ``account``, if any."""
    return db.session.scalar(
        select(VerificationCode)
        .where(VerificationCode.account_id == account.id)
        .order_by(VerificationCode.id.desc())
        .limit(1)
    )


def seconds_before_resend(account: Account) -> int:
    """Return how many seconds remain before another code may be sent (0 if now)."""
    last = latest_code(account)
    if last is None:
        return 0
    wait = last.sent_at + timedelta(seconds=_config("VERIFICATION_RESEND_SECONDS")) - utcnow()
    return max(0, int(wait.total_seconds() + 0.999))


def issue_code(account: Account) -> str:
    """Make a new code for ``account`` (ending any earlier one) and return it in clear once."""
    wait = seconds_before_resend(account)
    if wait:
        raise CodeRefused(
            ngettext(
                "Wait %(num)d second before asking for a new code.",
                "Wait %(num)d seconds before asking for a new code.",
                wait,
            )
        )
    hour_ago = utcnow() - timedelta(hours=1)
    sent_last_hour = db.session.scalar(
        select(func.count())
        .select_from(VerificationCode)
        .where(VerificationCode.account_id == account.id, VerificationCode.sent_at >= hour_ago)
    )
    if sent_last_hour >= _config("VERIFICATION_MAX_CODES_PER_HOUR"):
        raise CodeRefused(_("Too many codes were sent for this address. Try again in an hour."))
    now = utcnow()
    for earlier in db.session.scalars(
        select(VerificationCode).where(
            VerificationCode.account_id == account.id, VerificationCode.used_at.is_(None)
        )
    ):
        earlier.used_at = now  # a new code ends the earlier attempt
    code = f"{secrets.randbelow(1_000_000):06d}"
    db.session.add(
        VerificationCode(
            account_id=account.id,
            address=account.address,
            code_hash=hash_code(account.id, account.address, code),
            sent_at=now,
            expires_at=now + timedelta(seconds=_config("VERIFICATION_CODE_TTL_SECONDS")),
            tries=0,
        )
    )
    db.session.flush()
    log.info("verification code issued for account %s <%s>", account.id, account.address)
    return code


def check_code(account: Account, typed: str) -> None:
    """Accept ``typed`` as the code of ``account`` (marking it used) or raise CodeRefused."""
    typed = "".join((typed or "").split())
    if not (len(typed) == 6 and typed.isascii() and typed.isdigit()):
        raise CodeRefused(_("Type the 6 digits of the code you received."))
    current = latest_code(account)
    if current is None:
        raise CodeRefused(_("No code was sent for this address: ask for a new code."))
    if current.used_at is not None:
        if current.tries >= _config("VERIFICATION_MAX_TRIES"):
            raise CodeRefused(
                _("Too many wrong codes: this code no longer works. Ask for a new code.")
            )
        raise CodeRefused(_("This code has already been used or replaced. Ask for a new code."))
    if current.expires_at <= utcnow():
        raise CodeRefused(
            ngettext(
                "This code has expired (it lasts %(num)d minute). Ask for a new code.",
                "This code has expired (it lasts %(num)d minutes). Ask for a new code.",
                code_minutes(),
            )
        )
    if current.address.lower() != account.address.lower():
        raise CodeRefused(
            _("The address has changed since this code was sent. Ask for a new code.")
        )
    too_many = _("Too many wrong codes: this code no longer works. Ask for a new code.")
    max_tries = _config("VERIFICATION_MAX_TRIES")
    # Claim one try with a conditional UPDATE, so that parallel guesses cannot exceed the limit.
    claimed = db.session.execute(
        update(VerificationCode)
        .where(
            VerificationCode.id == current.id,
            VerificationCode.used_at.is_(None),
            VerificationCode.tries < max_tries,
        )
        .values(tries=VerificationCode.tries + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(current)
    if not claimed:
        raise CodeRefused(too_many)
    now = utcnow()
    if hmac.compare_digest(hash_code(account.id, account.address, typed), current.code_hash):
        if not _end_code(current, now):
            raise CodeRefused(_("This code has already been used or replaced. Ask for a new code."))
        account.verified_at = now
        db.session.flush()
        log.info("account %s <%s> verified", account.id, account.address)
        return
    left = max_tries - current.tries
    log.info("wrong verification code for account %s (%s left)", account.id, left)
    if left <= 0:
        _end_code(current, now)
        raise CodeRefused(too_many)
    raise CodeRefused(
        ngettext("Wrong code. %(num)d try left.", "Wrong code. %(num)d tries left.", left)
    )


def _end_code(code: VerificationCode, now) -> bool:
    """Mark ``code`` used unless it already is; return whether this call did it (single use)."""
    ended = db.session.execute(
        update(VerificationCode)
        .where(VerificationCode.id == code.id, VerificationCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(code)
    return bool(ended)


def normalise_answer(answer: str) -> str:
    """Return ``answer`` without accents, case or repeated spaces, for hashing and comparing."""
    decomposed = unicodedata.normalize("NFKD", answer or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def hash_answer(answer: str) -> str:
    """Return the stored form of a secret answer."""
    return hash_secret(normalise_answer(answer))


def check_answer(account: Account, answer: str) -> None:
    """Accept the secret answer of ``account`` or raise SecretRefused, counting failures."""
    if account.secret_answer_hash is None:
        return
    now = utcnow()
    max_failures = _config("SECRET_ANSWER_MAX_FAILURES")
    # Count this answer as a failure first, with a conditional UPDATE (lock and limit in the
    # WHERE clause), so that parallel guesses cannot get past the limit; a right answer resets it.
    claimed = db.session.execute(
        update(Account)
        .where(
            Account.id == account.id,
            or_(Account.secret_locked_until.is_(None), Account.secret_locked_until <= now),
            Account.secret_failures < max_failures,
        )
        .values(secret_failures=Account.secret_failures + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(account, ["secret_failures", "secret_locked_until"])
    if not claimed:
        locked_until = account.secret_locked_until or now
        minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
        raise SecretRefused(
            ngettext(
                "Too many wrong answers. Try again in %(num)d minute.",
                "Too many wrong answers. Try again in %(num)d minutes.",
                minutes,
            )
        )
    normalised = normalise_answer(answer)
    if normalised and check_password_hash(account.secret_answer_hash, normalised):
        _set_secret_counter(account, failures=0, locked_until=None)
        return
    log.warning("wrong secret answer for account %s (%s)", account.id, account.secret_failures)
    if account.secret_failures >= max_failures:
        lock_seconds = _config("SECRET_ANSWER_LOCK_SECONDS")
        _set_secret_counter(account, failures=0, locked_until=now + timedelta(seconds=lock_seconds))
        raise SecretRefused(
            ngettext(
                "Too many wrong answers. Changes to this account are locked for %(num)d minute.",
                "Too many wrong answers. Changes to this account are locked for %(num)d minutes.",
                max(1, lock_seconds // 60),
            )
        )
    raise SecretRefused(_("Wrong secret answer. Nothing was changed."))


def _set_secret_counter(account: Account, failures: int, locked_until) -> None:
    db.session.execute(
        update(Account)
        .where(Account.id == account.id)
        .values(secret_failures=failures, secret_locked_until=locked_until)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(account, ["secret_failures", "secret_locked_until"])
