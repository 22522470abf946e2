"""Transports, server settings, sending profiles, and the outbox (mailings, e-mails, recipients).

The outbox tables are the source of truth of delivery: an e-mail exists as a row from the moment it
is queued until the SMTP server has accepted it or it has failed for good.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hpmail.core.time import utcnow
from hpmail.extensions import db


class Security(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class Auth(StrEnum):
    """How hpmail signs in to an SMTP server: not at all, a password, or an OAuth2 token."""

    NONE = "none"
    PASSWORD = "password"  # noqa: S105 - a kind of sign-in, not a password
    MICROSOFT = "microsoft"
    GOOGLE = "google"


# The kinds that sign in with an OAuth2 access token (SASL XOAUTH2), by provider name.
OAUTH_KINDS = (Auth.MICROSOFT.value, Auth.GOOGLE.value)


class EmailState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RecipientState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"


class MailingKind(StrEnum):
    EMAIL = "email"
    DOCUMENT = "document"
    LETTER = "letter"
    QUICK = "quick"
    TEST = "test"
    VERIFICATION = "verification"


# The server's own e-mails, written by no person: a test-send, a verification code.
GENERATED_KINDS = (MailingKind.TEST, MailingKind.VERIFICATION)


class Transport(db.Model):
    """How to reach an SMTP server. Secrets are Fernet-encrypted (key in ``instance/``).

    ``auth`` says how to sign in: ``password`` uses ``username`` and the secret; ``microsoft``
    and ``google`` use an access token obtained from ``oauth_refresh_encrypted`` (the refresh
    token the admin's or user's consent gave, for the mailbox ``oauth_account``).
    """

    __tablename__ = "transport"
    __table_args__ = (
        CheckConstraint("security IN ('none', 'starttls', 'tls')", name="security"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port"),
        CheckConstraint("auth IN ('none', 'password', 'microsoft', 'google')", name="auth"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(253), default="")
    port: Mapped[int] = mapped_column(Integer, default=587)
    security: Mapped[str] = mapped_column(String(10), default=Security.STARTTLS)
    username: Mapped[str] = mapped_column(String(254), default="")
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=30)
    per_minute: Mapped[int | None] = mapped_column(Integer)
    per_day: Mapped[int | None] = mapped_column(Integer)
    # The school's certificate authority, uploaded as PEM text (never a path on the server).
    ca_certificates: Mapped[str | None] = mapped_column(Text)
    auth: Mapped[str] = mapped_column(String(10), default=Auth.PASSWORD)
    oauth_refresh_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    oauth_account: Mapped[str] = mapped_column(String(254), default="")
    # Why the provider last refused a refresh, in the admin's words; cleared by a new consent.
    oauth_error: Mapped[str | None] = mapped_column(Text)

    # The server's own failures (cannot connect, timeout, TLS, 421) are the transport's state,
    # not each e-mail's (``outbox.health``): since when it fails (None: healthy), why last, and
    # when a worker may probe it next (claimed by a conditional UPDATE, one worker at a time).
    failing_since: Mapped[datetime | None] = mapped_column(DateTime)
    last_failure: Mapped[str | None] = mapped_column(Text)
    next_probe_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def uses_oauth(self) -> bool:
        return self.auth in OAUTH_KINDS


class OAuthApplication(db.Model):
    """The school's application registered with a provider (Microsoft Entra, Google Cloud).

    One row per provider, set once by the admin; the secret is Fernet-encrypted like passwords.
    """

    __tablename__ = "oauth_application"
    __table_args__ = (CheckConstraint("provider IN ('microsoft', 'google')", name="provider"),)

    provider: Mapped[str] = mapped_column(String(10), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(120), default="")  # Microsoft only
    client_id: Mapped[str] = mapped_column(String(200), default="")
    client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class DkimState(StrEnum):
    NEW = "new"  # generated, its DNS record not yet published or not yet checked
    ACTIVE = "active"  # signs every e-mail whose From is in its domain
    RETIRED = "retired"  # replaced by a newer key; its record may stay published a few days


class DkimKey(db.Model):
    """A DKIM key of an allowed domain: the worker signs with the domain's active keys.

    Rotation uses two selectors: a new key is generated under another selector, published and
    checked, then activated, which retires the old one. An Ed25519 key may be active alongside
    an RSA key (both signatures are added, RFC 8463). The private key is Fernet-encrypted like
    SMTP passwords; ``public_key`` is the base64 ``p=`` value of the DNS record.
    """

    __tablename__ = "dkim_key"
    __table_args__ = (
        CheckConstraint("algorithm IN ('rsa', 'ed25519')", name="algorithm"),
        CheckConstraint("state IN ('new', 'active', 'retired')", name="state"),
        db.UniqueConstraint("domain", "selector", name="uq_dkim_key_domain_selector"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)  # lower-case, IDNA (A-label)
    selector: Mapped[str] = mapped_column(String(63))
    algorithm: Mapped[str] = mapped_column(String(10), default="rsa")
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    public_key: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default=DkimState.NEW)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The last look-up of its DNS record: when, and whether it was published and matching.
    checked_at: Mapped[datetime | None] = mapped_column(DateTime)
    published: Mapped[bool] = mapped_column(Boolean, default=False)


class ServerSettings(db.Model):
    """The one row of "Paramètres d'envoi des e-mails" (id 1)."""

    __tablename__ = "server_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    delegate: Mapped[bool] = mapped_column(Boolean, default=True)
    sender_name: Mapped[str] = mapped_column(String(120), default="")
    sender_address: Mapped[str] = mapped_column(String(254), default="")
    allowed_domains: Mapped[str] = mapped_column(Text, default="")  # one per line
    transport_id: Mapped[int | None] = mapped_column(ForeignKey("transport.id"))
    require_personal_verification: Mapped[bool] = mapped_column(Boolean, default=True)
    # Off: a user's own SMTP server may not be a local, private or reserved address.
    allow_internal_hosts: Mapped[bool] = mapped_column(Boolean, default=False)
    # When "Tester l'envoi d'e-mails" last got the test e-mail accepted with these settings;
    # cleared when the SMTP server or the sender changes. ``flask doctor`` reports it.
    smtp_tested_at: Mapped[datetime | None] = mapped_column(DateTime)

    transport: Mapped[Transport | None] = relationship()


class SendingProfile(db.Model):
    """A named transport that the admin defines and users retrieve."""

    __tablename__ = "sending_profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    transport_id: Mapped[int] = mapped_column(ForeignKey("transport.id"))

    transport: Mapped[Transport] = relationship()


class UserTransport(db.Model):
    """A user's own SMTP server when sending is not delegated: their own or an admin's profile."""

    __tablename__ = "user_transport"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    transport_id: Mapped[int | None] = mapped_column(ForeignKey("transport.id"))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("sending_profile.id"), index=True)

    transport: Mapped[Transport | None] = relationship()
    profile: Mapped[SendingProfile | None] = relationship()


class Attachment(db.Model):
    """A file stored once under ``instance/attachments`` by its SHA-256, shared by every e-mail.

    ``content_type`` is the type found in the bytes when stored, the same for every uploader; each
    use of the file (a mailing's, a template's) keeps the type it is sent with.
    """

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When these bytes were last stored (a new upload of the same file renews it): a file that no
    # row uses is removed only once this is old enough (``attachments.remove_unused_files``).
    # Nullable only so that adding it never rebuilt this table (every row has it, never removed
    # without it).
    stored_at: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow, index=True)


class Mailing(db.Model):
    """What a user sent once: one or many e-mails sharing a subject, body and attachments."""

    __tablename__ = "mailing"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('email', 'document', 'letter', 'quick', 'test', 'verification')", name="kind"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    # The sending account (hpmail.accounts); None for the server's own e-mails (tests, codes).
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20), default=MailingKind.EMAIL)
    subject: Mapped[str] = mapped_column(String(998), default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str | None] = mapped_column(Text)
    # The identity as resolved at queue time; the From policy is applied when the MIME is built.
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    sender_address: Mapped[str] = mapped_column(String(254))
    reply_to: Mapped[str | None] = mapped_column(String(254))
    hide_recipients: Mapped[bool] = mapped_column(Boolean, default=False)
    transport_id: Mapped[int | None] = mapped_column(ForeignKey("transport.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # The composer form's one-time token: a replayed POST finds this mailing instead of a second.
    request_token: Mapped[str | None] = mapped_column(String(36), unique=True)

    emails: Mapped[list[OutboundEmail]] = relationship(
        back_populates="mailing", cascade="all, delete-orphan"
    )
    attachments: Mapped[list[MailingAttachment]] = relationship(
        back_populates="mailing", cascade="all, delete-orphan"
    )
    transport: Mapped[Transport | None] = relationship()


class MailingAttachment(db.Model):
    """An attachment as a mailing carries it: its file name, and a Content-ID when inline."""

    __tablename__ = "mailing_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailing.id", ondelete="CASCADE"), index=True
    )
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachment.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    content_id: Mapped[str | None] = mapped_column(String(255))  # set for inline images

    mailing: Mapped[Mailing] = relationship(back_populates="attachments")
    attachment: Mapped[Attachment] = relationship(lazy="joined")


class OutboundEmail(db.Model):
    """One MIME message of a mailing, and where its delivery stands."""

    __tablename__ = "outbound_email"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'cancelled')",
            name="state",
        ),
        Index("ix_outbound_email_state_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailing.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    state: Mapped[str] = mapped_column(String(10), default=EmailState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    # The worker process holding the lease (``WorkerProcess.id``): when its heartbeat stops, the
    # row is given to another worker without waiting for the lease to end.
    claimed_by: Mapped[str | None] = mapped_column(String(120), index=True)
    # Deferred because its transport's server is failing, not for a reason of its own: it waits
    # for a probe of the server to succeed (then it is due at once), its attempts do not grow,
    # and ``next_attempt_at`` is its give-up time.
    waits_for_transport: Mapped[bool] = mapped_column(Boolean, default=False)
    last_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)

    mailing: Mapped[Mailing] = relationship(back_populates="emails")
    recipients: Mapped[list[EmailRecipient]] = relationship(
        back_populates="email", cascade="all, delete-orphan", order_by="EmailRecipient.id"
    )
    # The files of this e-mail alone (a recipient's own document), besides the mailing's.
    attachments: Mapped[list[EmailAttachment]] = relationship(
        back_populates="email", cascade="all, delete-orphan", order_by="EmailAttachment.id"
    )


class EmailAttachment(db.Model):
    """A file one e-mail carries, besides its mailing's: a recipient's own document.

    ``content_id`` is set for an inline image: the name the mailing's HTML refers to as
    ``cid:<name>``; the MIME builder gives the part a Content-ID unique to the e-mail's message.
    """

    __tablename__ = "email_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_email.id", ondelete="CASCADE"), index=True
    )
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachment.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    content_id: Mapped[str | None] = mapped_column(String(255))

    email: Mapped[OutboundEmail] = relationship(back_populates="attachments")
    attachment: Mapped[Attachment] = relationship(lazy="joined")


class EmailRecipient(db.Model):
    """One address of an e-mail (to, cc or bcc) and the server's answer for it."""

    __tablename__ = "email_recipient"
    __table_args__ = (
        CheckConstraint("field IN ('to', 'cc', 'bcc')", name="field"),
        CheckConstraint("state IN ('pending', 'accepted', 'refused')", name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_email.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(3), default="to")
    name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(254), index=True)
    person_id: Mapped[int | None] = mapped_column(Integer, index=True)
    state: Mapped[str] = mapped_column(String(10), default=RecipientState.PENDING)
    code: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[str | None] = mapped_column(Text)

    email: Mapped[OutboundEmail] = relationship(back_populates="recipients")


class SendCounter(db.Model):
    """Messages sent through a transport in a window (minute or day), shared by every worker."""

    __tablename__ = "send_counter"

    transport_id: Mapped[int] = mapped_column(
        ForeignKey("transport.id", ondelete="CASCADE"), primary_key=True
    )
    window: Mapped[str] = mapped_column(String(6), primary_key=True)  # "minute" or "day"
    window_start: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class WorkerProcess(db.Model):
    """A running worker process, known by the heartbeat it writes every few seconds.

    ``id`` is ``host:pid:random``; the rows a worker claims carry it (``OutboundEmail.claimed_by``).
    A worker whose ``seen_at`` is older than a few heartbeats is dead: its rows are released.
    ``stopping`` is set when it was asked to stop (SIGTERM) and is giving its rows back.
    """

    __tablename__ = "worker_process"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    stopping: Mapped[bool] = mapped_column(Boolean, default=False)
