"""Users who sign in, and the sign-in attempts counted for throttling."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from hpmail.core.time import utcnow
from hpmail.extensions import db


def new_session_token() -> str:
    return secrets.token_hex(16)


def hash_secret(secret: str) -> str:
    """Return the stored form of a password or a secret answer (``PASSWORD_HASH_METHOD``).

    scrypt by default; the test suite configures a cheap method, since hashing is most of the
    cost of a test that signs in.
    """
    return generate_password_hash(secret, method=current_app.config["PASSWORD_HASH_METHOD"])


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    TEACHER = "teacher"


class User(UserMixin, db.Model):
    __tablename__ = "user"
    __table_args__ = (CheckConstraint("role IN ('admin', 'staff', 'teacher')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(10), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # A directory person is linked to one user at most.
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="SET NULL"), unique=True
    )
    # Part of the id kept in the session cookie: changing it signs the user out everywhere
    # (password reset, deactivation).
    session_token: Mapped[str] = mapped_column(String(32), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    person = db.relationship("Person", lazy="joined")

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        """Return the id stored in the session: user id and session token."""
        return f"{self.id}:{self.session_token}"

    def end_sessions(self) -> None:
        """Sign this user out of every browser at their next request."""
        self.session_token = new_session_token()

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def set_password(self, password: str) -> None:
        self.password_hash = hash_secret(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<User {self.login} {self.role}>"


class SignInAttempt(db.Model):
    """One sign-in try; failures in a sliding window throttle a login and an address."""

    __tablename__ = "sign_in_attempt"
    __table_args__ = (
        Index("ix_sign_in_attempt_login_at", "login", "at"),
        Index("ix_sign_in_attempt_address_at", "remote_addr", "at"),
        Index("ix_sign_in_attempt_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(80))
    remote_addr: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
