"""Accounts a user may send from, their verification codes, and each user's mail settings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hpmail.auth.models import User
from hpmail.core.time import utcnow
from hpmail.extensions import db


class AccountKind(StrEnum):
    SCHOOL = "school"
    PERSONAL = "personal"


account_member = Table(
    "account_member",
    db.metadata,
    Column("account_id", ForeignKey("account.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True),
)


PROVEN_ADDRESS = "kind = 'school' OR verified_at IS NOT NULL"


class Account(db.Model):
    """An address hpmail sends from: shared by authorised users (school) or one user's."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint("kind IN ('school', 'personal')", name="kind"),
        # An address is held by one account once proven (a school account holds it from its
        # creation); unverified personal accounts may claim it meanwhile (see rules.py).
        Index(
            "uq_account_proven_address",
            "address",
            unique=True,
            sqlite_where=text(PROVEN_ADDRESS),
            postgresql_where=text(PROVEN_ADDRESS),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), index=True)
    label: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(120), default="")
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    secret_question: Mapped[str | None] = mapped_column(String(200))
    secret_answer_hash: Mapped[str | None] = mapped_column(String(255))
    # Wrong secret answers in a row, and until when further answers are refused (throttle).
    secret_failures: Mapped[int] = mapped_column(Integer, default=0)
    secret_locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    owner: Mapped[User | None] = relationship()
    members: Mapped[list[User]] = relationship(
        secondary=account_member, order_by="User.display_name"
    )

    @property
    def is_school(self) -> bool:
        return self.kind == AccountKind.SCHOOL

    @property
    def is_ready(self) -> bool:
        """Tell whether the account may send: verified, and a school account has its secret."""
        if self.verified_at is None:
            return False
        return not self.is_school or self.secret_answer_hash is not None

    @property
    def sender_name(self) -> str:
        return self.display_name or self.label


class AccountAuditLine(db.Model):
    """One change made to a school account: who, when, what (shown on the account's pane).

    The line outlives the account and its author (the address and name are copied), so that a
    deletion or a transform can still be traced.
    """

    __tablename__ = "account_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL"), index=True
    )
    account_address: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(String(300), default="")


class VerificationCode(db.Model):
    """A 6-digit code e-mailed to prove an address: hashed, single-use, expiring, few tries."""

    __tablename__ = "verification_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(255))
    # The address the code was sent to: a code proves that address only.
    address: Mapped[str] = mapped_column(String(254), default="")
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class MailSettings(db.Model):
    """A user's choices: the account they send from, a reply-to, and hide-recipients (Bcc).

    Reply-to and hide-recipients are the user's, whatever account they send from, as the
    product describes MailSettings; the settings page presents them so ("Mes options d'envoi").
    """

    __tablename__ = "mail_settings"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"))
    reply_to: Mapped[str | None] = mapped_column(String(254))
    hide_recipients: Mapped[bool] = mapped_column(Boolean, default=True)

    account: Mapped[Account | None] = relationship()
