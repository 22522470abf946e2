"""School (shared) accounts: creation, secret question, edits, deletion, authorised users, and
making one the personal account of its only user."""

from __future__ import annotations

import logging

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from hpmail.accounts import audit, verification
from hpmail.accounts.models import Account, AccountKind, account_member
from hpmail.accounts.rules import AccountInvalid, clean_name_and_address, clean_secret
from hpmail.accounts.service import send_code
from hpmail.auth.models import User
from hpmail.core.text import fold
from hpmail.extensions import db
from hpmail.outbox.models import EmailState, Mailing, OutboundEmail

log = logging.getLogger(__name__)

PENDING_STATES = (EmailState.QUEUED, EmailState.SENDING, EmailState.DEFERRED)


def school_accounts() -> list[Account]:
    """Return every school account, by label."""
    return list(
        db.session.scalars(
            select(Account)
            .where(Account.kind == AccountKind.SCHOOL)
            .order_by(Account.label)
            .options(selectinload(Account.members))  # the list shows each account's member count
        )
    )


def create_school_account(label: str, address: str, by: User) -> tuple[Account, Mailing]:
    """Create an unverified school account and queue its verification code."""
    label, address = clean_name_and_address(label, "label", address)
    account = Account(kind=AccountKind.SCHOOL, label=label, address=address, display_name=label)
    db.session.add(account)
    db.session.flush()
    mailing = send_code(account, by)
    audit.record(account, by, "created")
    log.info("user %s created school account %s <%s>", by.login, account.id, address)
    return account, mailing


def set_secret(account: Account, question: str, answer: str, by: User) -> None:
    """Set the secret question and answer that finish the creation of a verified account."""
    if account.verified_at is None:
        raise AccountInvalid({"code": _("Verify the address with its code first.")})
    if account.secret_answer_hash is not None:
        raise AccountInvalid({"question": _("This account already has a secret question.")})
    question, answer = clean_secret(question, answer)
    account.secret_question = question
    account.secret_answer_hash = verification.hash_answer(answer)
    db.session.flush()
    audit.record(account, by, "secret_set")
    # The admin has just typed the answer: the account is unlocked for them, as after an unlock.
    audit.unlock(account, answer, by)
    log.info("user %s finished creating school account %s", by.login, account.id)


def update_school_account(
    account: Account, label: str, address: str, current_answer: str, by: User
) -> bool:
    """Change label and address (answer given or account unlocked); return True if a new code
    is needed."""
    label, address = clean_name_and_address(label, "label", address, account)
    audit.authorise_change(account, current_answer, by)
    address_changed = address.lower() != account.address.lower()
    pairs = ((account.label, label), (account.address, address))
    changes = [f"{before} → {after}" for before, after in pairs if before != after]
    if changes:
        audit.record(account, by, "edited", "; ".join(changes))
    account.label = label
    account.display_name = label
    account.address = address
    if address_changed:
        account.verified_at = None  # the new address must be proven
    db.session.flush()
    log.info(
        "user %s edited school account %s (address changed: %s)",
        by.login,
        account.id,
        address_changed,
    )
    return address_changed


def change_secret(
    account: Account, current_answer: str, question: str, answer: str, by: User
) -> None:
    """Replace the secret question and answer (always after the current answer)."""
    question, answer = clean_secret(question, answer)
    audit.authorise_change(account, current_answer, by, answer_required=True)
    account.secret_question = question
    account.secret_answer_hash = verification.hash_answer(answer)
    db.session.flush()
    audit.record(account, by, "secret_changed")
    log.info("user %s changed the secret of account %s", by.login, account.id)


def pending_emails(account: Account) -> int:
    """Return how many e-mails of ``account`` still wait in the outbox."""
    return db.session.scalar(
        select(func.count())
        .select_from(OutboundEmail)
        .join(Mailing, Mailing.id == OutboundEmail.mailing_id)
        .where(Mailing.account_id == account.id, OutboundEmail.state.in_(PENDING_STATES))
    )


def delete_account(account: Account, current_answer: str, by: User) -> None:
    """Delete ``account`` (answer given or account unlocked) unless e-mails of it wait in the
    outbox; its audit lines are kept."""
    waiting = pending_emails(account)
    if waiting:
        raise AccountInvalid(
            {
                "delete": ngettext(
                    "%(num)d e-mail of this account is still in the outbox. Delete the "
                    "account once it is sent or cancelled.",
                    "%(num)d e-mails of this account are still in the outbox. Delete the "
                    "account once they are sent or cancelled.",
                    waiting,
                )
            }
        )
    audit.authorise_change(account, current_answer, by)
    audit.record(account, by, "deleted")
    audit.forget_account(account)
    log.info("user %s deleted account %s <%s>", by.login, account.id, account.address)
    db.session.delete(account)
    db.session.flush()


# --- authorised users --------------------------------------------------------------------------


def member_checklist(account: Account, query: str = "") -> list[tuple[User, bool]]:
    """Return the active users matching ``query`` (any case or accents), each with whether it
    may send as ``account``."""
    words = fold((query or "")[:100]).split()
    users = db.session.scalars(
        select(User).where(User.active.is_(True)).order_by(User.display_name, User.login)
    )
    if words:
        # A school has at most a few hundred users: folding accents in Python is simple and fast.
        users = [
            user
            for user in users
            if all(
                word in fold(f"{user.display_name} {user.login} {user.email or ''}")
                for word in words
            )
        ]
    members = set(
        db.session.scalars(
            select(account_member.c.user_id).where(account_member.c.account_id == account.id)
        )
    )
    return [(user, user.id in members) for user in users]


def set_member(account: Account, user: User, authorised: bool, by: User) -> None:
    """Authorise ``user`` to send as ``account``, or withdraw it (effective at once; the account
    must be unlocked)."""
    if not account.is_school:
        raise AccountInvalid({"members": _("Only a school account has authorised users.")})
    audit.authorise_change(account, None, by)
    is_member = user in account.members
    if authorised == is_member:
        return
    if authorised:
        account.members.append(user)
    else:
        account.members.remove(user)
    db.session.flush()
    who = f"{user.display_name} ({user.login})"
    audit.record(account, by, "member_added" if authorised else "member_removed", who)
    log.info(
        "user %s %s user %s on account %s",
        by.login,
        "authorised" if authorised else "removed",
        user.login,
        account.id,
    )


def transform_refusal(account: Account) -> str | None:
    """Return why ``account`` cannot become a personal account, or None if it can."""
    if not account.is_school:
        return _("This account is already a personal account.")
    if not account.is_ready:
        return _("Finish creating the account first.")
    count = len(account.members)
    if count == 0:
        return _("No user is authorised on this account: authorise exactly one user first.")
    if count > 1:
        return _(
            "%(num)d users are authorised on this account: keep exactly one to make it personal.",
            num=count,
        )
    return None


def transform_to_personal(account: Account, by: User, current_answer: str | None = None) -> User:
    """Give ``account`` to its only authorised user as a personal account (answer given or
    account unlocked); return that user."""
    reason = transform_refusal(account)
    if reason:
        raise AccountInvalid({"transform": reason})
    audit.authorise_change(account, current_answer, by)
    owner = account.members[0]
    audit.record(account, by, "transformed", f"{owner.display_name} ({owner.login})")
    account.kind = AccountKind.PERSONAL
    account.owner_id = owner.id
    account.display_name = account.display_name or account.label
    account.members.clear()
    db.session.flush()
    log.info("user %s gave account %s to %s as personal", by.login, account.id, owner.login)
    return owner
