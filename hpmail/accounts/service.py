"""Who may send as whom: the right to send, verification e-mails, personal accounts, settings.

The contract used by compose and archive: ``usable_accounts``, ``default_account``,
``settings_for``, ``sender_for``, ``visible_accounts``, ``may_send_as``. ``sender_check`` is
registered with the delivery engine so that the worker re-checks the right to send before delivery.
"""

from __future__ import annotations

import logging

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from hpmail.accounts import verification
from hpmail.accounts.models import Account, AccountKind, MailSettings, account_member
from hpmail.accounts.rules import (
    AccountInvalid,
    clean_address,
    clean_name_and_address,
    ensure_address_free,
)
from hpmail.auth.models import User
from hpmail.core.time import utcnow
from hpmail.extensions import db
from hpmail.outbox.api import (
    Address,
    EmailSpec,
    InvalidHeader,
    NoTransport,
    Sender,
    queue_mailing,
)
from hpmail.outbox.models import GENERATED_KINDS, Mailing, MailingKind
from hpmail.outbox.settings import server_settings

log = logging.getLogger(__name__)

__all__ = [
    "AccountInvalid",
    "NotAuthorised",
    "default_account",
    "may_send_as",
    "sender_check",
    "sender_for",
    "saved_settings",
    "settings_for",
    "usable_accounts",
    "visible_accounts",
]


class NotAuthorised(PermissionError):
    """The user may not send as this account; the message says why (translated)."""


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
    context = {"account": account, "code": code, "minutes": verification.code_minutes()}
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
    """Mark ``account``'s address as proven by ``code`` or raise CodeRefused.

    Another user's account may have proven the same address first: then this one is refused.
    """
    try:
        ensure_address_free(account.address, account)
    except AccountInvalid as taken:
        raise verification.CodeRefused(str(taken)) from None
    verification.check_code(account, code)
    log.info("user %s verified account %s <%s>", by.login, account.id, account.address)


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
    account = personal_account(user)
    display_name, address = clean_name_and_address(display_name, "display_name", address, account)
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
    if server_settings().require_personal_verification:
        return False
    try:  # an unproven claim never sends as an address another account has proven
        ensure_address_free(account.address, account)
    except AccountInvalid:
        return False
    return True


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


def authorised_school_accounts(user: User) -> list[Account]:
    """Return the school accounts ``user`` is authorised on, by label."""
    return list(
        db.session.scalars(
            select(Account)
            .join(account_member, account_member.c.account_id == Account.id)
            .where(Account.kind == AccountKind.SCHOOL, account_member.c.user_id == user.id)
            .order_by(Account.label)
        )
    )


def usable_accounts(user: User) -> list[Account]:
    """Return the accounts ``user`` may send from: authorised school accounts, then personal."""
    accounts = [account for account in authorised_school_accounts(user) if account.is_ready]
    accounts += [account for account in personal_accounts(user) if _is_usable(account)]
    return accounts


def settings_for(user: User) -> MailSettings:
    """Return ``user``'s mail settings, creating them on first use.

    Recipients are hidden (Bcc) until the user chooses otherwise: an e-mail to a cohort must not
    hand every student's address to every other student unless someone decided it should.
    """
    settings = db.session.get(MailSettings, user.id)
    if settings is None:
        settings = MailSettings(user_id=user.id, hide_recipients=True)
        db.session.add(settings)
        db.session.flush()
    return settings


def saved_settings(user: User) -> MailSettings:
    """Return ``user``'s mail settings, or unsaved defaults: for pages that only read (no write).

    The defaults are those ``settings_for`` would create, so a GET never takes the write lock.
    """
    settings = db.session.get(MailSettings, user.id)
    return settings or MailSettings(user_id=user.id, hide_recipients=True)


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
    """Return the accounts whose sent e-mails ``user`` may read in the archive.

    The same rule for everyone, the admin included: one's own personal account and the school
    accounts one is authorised on. Nobody reads another user's personal mail; the admin runs the
    outbox (Serveur › File d'envoi) with subjects and states, not the archive of others.
    """
    return authorised_school_accounts(user) + personal_accounts(user)


def sender_check(mailing: Mailing) -> str | None:
    """Return why the worker must not send ``mailing`` now, or None (registered with delivery)."""
    if mailing.kind in GENERATED_KINDS:
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
