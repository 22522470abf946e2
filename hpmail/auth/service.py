"""Sign-in with throttling, and the users' lifecycle (created, deactivated, reset, linked)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from math import ceil

from flask import current_app
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from hpmail.auth.models import Role, SignInAttempt, User
from hpmail.core.forms import InputRefused
from hpmail.core.text import fold
from hpmail.core.time import utcnow
from hpmail.directory.models import Person
from hpmail.extensions import db

log = logging.getLogger(__name__)

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 200
# Sign-in attempts older than this are deleted (never less than the throttling window).
ATTEMPTS_KEPT = timedelta(days=1)
# Readable without ambiguity when read aloud or copied by hand: no 0/O, 1/l/I.
READABLE_CHARACTERS = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@cache
def _dummy_hash(method: str) -> str:
    """Return the hash checked for an unknown login, so that it takes as long as a known one."""
    return generate_password_hash("not a password of anyone", method=method)


class SignInRefused(Exception):
    """The sign-in failed; ``wait`` (when not None) says failures make the user wait that long."""

    def __init__(self, wait: timedelta | None = None):
        super().__init__(f"wait {wait}" if wait else "bad credentials")
        self.wait = wait

    @property
    def throttled(self) -> bool:
        return self.wait is not None

    def message(self) -> str:
        """Say, in the user's language, how long to wait."""
        seconds = ceil(self.wait.total_seconds()) if self.wait else 0
        return _(
            "Too many failed attempts. Try again in %(wait)s.",
            wait=format_timedelta(timedelta(seconds=max(seconds, 1)), threshold=1),
        )


class UserChangeRefused(InputRefused):
    """A change to a user that the rules forbid, shown beside ``field`` (or above the form)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message, field=field)


# --- sign-in ---------------------------------------------------------------------------------


def login_key(login: str) -> str:
    """Return the form of a login that sign-ins are looked up and counted by.

    Case and spaces do not matter (logins have no spaces), so "Admin " and "admin" are one login.
    """
    return "".join(login.split()).lower()[:80]


@dataclass(frozen=True)
class Slowdown:
    """Sign-ins slowed down by failures: one login from one address, or (login None) an address."""

    login: str | None
    address: str
    failures: int
    until: datetime


def _delay(failures_over: int) -> timedelta:
    """Return the wait after ``failures_over`` failures beyond the free ones (doubles each time)."""
    config = current_app.config
    seconds = config["SIGNIN_FIRST_DELAY_SECONDS"] * 2 ** min(failures_over, 30)
    return timedelta(seconds=min(seconds, config["SIGNIN_MAX_DELAY_SECONDS"]))


def _failures(*conditions) -> tuple[int, datetime | None]:
    """Return how many failures match ``conditions`` in the window, and when the last was."""
    since = utcnow() - timedelta(seconds=current_app.config["SIGNIN_WINDOW_SECONDS"])
    query = select(func.count(), func.max(SignInAttempt.at)).where(
        *conditions, SignInAttempt.succeeded.is_(False), SignInAttempt.at >= since
    )
    count, last = db.session.execute(query).one()
    return count, last


def _known_from(login: str, address: str) -> bool:
    """Tell whether ``login`` signed in from ``address`` lately."""
    since = utcnow() - timedelta(days=current_app.config["SIGNIN_KNOWN_ADDRESS_DAYS"])
    query = select(SignInAttempt.id).where(
        SignInAttempt.login == login,
        SignInAttempt.remote_addr == address,
        SignInAttempt.succeeded.is_(True),
        SignInAttempt.at >= since,
    )
    return db.session.scalar(query.limit(1)) is not None


def wait_before_next_try(login: str, address: str) -> timedelta:
    """Return how long ``login`` must wait before its password is checked from ``address``.

    Zero unless this login failed too often from this address, or this address failed on
    too many logins and ``login`` has not signed in from it lately. A login is never held back
    by failures from other addresses: a correct password from an address that has not failed
    gets in.
    """
    config = current_app.config
    ends = []
    count, last = _failures(SignInAttempt.login == login, SignInAttempt.remote_addr == address)
    if count >= config["SIGNIN_FREE_FAILURES"]:
        ends.append(last + _delay(count - config["SIGNIN_FREE_FAILURES"]))
    count, last = _failures(SignInAttempt.remote_addr == address)
    if count >= config["SIGNIN_MAX_FAILURES_PER_ADDRESS"] and not _known_from(login, address):
        ends.append(last + _delay(count - config["SIGNIN_MAX_FAILURES_PER_ADDRESS"]))
    return max([end - utcnow() for end in ends] + [timedelta(0)])


def check_password_throttled(user: User | None, login: str, password: str, address: str) -> bool:
    """Check a password typed for ``login`` from ``address``, counting the failures.

    Raise SignInRefused, without checking, while the failures of this login or address make
    them wait. Every check of a password someone typed (sign-in, one's own password) goes here.
    """
    wait = wait_before_next_try(login, address)
    if wait:
        log.warning("password check of login=%s addr=%s slowed down (%s)", login, address, wait)
        raise SignInRefused(wait)
    if user is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
    succeeded = bool(user and user.check_password(password) and user.active)
    db.session.add(SignInAttempt(login=login, remote_addr=address, succeeded=succeeded))
    db.session.flush()
    return succeeded


def current_slowdowns() -> list[Slowdown]:
    """Return the sign-ins slowed down now, for the admin: pairs first, then whole addresses."""
    config = current_app.config
    since = utcnow() - timedelta(seconds=config["SIGNIN_WINDOW_SECONDS"])
    failed = (SignInAttempt.succeeded.is_(False), SignInAttempt.at >= since)
    found = []
    for columns, free in (
        ((SignInAttempt.login, SignInAttempt.remote_addr), config["SIGNIN_FREE_FAILURES"]),
        ((SignInAttempt.remote_addr,), config["SIGNIN_MAX_FAILURES_PER_ADDRESS"]),
    ):
        query = (
            select(*columns, func.count(), func.max(SignInAttempt.at))
            .where(*failed)
            .group_by(*columns)
            .having(func.count() >= free)
        )
        for *key, count, last in db.session.execute(query):
            login, address = key if len(key) == 2 else (None, key[0])
            until = last + _delay(count - free)
            if until > utcnow():
                found.append(Slowdown(login, address, count, until))
    return sorted(found, key=lambda s: (s.login is None, s.address, s.login or ""))


def lift_slowdown(actor: User, login: str | None, address: str) -> int:
    """Forget the failures of ``login`` from ``address`` (of every login when None)."""
    query = delete(SignInAttempt).where(
        SignInAttempt.remote_addr == address, SignInAttempt.succeeded.is_(False)
    )
    if login:
        query = query.where(SignInAttempt.login == login_key(login))
    lifted = db.session.execute(query).rowcount or 0
    log.info("sign-in slowdown of login=%s addr=%s lifted by %s", login, address, _who(actor))
    return lifted


def purge_old_attempts() -> int:
    """Delete the attempts too old to count; return how many.

    Failures count for the throttling window; successes say which addresses a login is known
    from, for ``SIGNIN_KNOWN_ADDRESS_DAYS``.
    """
    config = current_app.config
    now = utcnow()
    failures_before = now - max(ATTEMPTS_KEPT, timedelta(seconds=config["SIGNIN_WINDOW_SECONDS"]))
    successes_before = now - timedelta(days=config["SIGNIN_KNOWN_ADDRESS_DAYS"])
    result = db.session.execute(
        delete(SignInAttempt).where(
            or_(
                and_(SignInAttempt.succeeded.is_(False), SignInAttempt.at < failures_before),
                SignInAttempt.at < successes_before,
            )
        )
    )
    return result.rowcount or 0


def authenticate(login: str, password: str, remote_addr: str) -> User:
    """Return the active user with these credentials, or raise SignInRefused; record the try.

    A success deletes nothing: the failures counted for this address or other logins stay counted.
    """
    login = login_key(login)
    purge_old_attempts()
    user = db.session.scalar(select(User).where(func.lower(User.login) == login))
    if not check_password_throttled(user, login, password, remote_addr):
        log.info("sign-in failed for login=%s addr=%s", login, remote_addr)
        raise SignInRefused()
    log.info("user %s signed in from %s", login, remote_addr)
    return user


def sign_out(user: User) -> None:
    """End the user's sessions: a copy of the session cookie taken before stops working."""
    user.end_sessions()
    db.session.flush()
    log.info("user %s signed out", user.login)


# --- users -----------------------------------------------------------------------------------


def generate_password(length: int = 14) -> str:
    """Return a random provisional password, easy to read aloud."""
    return "".join(secrets.choice(READABLE_CHARACTERS) for _ in range(length))


def find_user_by_login(login: str) -> User | None:
    """Return the user with this login (case-insensitive), if any."""
    return db.session.scalar(select(User).where(func.lower(User.login) == login.strip().lower()))


def create_user(
    login: str,
    display_name: str,
    password: str,
    role: str,
    email: str | None = None,
    *,
    actor: User | None = None,
) -> User:
    """Create a user with a hashed password; refuse a login already taken."""
    login = login.strip().lower()
    if find_user_by_login(login) is not None:
        raise UserChangeRefused(_l("This login is already taken."), "login")
    user = User(
        login=login, display_name=display_name.strip(), role=Role(role), email=email or None
    )
    user.set_password(password)
    try:
        with db.session.begin_nested():  # two admins creating the same login at once
            db.session.add(user)
    except IntegrityError as taken:
        raise UserChangeRefused(_l("This login is already taken."), "login") from taken
    log.info("user %s created with role %s by %s", user.login, role, _who(actor))
    return user


def list_users(text: str = "", role: str | None = None) -> list[User]:
    """Return the users matching a text (login, name, e-mail) and a role, sorted by name."""
    query = select(User).order_by(func.lower(User.display_name), User.login)
    text = text.strip().lower()
    if text:
        query = query.where(
            or_(
                func.lower(User.login).contains(text, autoescape=True),
                func.lower(User.display_name).contains(text, autoescape=True),
                func.lower(User.email).contains(text, autoescape=True),
            )
        )
    if role:
        query = query.where(User.role == role)
    return list(db.session.scalars(query).unique())


def _active_admins() -> int:
    return db.session.scalar(
        select(func.count()).where(User.role == Role.ADMIN, User.active.is_(True))
    )


def _is_last_active_admin(user: User) -> bool:
    return user.role == Role.ADMIN and user.active and _active_admins() <= 1


def update_user(
    actor: User, user: User, *, display_name: str, email: str | None, role: str
) -> None:
    """Change a user's name, e-mail and role; the last active admin keeps the admin role."""
    if role != user.role and _is_last_active_admin(user):
        raise UserChangeRefused(
            _l("This is the last active administrator: give another user this role first."),
            "role",
        )
    if role != user.role:
        log.info("user %s role %s -> %s by %s", user.login, user.role, role, _who(actor))
    user.display_name = display_name.strip()
    user.email = email or None
    user.role = Role(role)
    db.session.flush()
    log.info("user %s details changed by %s", user.login, _who(actor))


def set_active(actor: User, user: User, active: bool) -> None:
    """Deactivate (signed out at once, cannot sign in) or reactivate a user."""
    if not active:
        if user.id == actor.id:
            raise UserChangeRefused(_l("You cannot deactivate your own account."))
        if _is_last_active_admin(user):
            raise UserChangeRefused(_l("The last active administrator cannot be deactivated."))
        user.end_sessions()
    user.active = active
    db.session.flush()
    state = "reactivated" if active else "deactivated"
    log.info("user %s %s by %s", user.login, state, _who(actor))


def reset_password(actor: User | None, user: User, password: str | None = None) -> str:
    """Give a user a new password (generated when none is given) and end their sessions."""
    password = password or generate_password()
    user.set_password(password)
    user.end_sessions()
    db.session.flush()
    log.info("password of user %s reset by %s", user.login, _who(actor))
    return password


def change_own_password(user: User, current: str, new: str, remote_addr: str) -> None:
    """Change one's own password after checking the current one; other sessions end.

    The current password is checked like a sign-in: failures count, and slow down both.
    """
    try:
        right = check_password_throttled(user, login_key(user.login), current, remote_addr)
    except SignInRefused as refused:
        raise UserChangeRefused(refused.message(), "current_password") from refused
    if not right:
        raise UserChangeRefused(_l("The current password is wrong."), "current_password")
    user.set_password(new)
    user.end_sessions()
    db.session.flush()
    log.info("user %s changed their password", user.login)


def link_person(actor: User, user: User, person_id: int | None) -> None:
    """Link a user to a directory person (or unlink with None); a person has one user at most."""
    if person_id is None:
        log.info("user %s unlinked from person %s by %s", user.login, user.person_id, _who(actor))
        user.person = None
        user.person_id = None
        db.session.flush()
        return
    person = db.session.get(Person, person_id)
    if person is None:
        raise UserChangeRefused(_l("This person is not in the directory."), "person_id")
    other = db.session.scalar(select(User).where(User.person_id == person_id, User.id != user.id))
    if other is not None:
        raise UserChangeRefused(
            _l("This person is already linked to the user %(login)s.", login=other.login),
            "person_id",
        )
    try:
        with db.session.begin_nested():  # the unique index decides between two admins at once
            user.person = person
    except IntegrityError as linked:
        raise UserChangeRefused(
            _l("This person is already linked to another user."), "person_id"
        ) from linked
    log.info("user %s linked to person %s by %s", user.login, person.id, _who(actor))


def suggest_people(text: str, limit: int = 10) -> list[tuple[Person, User | None]]:
    """Return the directory people matching a text, each with the user already linked to them."""
    words = text.lower().split()
    if not words:
        return []
    query = select(Person, User).outerjoin(User, User.person_id == Person.id)
    for word in words[:5]:
        # The search text is meant accent-free; match the word as typed too.
        variants = {fold(word), word}
        query = query.where(
            or_(*(Person.search_text.contains(v, autoescape=True) for v in variants))
        )
    query = query.order_by(Person.last_name, Person.first_name).limit(limit)
    return [(person, user) for person, user in db.session.execute(query).unique()]


def _who(actor: User | None) -> str:
    return actor.login if actor is not None else "the system"
