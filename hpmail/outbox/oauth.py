"""OAuth2 for SMTP (Microsoft 365, Google): the providers, the school's applications, tokens.

authlib's OAuth2 client (on httpx2) builds the authorization URL with PKCE, exchanges the code
and refreshes access tokens; the provider's endpoints are one table here, which the
``OAUTH_PROVIDERS`` setting overrides (the tests point it at a local fake provider). Every HTTP
call has a timeout (``OAUTH_HTTP_TIMEOUT_SECONDS``) and verifies TLS with the default context.

The worker asks ``access_token(transport)`` before each SMTP connection: the token is kept in
memory per transport until shortly before it expires (``OAUTH_REFRESH_MARGIN_SECONDS``); a
refresh token the provider rotates is stored at once. A refresh the provider refuses
(``invalid_grant``: consent revoked, password changed) raises ``GrantRefused`` with a French
reason, also kept on the transport (``oauth_error``) for the settings and outbox pages.
Tokens and secrets are never logged nor shown.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field, replace
from hashlib import sha256
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update

from hpmail.extensions import db
from hpmail.outbox.models import (
    OAuthApplication,
    SendingProfile,
    ServerSettings,
    Transport,
    UserTransport,
)
from hpmail.outbox.secrets import decrypt_secret, encrypt_secret

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import OAuth2Client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    """Where a provider signs in, what hpmail asks for, and its SMTP server."""

    name: str
    label: str
    authorize_url: str
    token_url: str
    scope: str
    authorize_params: dict = field(default_factory=dict)
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"


# "openid email" beside the SMTP scope: the token response then names the mailbox it is for.
PROVIDERS = {
    "microsoft": Provider(
        name="microsoft",
        label="Microsoft 365",
        authorize_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",  # noqa: S106
        scope="https://outlook.office.com/SMTP.Send offline_access openid email",
        smtp_host="smtp.office365.com",
    ),
    "google": Provider(
        name="google",
        label="Google",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",  # noqa: S106
        scope="https://mail.google.com/ openid email",
        # offline: a refresh token; consent: a new one even when the user consented before.
        authorize_params={"access_type": "offline", "prompt": "consent"},
        smtp_host="smtp.gmail.com",
    ),
}


class OAuthProblem(Exception):
    """A token could not be had; ``str()`` is the reason in the admin's words."""


class NotConnected(OAuthProblem):
    """The transport has no refresh token (nobody signed in yet), or no application is set."""


class EndpointUnreachable(OAuthProblem):
    """The provider's token endpoint did not answer (network, TLS, timeout, 5xx)."""


class GrantRefused(OAuthProblem):
    """The provider answered with an OAuth2 error: ``error`` is its code (``invalid_grant``…)."""

    def __init__(self, message: str, error: str = "", description: str = ""):
        super().__init__(message)
        self.error = error
        self.description = description


def provider(name: str) -> Provider:
    """Return the provider ``name`` with what ``OAUTH_PROVIDERS`` overrides of it."""
    base = PROVIDERS[name]
    override = (current_app.config.get("OAUTH_PROVIDERS") or {}).get(name) or {}
    known = {key: value for key, value in override.items() if key in Provider.__dataclass_fields__}
    return replace(base, **known)


def provider_label(name: str) -> str:
    return PROVIDERS[name].label if name in PROVIDERS else name


def application(name: str) -> OAuthApplication | None:
    """Return the school's registered application for ``name`` when it is complete."""
    row = db.session.get(OAuthApplication, name)
    if row is None or not row.client_id or not row.client_secret_encrypted:
        return None
    if name == "microsoft" and not row.tenant:
        return None
    return row


def _endpoint(url: str, app_row: OAuthApplication) -> str:
    return url.replace("{tenant}", app_row.tenant or "common")


def _client(app_row: OAuthApplication, chosen: Provider, **kwargs) -> OAuth2Client:
    # authlib and httpx2 cost every worker and page process ~60 ms to import; only a sign-in or
    # a token refresh needs them.
    from authlib.integrations.httpx_client import OAuth2Client

    timeout = float(current_app.config["OAUTH_HTTP_TIMEOUT_SECONDS"])
    return OAuth2Client(
        client_id=app_row.client_id,
        client_secret=decrypt_secret(app_row.client_secret_encrypted),
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method's name
        scope=chosen.scope,
        timeout=timeout,
        verify=ssl.create_default_context(),  # HTTPS_PROXY and NO_PROXY are honoured
        **kwargs,
    )


def authorization_url(
    name: str, redirect_uri: str, state: str, verifier: str, login_hint: str = ""
) -> str:
    """Return the provider's consent page URL for this ``state`` and PKCE ``verifier``."""
    app_row = application(name)
    if app_row is None:
        raise NotConnected(not_registered(name))
    chosen = provider(name)
    extra = dict(chosen.authorize_params)
    if login_hint:
        extra["login_hint"] = login_hint
    with _client(app_row, chosen, redirect_uri=redirect_uri, code_challenge_method="S256") as c:
        url, _state = c.create_authorization_url(
            _endpoint(chosen.authorize_url, app_row), state=state, code_verifier=verifier, **extra
        )
    return url


@dataclass(frozen=True)
class Grant:
    """What a consent gave: the refresh token (to store), the account it is for, a first token."""

    refresh_token: str
    account: str
    access_token: str
    expires_at: float


def exchange_code(name: str, code: str, redirect_uri: str, verifier: str) -> Grant:
    """Exchange the authorization ``code`` (with the PKCE ``verifier``) for tokens."""
    app_row = application(name)
    if app_row is None:
        raise NotConnected(not_registered(name))
    chosen = provider(name)
    token = _call_token_endpoint(
        name,
        lambda client: client.fetch_token(
            _endpoint(chosen.token_url, app_row),
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
        ),
        app_row,
        chosen,
        redirect_uri=redirect_uri,
    )
    if not token.get("refresh_token"):
        raise GrantRefused(
            _(
                "%(provider)s gave no refresh token: hpmail could not send later. Sign in again "
                "and accept every permission asked.",
                provider=provider_label(name),
            ),
            "no_refresh_token",
        )
    return Grant(
        refresh_token=token["refresh_token"],
        account=_account_of(token),
        access_token=token["access_token"],
        expires_at=_expires_at(token),
    )


def _account_of(token: dict) -> str:
    """Return the mailbox named by the ID token of the token response, if it has one.

    The ID token comes straight from the token endpoint over verified TLS, which OpenID Connect
    accepts in place of its signature (Core 1.0, 3.1.3.7); it only names the account shown.
    """
    id_token = token.get("id_token") or ""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return ""
    account = claims.get("email") or claims.get("preferred_username") or ""
    return account[:254] if isinstance(account, str) else ""


def _expires_at(token: dict) -> float:
    try:
        lifetime = float(token.get("expires_in") or 3600)
    except (TypeError, ValueError):
        lifetime = 3600
    return time.time() + lifetime


def _call_token_endpoint(name, call, app_row, chosen, **kwargs) -> dict:
    """Run one token request: a failure is ``EndpointUnreachable`` or ``GrantRefused``."""
    import httpx2
    from authlib.integrations.httpx_client import OAuthError

    label = provider_label(name)
    try:
        with _client(app_row, chosen, **kwargs) as client:
            return dict(call(client))
    except OAuthError as error:
        raise GrantRefused(
            refused_message(name, error.error), error.error or "", error.description or ""
        ) from None
    except (httpx2.HTTPError, OSError, ValueError) as error:
        raise EndpointUnreachable(
            _(
                "%(provider)s's sign-in service cannot be reached (%(reason)s): the e-mails wait "
                "and are sent once it answers.",
                provider=label,
                reason=type(error).__name__,
            )
        ) from None


def not_registered(name: str) -> str:
    return _(
        "The school's %(provider)s application is not registered: the administrator sets it in "
        "Serveur › Paramètres d'envoi des e-mails.",
        provider=provider_label(name),
    )


def refused_message(name: str, error: str | None, transport: Transport | None = None) -> str:
    """Say in French why the provider refused, and where to sign in again."""
    label = provider_label(name)
    if error == "invalid_grant":
        return _(
            "The connection to %(provider)s has expired or was revoked: reconnect the account "
            "in %(where)s.",
            provider=label,
            where=reconnect_where(transport),
        )
    if error in ("invalid_client", "unauthorized_client"):
        return _(
            "%(provider)s refuses the school's application (%(error)s): check its client id and "
            "secret in Serveur › Paramètres d'envoi des e-mails.",
            provider=label,
            error=error,
        )
    return _(
        "%(provider)s refused to give a token (%(error)s): reconnect the account in %(where)s.",
        provider=label,
        error=error or "?",
        where=reconnect_where(transport),
    )


def reconnect_where(transport: Transport | None) -> str:
    """Return the page where ``transport``'s account is signed in again."""
    if transport is not None and transport.id is not None:
        if db.session.scalar(
            select(SendingProfile.name).where(SendingProfile.transport_id == transport.id)
        ):
            return _("Configuration › Gérer les profils d'envoi d'e-mails")
        if db.session.scalar(
            select(UserTransport.user_id).where(UserTransport.transport_id == transport.id)
        ):
            return _("Configuration › Paramétrer l'envoi d'e-mails pour ce poste")
        if db.session.scalar(
            select(ServerSettings.id).where(ServerSettings.transport_id == transport.id)
        ):
            return _("Serveur › Paramètres d'envoi des e-mails")
    return _("the SMTP settings")


# --- the worker's access tokens ------------------------------------------------------------


@dataclass
class _Cached:
    fingerprint: str  # of the refresh token it came from: a new consent invalidates it
    access_token: str
    expires_at: float


_tokens: dict[tuple[str, int], _Cached] = {}
_locks: dict[tuple[str, int], threading.Lock] = {}
_locks_guard = threading.Lock()


def _key(transport: Transport) -> tuple[str, int]:
    return (str(db.engine.url), transport.id)


def _fingerprint(encrypted: bytes | None) -> str:
    return sha256(bytes(encrypted or b"")).hexdigest()


def forget(transport: Transport) -> None:
    """Drop the cached access token of ``transport`` (the server refused it)."""
    _tokens.pop(_key(transport), None)


def remember(transport: Transport, access_token: str, expires_at: float) -> None:
    """Keep the access token a consent just gave, so the first send needs no refresh."""
    _tokens[_key(transport)] = _Cached(
        _fingerprint(transport.oauth_refresh_encrypted), access_token, expires_at
    )


def access_token(transport: Transport, *, fresh: bool = False) -> str:
    """Return a valid access token for ``transport``, refreshing it when it is about to expire.

    ``fresh`` always asks the provider (the test-send checks every step).
    """
    key = _key(transport)
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        fingerprint = _fingerprint(transport.oauth_refresh_encrypted)
        cached = _tokens.get(key)
        margin = float(current_app.config["OAUTH_REFRESH_MARGIN_SECONDS"])
        if (
            not fresh
            and cached is not None
            and cached.fingerprint == fingerprint
            and cached.expires_at - margin > time.time()
        ):
            return cached.access_token
        token = refresh(transport)
        # Fingerprinted after the refresh: a rotated refresh token was stored by it.
        remember(transport, token["access_token"], _expires_at(token))
        return token["access_token"]


def refresh(transport: Transport) -> dict:
    """Ask the provider for a new access token with the stored refresh token.

    A rotated refresh token is stored; a refusal is stored as ``oauth_error`` and raised as
    ``GrantRefused``; an unreachable endpoint raises ``EndpointUnreachable`` (nothing stored).
    """
    name = transport.auth
    if not transport.oauth_refresh_encrypted:
        raise NotConnected(
            _(
                "The %(provider)s account is not connected: click « Se connecter avec "
                "%(provider)s » in %(where)s.",
                provider=provider_label(name),
                where=reconnect_where(transport),
            )
        )
    app_row = application(name)
    if app_row is None:
        raise NotConnected(not_registered(name))
    chosen = provider(name)
    stored = decrypt_secret(transport.oauth_refresh_encrypted)
    try:
        token = _call_token_endpoint(
            name,
            lambda client: client.refresh_token(
                _endpoint(chosen.token_url, app_row), refresh_token=stored
            ),
            app_row,
            chosen,
        )
    except GrantRefused as refused:
        message = refused_message(name, refused.error, transport)
        log.warning(
            "%s refused to refresh the token of transport %s: %s",
            provider_label(name),
            transport.id,
            refused.error,
        )
        _save_token_state(transport, error=message)
        raise GrantRefused(message, refused.error, refused.description) from None
    rotated = token.get("refresh_token")
    if rotated and rotated != stored:
        _save_token_state(transport, refresh_token=rotated)
        log.info("%s rotated the refresh token of transport %s", provider_label(name), transport.id)
    elif transport.oauth_error:
        _save_token_state(transport)
    return token


def _save_token_state(
    transport: Transport, *, refresh_token: str | None = None, error: str | None = None
) -> None:
    """Store a rotated refresh token or the last refusal, and commit them at once.

    One UPDATE of the transport's columns, so that it never carries other pending changes of
    the caller's session; the object is kept in step without being marked changed.
    """
    values: dict = {"oauth_error": error}
    if refresh_token is not None:
        values["oauth_refresh_encrypted"] = encrypt_secret(refresh_token)
    db.session.execute(update(Transport).where(Transport.id == transport.id).values(**values))
    db.session.commit()
    # The commit expired the object: it reads the stored values again when next used.


def xoauth2(account: str, token: str) -> str:
    """Return the SASL XOAUTH2 initial response (before base64, which smtplib adds)."""
    return f"user={account}\x01auth=Bearer {token}\x01\x01"
