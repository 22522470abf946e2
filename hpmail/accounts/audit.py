"""Changes to a school account: unlocked by its secret answer, each one written to an audit line.

Every change to a school account — authorised users, transform, label or address, secret,
deletion — goes through ``authorise_change``. The secret answer (checked and throttled by
``verification.check_answer``), or a code e-mailed to the account's address (single-use, few
tries, few per hour: ``verification.check_code``) for an admin who forgot the answer, unlocks
the account for this browser session and this user for ``UNLOCK_MINUTES``: the members checklist
saves each box as it is ticked, and asking the answer on every tick would make it unusable. A
form that carries the answer unlocks and changes at once; the change of the secret always asks
for the current answer. An account not finished yet (no secret) has proven nothing but its
address: only its deletion is possible, as before.

Each change, each unlock and each wrong answer or code writes an audit line (who, when, what),
listed on the account's pane.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from hpmail.accounts import verification
from hpmail.accounts.models import Account, AccountAuditLine
from hpmail.accounts.rules import AccountInvalid, check_secret_answer
from hpmail.auth.models import User
from hpmail.core.time import utcnow
from hpmail.extensions import db

log = logging.getLogger(__name__)

UNLOCK_MINUTES = 10
SESSION_KEY = "unlocked_accounts"
AUDIT_LINES_SHOWN = 30

ACTIONS = {
    "created": _l("Account created"),
    "secret_set": _l("Secret question set"),
    "unlocked": _l("Changes unlocked"),
    "wrong_answer": _l("Wrong secret answer"),
    "unlocked_by_code": _l("Changes unlocked with a code sent to the address"),
    "wrong_code": _l("Wrong unlock code"),
    "member_added": _l("User authorised"),
    "member_removed": _l("User removed"),
    "edited": _l("Label or address changed"),
    "secret_changed": _l("Secret question changed"),
    "transformed": _l("Made the personal account of"),
    "deleted": _l("Account deleted"),
}


def record(account: Account, by: User, action: str, detail: str = "") -> None:
    """Write an audit line: ``by`` did ``action`` (a key of ACTIONS) on ``account`` now."""
    db.session.add(
        AccountAuditLine(
            account_id=account.id,
            account_address=account.address,
            user_id=by.id,
            user_name=f"{by.display_name} ({by.login})"[:120],
            at=utcnow(),
            action=action,
            detail=detail[:300],
        )
    )
    db.session.flush()


def audit_lines(account: Account) -> list[AccountAuditLine]:
    """Return the latest audit lines of ``account``, newest first."""
    return list(
        db.session.scalars(
            select(AccountAuditLine)
            .where(AccountAuditLine.account_id == account.id)
            .order_by(AccountAuditLine.id.desc())
            .limit(AUDIT_LINES_SHOWN)
        )
    )


def forget_account(account: Account) -> None:
    """Keep the audit lines of a deleted account (its address is copied in each line)."""
    db.session.execute(
        update(AccountAuditLine)
        .where(AccountAuditLine.account_id == account.id)
        .values(account_id=None)
        .execution_options(synchronize_session=False)
    )


def unlocked_until(account: Account, by: User):
    """Return until when ``by`` may change ``account`` in this session (UTC), or None."""
    entry = session.get(SESSION_KEY, {}).get(str(account.id))
    if not entry or entry[0] != by.id:
        return None
    until = datetime.fromisoformat(entry[1])
    return until if until > utcnow() else None


def unlock(account: Account, answer: str | None, by: User) -> None:
    """Check the secret answer of ``account`` (throttled) and unlock it for ``by`` a while."""
    try:
        check_secret_answer(account, answer)
    except AccountInvalid:
        record(account, by, "wrong_answer")
        raise
    _remember_unlock(account, by)
    record(account, by, "unlocked")
    log.info("user %s unlocked school account %s", by.login, account.id)


def unlock_with_code(account: Account, code: str | None, by: User) -> None:
    """Check a code e-mailed to ``account``'s address (throttled) and unlock it for ``by``."""
    try:
        verification.check_code(account, code or "")
    except verification.CodeRefused as refused:
        record(account, by, "wrong_code")
        raise AccountInvalid({"code": str(refused)}) from None
    _remember_unlock(account, by)
    record(account, by, "unlocked_by_code")
    log.info("user %s unlocked school account %s with a code", by.login, account.id)


def _remember_unlock(account: Account, by: User) -> None:
    until = utcnow() + timedelta(minutes=UNLOCK_MINUTES)
    unlocked = {
        key: value
        for key, value in session.get(SESSION_KEY, {}).items()
        if datetime.fromisoformat(value[1]) > utcnow()
    }
    unlocked[str(account.id)] = [by.id, until.isoformat()]
    session[SESSION_KEY] = unlocked


def authorise_change(
    account: Account, answer: str | None, by: User, answer_required: bool = False
) -> None:
    """Let ``by`` change ``account`` if they give its answer now or unlocked it, else raise."""
    if account.secret_answer_hash is None:
        return
    if (answer or "").strip() or answer_required:
        unlock(account, answer, by)
        return
    if unlocked_until(account, by) is None:
        raise AccountInvalid(
            {"current_answer": _("Give the secret answer to unlock the changes to this account.")}
        )
