"""Who may send as whom: school and personal accounts, their members, each user's mail settings.

The contract used by compose and archive: ``usable_accounts``, ``default_account``,
``settings_for``, ``sender_for``, ``visible_accounts``, ``may_send_as``. ``sender_check`` is
registered with the delivery engine so that the worker re-checks the right to send before delivery.
"""

from __future__ import annotations

import logging

from email_validator import EmailNotValidError, validate_email
from flask import render_template
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select

from hpmail.accounts import verification
from hpmail.accounts.models import Account, AccountKind, MailSettings, account_member
from hpmail.auth.models import User, utcnow
from hpmail.delivery.models import EmailState, Mailing, MailingKind, OutboundEmail
from hpmail.delivery.outbox import (
    Address,
    EmailSpec,
    InvalidHeader,
    NoTransport,
    Sender,
    queue_mailing,
)
from hpmail.delivery.settings import server_settings
from hpmail.extensions import db

log = logging.getLogger(__name__)

PENDING_STATES = (EmailState.QUEUED, EmailState.SENDING, EmailState.DEFERRED)
SERVER_KINDS = (MailingKind.TEST, MailingKind.VERIFICATION)


class NotAuthorised(PermissionError):
    """The user may not send as this account; the message says why in French."""


class AccountInvalid(ValueError):
    """Input refused; ``errors`` maps a form field to its French message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# --- input rules -------------------------------------------------------------------------------


def _has_control_characters(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def clean_name(value: str | None, field: str, max_length: int = 120) -> str:
    """Return a one-line name (label, display name, question) or raise AccountInvalid.

    Quotes and commas are kept: the MIME builder quotes them; line breaks would inject headers.
    """
    value = (value or "").strip()
    if not value:
        raise AccountInvalid({field: _("This field is required.")})
    if _has_control_characters(value):
        raise AccountInvalid({field: _("Line breaks and control characters are not allowed.")})
    if len(value) > max_length:
        raise AccountInvalid({field: _("At most %(num)d characters.", num=max_length)})
    return value


def clean_address(value: str | None, field: str = "address") -> str:
    """Return a normalised e-mail address or raise AccountInvalid."""
    value = (value or "").strip()
    if not value:
        raise AccountInvalid({field: _("Enter an e-mail address.")})
    if _has_control_characters(value):
        raise AccountInvalid({field: _("Line breaks and control characters are not allowed.")})
    if len(value) > 254:
        raise AccountInvalid({field: _("At most %(num)d characters.", num=254)})
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise AccountInvalid({field: _("This is not a valid e-mail address.")}) from None
    return checked.ascii_email or checked.normalized  # an IDN domain in its ASCII form


def _holders(address: str, account: Account | None):
    query = select(Account).where(func.lower(Account.address) == address.lower())
    if account is not None and account.id is not None:
        query = query.where(Account.id != account.id)
    return db.session.scalars(query)


def _is_unproven_claim(holder: Account) -> bool:
    # A personal account never verified has sent nothing: its address is not really taken, so
    # that a user cannot block the school's own address by typing it in their settings.
    return holder.kind == AccountKind.PERSONAL and holder.verified_at is None


def ensure_address_free(address: str, account: Account | None = None) -> None:
    """Raise AccountInvalid if another account already uses ``address``."""
    if any(not _is_unproven_claim(holder) for holder in _holders(address, account)):
        raise AccountInvalid({"address": _("Another account already uses this address.")})


def _release_address(address: str, account: Account | None = None) -> None:
    """Delete the unverified personal accounts that claim ``address`` (before taking it)."""
    for holder in _holders(address, account):
        if _is_unproven_claim(holder):
            log.info("unverified personal account %s gives up <%s>", holder.id, address)
            db.session.delete(holder)
    db.session.flush()


def _clean_answer(value: str | None, field: str = "answer") -> str:
    value = (value or "").strip()
    if len(verification.normalise_answer(value)) < 2:
        raise AccountInvalid({field: _("Enter an answer of at least 2 characters.")})
    if _has_control_characters(value):
        raise AccountInvalid({field: _("Line breaks and control characters are not allowed.")})
    if len(value) > 200:
        raise AccountInvalid({field: _("At most %(num)d characters.", num=200)})
    return value


def _check_answer(account: Account, answer: str | None) -> None:
    try:
        verification.check_answer(account, answer or "")
    except verification.SecretRefused as refused:
        raise AccountInvalid({"current_answer": str(refused)}) from None


# --- verification e-mails ----------------------------------------------------------------------


def send_code(account: Account, by: User) -> Mailing:
    """Issue a code for ``account`` and queue the e-mail that carries it (dispatch after commit)."""

    settings = server_settings()
    if not settings.sender_address:
        raise verification.CodeRefused(
            _(
                "The server's sender address is not set, so no code can be sent. "
                "Ask the administrator to fill in the e-mail sending settings."
            )
        )
    code = verification.issue_code(account)
    context = {"account": account, "code": code, "minutes": 15}
    with force_locale("fr"):
        subject = _("Your hpmail verification code")
        text = render_template("accounts/email/verification.txt", **context)
        html = render_template("accounts/email/verification.html", **context)
    try:
        mailing = queue_mailing(
            author_id=by.id,
            sender=Sender(address=settings.sender_address, name=settings.sender_name or ""),
            subject=subject,
            text_body=text,
            html_body=html,
            emails=[EmailSpec(to=[Address(account.address)])],
            kind=MailingKind.VERIFICATION,
        )
    except (InvalidHeader, NoTransport) as refused:
        raise verification.CodeRefused(str(refused)) from refused
    log.info("user %s asked a verification code for account %s", by.login, account.id)
    return mailing


def verify_code(account: Account, code: str, by: User) -> None:
    """Mark ``account``'s address as proven by ``code`` or raise CodeRefused."""
    verification.check_code(account, code)
    log.info("user %s verified account %s <%s>", by.login, account.id, account.address)


# --- school accounts ---------------------------------------------------------------------------


def school_accounts() -> list[Account]:
    """Return every school account, by label."""
    return list(
        db.session.scalars(
            select(Account).where(Account.kind == AccountKind.SCHOOL).order_by(Account.label)
        )
    )


def create_school_account(label: str, address: str, by: User) -> tuple[Account, Mailing]:
    """Create an unverified school account and queue its verification code."""
    errors = {}
    try:
        label = clean_name(label, "label")
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    try:
        address = clean_address(address)
        ensure_address_free(address)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise AccountInvalid(errors)
    _release_address(address)
    account = Account(kind=AccountKind.SCHOOL, label=label, address=address, display_name=label)
    db.session.add(account)
    db.session.flush()
    mailing = send_code(account, by)
    log.info("user %s created school account %s <%s>", by.login, account.id, address)
    return account, mailing


def set_secret(account: Account, question: str, answer: str, by: User) -> None:
    """Set the secret question and answer that finish the creation of a verified account."""
    if account.verified_at is None:
        raise AccountInvalid({"code": _("Verify the address with its code first.")})
    if account.secret_answer_hash is not None:
        raise AccountInvalid({"question": _("This account already has a secret question.")})
    errors = {}
    try:
        question = clean_name(question, "question", 200)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    try:
        answer = _clean_answer(answer)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise AccountInvalid(errors)
    account.secret_question = question
    account.secret_answer_hash = verification.hash_answer(answer)
    db.session.flush()
    log.info("user %s finished creating school account %s", by.login, account.id)


def update_school_account(
    account: Account, label: str, address: str, current_answer: str, by: User
) -> bool:
    """Change label and address (after the secret answer); return True if a new code is needed."""
    errors = {}
    try:
        label = clean_name(label, "label")
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    try:
        address = clean_address(address)
        ensure_address_free(address, account)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise AccountInvalid(errors)
    _check_answer(account, current_answer)
    address_changed = address.lower() != account.address.lower()
    if address_changed:
        _release_address(address, account)
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
    """Replace the secret question and answer (after the current answer)."""
    errors = {}
    try:
        question = clean_name(question, "question", 200)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    try:
        answer = _clean_answer(answer)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise AccountInvalid(errors)
    _check_answer(account, current_answer)
    account.secret_question = question
    account.secret_answer_hash = verification.hash_answer(answer)
    db.session.flush()
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
    """Delete ``account`` (after the secret answer) unless e-mails of it wait in the outbox."""
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
    if account.secret_answer_hash is not None:
        _check_answer(account, current_answer)
    log.info("user %s deleted account %s <%s>", by.login, account.id, account.address)
    db.session.delete(account)
    db.session.flush()


# --- authorised users --------------------------------------------------------------------------


def member_checklist(account: Account, query: str = "") -> list[tuple[User, bool]]:
    """Return the active users matching ``query`` (any case or accents), each with whether it
    may send as ``account``."""
    words = verification.normalise_answer((query or "")[:100]).split()
    users = db.session.scalars(
        select(User).where(User.active.is_(True)).order_by(User.display_name, User.login)
    )
    if words:
        # A school has at most a few hundred users: folding accents in Python is simple and fast.
        users = [
            user
            for user in users
            if all(
                word
                in verification.normalise_answer(
                    f"{user.display_name} {user.login} {user.email or ''}"
                )
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
    """Authorise ``user`` to send as ``account``, or withdraw it (effective at once)."""
    if not account.is_school:
        raise AccountInvalid({"members": _("Only a school account has authorised users.")})
    is_member = user in account.members
    if authorised and not is_member:
        account.members.append(user)
    elif not authorised and is_member:
        account.members.remove(user)
    db.session.flush()
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


def transform_to_personal(account: Account, by: User) -> User:
    """Give ``account`` to its only authorised user as a personal account; return that user."""
    reason = transform_refusal(account)
    if reason:
        raise AccountInvalid({"transform": reason})
    owner = account.members[0]
    account.kind = AccountKind.PERSONAL
    account.owner_id = owner.id
    account.display_name = account.display_name or account.label
    account.members.clear()
    db.session.flush()
    log.info("user %s gave account %s to %s as personal", by.login, account.id, owner.login)
    return owner


# --- personal accounts and each user's settings ------------------------------------------------


def personal_accounts(user: User) -> list[Account]:
    """Return the personal accounts ``user`` owns, oldest first."""
    return list(
        db.session.scalars(
            select(Account)
            .where(Account.kind == AccountKind.PERSONAL, Account.owner_id == user.id)
            .order_by(Account.id)
        )
    )


def personal_account(user: User) -> Account | None:
    """Return the personal account ``user`` set up (their first one), if any."""
    accounts = personal_accounts(user)
    return accounts[0] if accounts else None


def save_personal_account(user: User, display_name: str, address: str) -> tuple[Account, bool]:
    """Create or change ``user``'s personal account; return it and whether a code must be sent."""
    errors = {}
    account = personal_account(user)
    try:
        display_name = clean_name(display_name, "display_name")
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    try:
        address = clean_address(address)
        ensure_address_free(address, account)
    except AccountInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise AccountInvalid(errors)
    _release_address(address, account)
    if account is None:
        account = Account(kind=AccountKind.PERSONAL, owner_id=user.id, address=address)
        db.session.add(account)
        address_changed = True
    else:
        address_changed = address.lower() != account.address.lower()
    account.label = display_name
    account.display_name = display_name
    account.address = address
    needs_code = False
    if address_changed:
        if server_settings().require_personal_verification:
            account.verified_at = None
            needs_code = True
        else:
            account.verified_at = utcnow()
    db.session.flush()
    settings = settings_for(user)
    if settings.account_id is None:
        settings.account_id = account.id
    db.session.flush()
    log.info("user %s saved personal account %s <%s>", user.login, account.id, address)
    return account, needs_code


def choose_account(user: User, account_id: int | None) -> Account:
    """Make ``account_id`` the account ``user`` sends from, if they may."""
    account = db.session.get(Account, account_id) if account_id else None
    if account is None or not may_send_as(user.id, account.id):
        raise AccountInvalid({"account_id": _("You may not send from this account.")})
    settings_for(user).account_id = account.id
    db.session.flush()
    log.info("user %s now sends from account %s", user.login, account.id)
    return account


def save_options(user: User, reply_to: str | None, hide_recipients: bool) -> MailSettings:
    """Set ``user``'s reply-to address (empty for none) and hide-recipients switch."""
    reply = (reply_to or "").strip()
    if reply:
        reply = clean_address(reply, "reply_to")
    settings = settings_for(user)
    settings.reply_to = reply or None
    settings.hide_recipients = bool(hide_recipients)
    db.session.flush()
    log.info("user %s changed their mail options", user.login)
    return settings


def other_members(account: Account, user: User) -> list[User]:
    """Return the other users authorised on ``account`` (404-worthy if ``user`` is not one)."""
    return [member for member in account.members if member.id != user.id]


# --- the contract ------------------------------------------------------------------------------


def _is_usable(account: Account) -> bool:
    if account.is_school:
        return account.is_ready
    if account.verified_at is not None:
        return True
    return not server_settings().require_personal_verification


def may_send_as(user_id: int | None, account_id: int | None) -> bool:
    """Tell whether the user may send from the account now (checked at queue time and delivery)."""
    if user_id is None or account_id is None:
        return False
    account = db.session.get(Account, account_id)
    user = db.session.get(User, user_id)
    if account is None or user is None or not user.active or not _is_usable(account):
        return False
    if account.is_school:
        return (
            db.session.scalar(
                select(account_member.c.user_id).where(
                    account_member.c.account_id == account_id, account_member.c.user_id == user_id
                )
            )
            is not None
        )
    return account.owner_id == user_id


def usable_accounts(user: User) -> list[Account]:
    """Return the accounts ``user`` may send from: authorised school accounts, then personal."""
    school = db.session.scalars(
        select(Account)
        .join(account_member, account_member.c.account_id == Account.id)
        .where(Account.kind == AccountKind.SCHOOL, account_member.c.user_id == user.id)
        .order_by(Account.label)
    )
    accounts = [account for account in school if account.is_ready]
    accounts += [account for account in personal_accounts(user) if _is_usable(account)]
    return accounts


def settings_for(user: User) -> MailSettings:
    """Return ``user``'s mail settings, creating them on first use."""
    settings = db.session.get(MailSettings, user.id)
    if settings is None:
        settings = MailSettings(user_id=user.id, hide_recipients=False)
        db.session.add(settings)
        db.session.flush()
    return settings


def default_account(user: User) -> Account | None:
    """Return the account ``user`` sends from by default: their choice, else a school one."""
    accounts = usable_accounts(user)
    chosen = db.session.get(MailSettings, user.id)
    if chosen is not None and chosen.account_id is not None:
        for account in accounts:
            if account.id == chosen.account_id:
                return account
    return accounts[0] if accounts else None


def sender_for(user: User, account_id: int | None):
    """Return the Sender for ``user`` sending as ``account_id`` or raise NotAuthorised."""
    if not may_send_as(user.id, account_id):
        log.warning("user %s refused sending as account %s", user.login, account_id)
        raise NotAuthorised(_("You are not (or no longer) authorised to send from this account."))
    account = db.session.get(Account, account_id)
    settings = db.session.get(MailSettings, user.id)
    reply_to = settings.reply_to if settings is not None else None
    if reply_to and reply_to.lower() == account.address.lower():
        reply_to = None
    return Sender(
        address=account.address, name=account.sender_name, reply_to=reply_to, account_id=account.id
    )


def visible_accounts(user: User) -> list[Account]:
    """Return the accounts whose sent e-mails ``user`` may read in the archive."""
    if user.is_admin:
        return list(db.session.scalars(select(Account).order_by(Account.label)))
    school = db.session.scalars(
        select(Account)
        .join(account_member, account_member.c.account_id == Account.id)
        .where(Account.kind == AccountKind.SCHOOL, account_member.c.user_id == user.id)
        .order_by(Account.label)
    )
    return list(school) + personal_accounts(user)


def sender_check(mailing: Mailing) -> str | None:
    """Return why the worker must not send ``mailing`` now, or None (registered with delivery)."""
    if mailing.kind in SERVER_KINDS:
        return None
    with force_locale("fr"):
        if mailing.account_id is None:
            server_address = server_settings().sender_address or ""
            if server_address and mailing.sender_address.lower() == server_address.lower():
                return None
            return _("The sending account of this e-mail was deleted: it is not sent.")
        if mailing.author_id is None:
            return _("The author of this e-mail no longer exists: it is not sent.")
        if not may_send_as(mailing.author_id, mailing.account_id):
            return _(
                "The author is no longer authorised to send from %(address)s: "
                "this e-mail is not sent.",
                address=mailing.sender_address,
            )
    return None
