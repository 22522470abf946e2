"""Sign-in with throttling, and the users' lifecycle."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from hpmail.auth.models import SignInAttempt, User, utcnow
from hpmail.extensions import db

log = logging.getLogger(__name__)


class SignInRefused(Exception):
    """The sign-in failed; ``throttled`` tells whether too many failures caused it."""

    def __init__(self, throttled: bool = False):
        super().__init__("throttled" if throttled else "bad credentials")
        self.throttled = throttled


def _recent_failures(column, value) -> int:
    since = utcnow() - timedelta(seconds=current_app.config["SIGNIN_WINDOW_SECONDS"])
    query = select(func.count()).where(
        column == value, SignInAttempt.succeeded.is_(False), SignInAttempt.at >= since
    )
    return db.session.scalar(query)


def is_throttled(login: str, remote_addr: str) -> bool:
    """Tell whether this login or this address has failed too often lately."""
    config = current_app.config
    return (
        _recent_failures(SignInAttempt.login, login) >= config["SIGNIN_MAX_FAILURES_PER_LOGIN"]
        or _recent_failures(SignInAttempt.remote_addr, remote_addr)
        >= config["SIGNIN_MAX_FAILURES_PER_ADDRESS"]
    )


def authenticate(login: str, password: str, remote_addr: str) -> User:
    """Return the active user with these credentials, or raise SignInRefused; record the try."""
    login = login.strip().lower()
    if is_throttled(login, remote_addr):
        log.warning("sign-in throttled for login=%s addr=%s", login, remote_addr)
        raise SignInRefused(throttled=True)
    user = db.session.scalar(select(User).where(func.lower(User.login) == login))
    succeeded = bool(user and user.active and user.check_password(password))
    db.session.add(SignInAttempt(login=login, remote_addr=remote_addr, succeeded=succeeded))
    db.session.flush()
    if not succeeded:
        log.info("sign-in failed for login=%s addr=%s", login, remote_addr)
        raise SignInRefused()
    log.info("user %s signed in from %s", login, remote_addr)
    return user


def create_user(
    login: str, display_name: str, password: str, role: str, email: str | None = None
) -> User:
    """Create a user with a hashed password."""
    user = User(login=login.strip().lower(), display_name=display_name, role=role, email=email)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    log.info("user %s created with role %s", user.login, role)
    return user
