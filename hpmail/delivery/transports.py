"""Save the SMTP servers that the admin and the users set: server, profiles, personal SMTP."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from hpmail.auth.models import User
from hpmail.core.forms import InputRefused
from hpmail.extensions import db
from hpmail.outbox.models import (
    OAUTH_KINDS,
    Auth,
    Mailing,
    OAuthApplication,
    SendingProfile,
    ServerSettings,
    Transport,
    UserTransport,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransportValues:
    """What a form says about an SMTP server; ``password`` None keeps the saved one."""

    host: str
    port: int
    security: str
    username: str = ""
    password: str | None = None
    forget_password: bool = False
    timeout_seconds: int = 30
    per_minute: int | None = None
    per_day: int | None = None
    ca_certificates: str | None = None  # an uploaded PEM; None keeps the saved one
    forget_ca_certificates: bool = False
    auth: str = "password"  # noqa: S105 - a kind of sign-in (outbox.models.Auth)


@dataclass(frozen=True)
class SenderValues:
    """The server-wide part of "Paramètres d'envoi des e-mails"."""

    delegate: bool
    sender_name: str
    sender_address: str
    allowed_domains: str
    require_personal_verification: bool
    allow_internal_hosts: bool = False


class ProfileInUse(InputRefused):
    """A profile cannot be deleted while users send through it; ``users`` says who."""

    def __init__(self, users: list[User]):
        names = ", ".join(user.display_name for user in users[:5])
        if len(users) > 5:
            names += ", …"
        super().__init__(
            ngettext(
                "This profile is used by %(num)d user (%(names)s), who must first retrieve "
                "another sending profile or set their own SMTP server.",
                "This profile is used by %(num)d users (%(names)s), who must first retrieve "
                "another sending profile or set their own SMTP server.",
                len(users),
                names=names,
            )
        )
        self.users = users


class ProfileNameTaken(InputRefused):
    """Two profiles cannot share a name."""


class SettingsNotTested(InputRefused):
    """Settings found from an address are saved only once a test e-mail went through them."""


def test_before_saving(
    values: TransportValues,
    saved: Transport | None,
    sender: str,
    recipient: str,
    sender_name: str,
    restricted: bool,
) -> str:
    """Send the test e-mail through ``values`` before they are saved; raise SettingsNotTested.

    "Trouver les paramètres" only suggests: a guess from the domain's records must not replace
    working settings until a real e-mail went through it. The transport tried is never added to
    the session; it borrows the saved password and authority when the form keeps them. Return
    the address the test e-mail went to ("" when it could not be sent: a Microsoft 365 or
    Google account not signed in yet is tested once connected).
    """
    from hpmail.delivery.diagnostics import diagnose

    trial = Transport(
        secret_encrypted=saved.secret_encrypted if saved else None,
        ca_certificates=saved.ca_certificates if saved else None,
    )
    if values.auth in OAUTH_KINDS:
        if saved is None or saved.auth != values.auth or not saved.oauth_refresh_encrypted:
            return ""  # nothing to sign in with before « Se connecter »: tested after it
        # The saved account's token, under the saved row's id (a rotated token is stored there).
        trial.id, trial.auth = saved.id, saved.auth
        trial.oauth_refresh_encrypted = saved.oauth_refresh_encrypted
        trial.oauth_account = saved.oauth_account
    fill_transport(trial, values)
    diagnosis = diagnose(trial, sender, recipient, sender_name, restricted=restricted)
    if not diagnosis.succeeded:
        step = diagnosis.failed_step
        raise SettingsNotTested(
            _(
                "Nothing was saved: the test e-mail through these settings failed at the step "
                "“%(step)s” (%(detail)s). %(advice)s",
                step=step.label,
                detail=step.detail,
                advice=step.advice,
            ).strip(),
            field="host",
        )
    return recipient


def fill_transport(transport: Transport, values: TransportValues) -> Transport:
    """Copy ``values`` into ``transport``, encrypting a new password and keeping an old one."""
    from hpmail.outbox.secrets import encrypt_secret

    transport.host = values.host
    transport.port = values.port
    transport.security = values.security
    transport.username = values.username
    _change_sign_in(transport, values.auth)
    transport.timeout_seconds = values.timeout_seconds
    transport.per_minute = values.per_minute
    transport.per_day = values.per_day
    if values.ca_certificates:
        transport.ca_certificates = values.ca_certificates
    elif values.forget_ca_certificates:
        transport.ca_certificates = None
    if values.auth != Auth.PASSWORD:
        transport.secret_encrypted = None  # a password no longer used is not kept
    elif values.password:
        transport.secret_encrypted = encrypt_secret(values.password)
    elif values.forget_password:
        transport.secret_encrypted = None
    return transport


def _change_sign_in(transport: Transport, auth: str) -> None:
    """Set how ``transport`` signs in; a token given for another provider (or none) is dropped."""
    if transport.auth != auth or auth not in OAUTH_KINDS:
        transport.oauth_refresh_encrypted = None
        transport.oauth_account = ""
        transport.oauth_error = None
    transport.auth = auth


def save_server_settings(
    settings: ServerSettings, sender: SenderValues, values: TransportValues, actor: User
) -> ServerSettings:
    """Save "Paramètres d'envoi des e-mails" and the server's SMTP transport."""
    settings.delegate = sender.delegate
    settings.sender_name = sender.sender_name
    settings.sender_address = sender.sender_address
    settings.allowed_domains = sender.allowed_domains
    settings.require_personal_verification = sender.require_personal_verification
    settings.allow_internal_hosts = sender.allow_internal_hosts
    before = _tested_part(settings)
    if settings.transport is None:
        settings.transport = Transport()
        db.session.add(settings.transport)
    fill_transport(settings.transport, values)
    if _tested_part(settings) != before:
        settings.smtp_tested_at = None  # the test-send proved other settings
    db.session.flush()
    log.info(
        "%s saved the server sending settings (delegate=%s, internal hosts=%s, host=%s:%s %s)",
        actor.login,
        settings.delegate,
        settings.allow_internal_hosts,
        values.host,
        values.port,
        values.security,
    )
    return settings


def _tested_part(settings: ServerSettings) -> tuple:
    """What a test-send proves: the server, how to reach and sign in to it, and the sender."""
    transport = settings.transport
    if transport is None:
        return (settings.sender_address,)
    return (
        settings.sender_address,
        transport.host,
        transport.port,
        transport.security,
        transport.username,
        transport.secret_encrypted,
        transport.ca_certificates,
    )


def all_profiles() -> list[SendingProfile]:
    """Return the sending profiles by name."""
    return list(
        db.session.scalars(select(SendingProfile).order_by(func.lower(SendingProfile.name)))
    )


def _check_name_free(name: str, profile_id: int | None = None) -> None:
    query = select(SendingProfile.id).where(func.lower(SendingProfile.name) == name.lower())
    if profile_id is not None:
        query = query.where(SendingProfile.id != profile_id)
    if db.session.scalar(query) is not None:
        raise ProfileNameTaken(_("A profile with this name already exists."), field="name")


def create_profile(name: str, values: TransportValues, actor: User) -> SendingProfile:
    """Add a sending profile that users may retrieve."""
    name = name.strip()
    _check_name_free(name)
    transport = fill_transport(Transport(), values)
    profile = SendingProfile(name=name, transport=transport)
    db.session.add_all([transport, profile])
    db.session.flush()
    log.info(
        "%s created the sending profile %r (%s:%s)", actor.login, name, values.host, values.port
    )
    return profile


def update_profile(
    profile: SendingProfile, name: str, values: TransportValues, actor: User
) -> SendingProfile:
    """Change a sending profile's name and SMTP server."""
    name = name.strip()
    _check_name_free(name, profile.id)
    profile.name = name
    fill_transport(profile.transport, values)
    db.session.flush()
    log.info(
        "%s changed the sending profile %r (%s:%s)", actor.login, name, values.host, values.port
    )
    return profile


def profile_users(profile: SendingProfile) -> list[User]:
    """Return the users who send through ``profile``."""
    query = (
        select(User)
        .join(UserTransport, UserTransport.user_id == User.id)
        .where(UserTransport.profile_id == profile.id)
        .order_by(User.display_name)
    )
    return list(db.session.scalars(query))


def delete_profile(profile: SendingProfile, actor: User) -> None:
    """Delete a profile nobody uses (raise ProfileInUse otherwise)."""
    users = profile_users(profile)
    if users:
        raise ProfileInUse(users)
    transport = profile.transport
    name = profile.name
    db.session.delete(profile)
    db.session.flush()
    in_history = db.session.scalar(
        select(Mailing.id).where(Mailing.transport_id == transport.id).limit(1)
    )
    if in_history is None:
        db.session.delete(transport)
        db.session.flush()
    log.info("%s deleted the sending profile %r", actor.login, name)


def user_transport_of(user: User) -> UserTransport | None:
    """Return the user's personal SMTP choice, if they made one."""
    return db.session.get(UserTransport, user.id)


def set_own_transport(user: User, values: TransportValues) -> UserTransport:
    """Make the user send through their own SMTP server."""
    choice = user_transport_of(user) or UserTransport(user_id=user.id)
    db.session.add(choice)
    if choice.transport is None:
        choice.transport = Transport()
        db.session.add(choice.transport)
    fill_transport(choice.transport, values)
    choice.profile = None
    db.session.flush()
    log.info("%s set their own SMTP server %s:%s", user.login, values.host, values.port)
    return choice


def use_profile(user: User, profile: SendingProfile) -> UserTransport:
    """Make the user send through an admin's profile (their own settings are kept for later)."""
    choice = user_transport_of(user) or UserTransport(user_id=user.id)
    db.session.add(choice)
    choice.profile = profile
    db.session.flush()
    log.info("%s retrieved the sending profile %r", user.login, profile.name)
    return choice


@dataclass(frozen=True)
class ApplicationValues:
    """The school's application at one provider; ``client_secret`` None keeps the saved one."""

    provider: str
    tenant: str
    client_id: str
    client_secret: str | None = None


def save_application(values: ApplicationValues, actor: User) -> OAuthApplication:
    """Register (or change) the school's OAuth2 application at a provider."""
    from hpmail.outbox.secrets import encrypt_secret

    row = db.session.get(OAuthApplication, values.provider)
    if row is None:
        row = OAuthApplication(provider=values.provider)
        db.session.add(row)
    row.tenant = values.tenant
    row.client_id = values.client_id
    if values.client_secret:
        row.client_secret_encrypted = encrypt_secret(values.client_secret)
    elif not values.client_id:
        row.client_secret_encrypted = None  # an emptied application is forgotten whole
    db.session.flush()
    log.info(
        "%s saved the %s application (client id %s)", actor.login, values.provider, values.client_id
    )
    return row
