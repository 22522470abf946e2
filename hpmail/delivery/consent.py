"""« Se connecter avec Microsoft / Google »: the authorization code flow with PKCE.

``start`` remembers a random ``state`` twice: its hash in a ``PendingConsent`` row (with the
PKCE verifier, encrypted) and in the browser's session; ``finish`` takes the row once, so a
replayed, expired or foreign ``state`` (another session's, another user's) is refused. The
code is exchanged for tokens and the refresh token stored encrypted; no token is ever shown
back or logged. Who may connect a transport is one rule, ``return_page``: the server's and
the profiles' for an admin, a personal one for its own user only (404 otherwise).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from hashlib import sha256

from flask import current_app, session
from flask_babel import gettext as _
from sqlalchemy import delete, select

from hpmail.auth.models import User
from hpmail.core.forms import InputRefused
from hpmail.core.time import utcnow
from hpmail.delivery.models import PendingConsent
from hpmail.extensions import db
from hpmail.outbox import oauth
from hpmail.outbox.models import SendingProfile, ServerSettings, Transport, UserTransport
from hpmail.outbox.secrets import decrypt_secret, encrypt_secret

log = logging.getLogger(__name__)

SESSION_KEY = "oauth_consents"
KEPT_IN_SESSION = 5  # sign-ins started and not finished, per browser session


class ConsentRefused(InputRefused):
    """A sign-in that cannot start or finish; the message says why, in French."""


def return_page(transport: Transport, user: User) -> str | None:
    """Return the endpoint of the page where ``user`` configures ``transport``, or None.

    The server's transport and the profiles' are the admin's; a personal transport its user's
    alone (an admin does not sign in to a colleague's mailbox).
    """
    if db.session.scalar(
        select(UserTransport.user_id).where(
            UserTransport.transport_id == transport.id, UserTransport.user_id == user.id
        )
    ):
        return "delivery.personal_transport"
    if not user.is_admin:
        return None
    if db.session.scalar(
        select(ServerSettings.id).where(ServerSettings.transport_id == transport.id)
    ):
        return "delivery.server_settings"
    if db.session.scalar(
        select(SendingProfile.id).where(SendingProfile.transport_id == transport.id)
    ):
        return "delivery.profiles"
    return None


def _hash(state: str) -> str:
    return sha256(state.encode("utf-8", "replace")).hexdigest()


def _forget_old_consents() -> None:
    minutes = int(current_app.config["OAUTH_CONSENT_MINUTES"])
    db.session.execute(
        delete(PendingConsent).where(
            PendingConsent.created_at < utcnow() - timedelta(minutes=minutes)
        )
    )


def start(transport: Transport, user: User, redirect_uri: str) -> str:
    """Remember a new sign-in for ``transport`` and return the provider's consent page URL."""
    if not transport.uses_oauth:
        raise ConsentRefused(
            _("Choose Microsoft 365 or Google as the authentication and save, then sign in.")
        )
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters: within PKCE's 43 to 128
    try:
        url = oauth.authorization_url(
            transport.auth, redirect_uri, state, verifier, login_hint=transport.username
        )
    except oauth.OAuthProblem as problem:
        raise ConsentRefused(str(problem)) from None
    _forget_old_consents()
    db.session.add(
        PendingConsent(
            state_hash=_hash(state),
            user_id=user.id,
            transport_id=transport.id,
            provider=transport.auth,
            verifier_encrypted=encrypt_secret(verifier),
            redirect_uri=redirect_uri,
        )
    )
    db.session.flush()
    started = [h for h in session.get(SESSION_KEY, []) if isinstance(h, str)]
    session[SESSION_KEY] = (started + [_hash(state)])[-KEPT_IN_SESSION:]
    log.info(
        "%s started signing in to %s for transport %s", user.login, transport.auth, transport.id
    )
    return url


def _refused_state() -> ConsentRefused:
    return ConsentRefused(
        _(
            "This sign-in is not valid: it was already used, it expired, or it was not started "
            "from this session. Start again with the « Se connecter » button."
        )
    )


def finish(args, user: User) -> tuple[Transport, str]:
    """Finish the sign-in the provider sent back (``state``, then ``code`` or ``error``).

    Return the transport and the endpoint of its page. The pending row is deleted whatever
    happens (the caller commits even when this raises), so a ``state`` works once.
    """
    state = args.get("state") or ""
    state_hash = _hash(state)
    started = session.get(SESSION_KEY, [])
    if not state or state_hash not in started:
        raise _refused_state()
    session[SESSION_KEY] = [h for h in started if h != state_hash]
    pending = db.session.get(PendingConsent, state_hash)
    if pending is None:
        raise _refused_state()
    db.session.delete(pending)
    db.session.flush()
    minutes = int(current_app.config["OAUTH_CONSENT_MINUTES"])
    if pending.user_id != user.id or pending.created_at < utcnow() - timedelta(minutes=minutes):
        raise _refused_state()
    transport = db.session.get(Transport, pending.transport_id)
    page = return_page(transport, user) if transport is not None else None
    if page is None:
        raise _refused_state()
    label = oauth.provider_label(pending.provider)
    if args.get("error"):
        raise ConsentRefused(
            _(
                "%(provider)s did not give access (%(error)s): nothing was changed.",
                provider=label,
                error=(args.get("error") or "")[:80],
            )
        )
    if transport.auth != pending.provider:
        raise ConsentRefused(
            _("The authentication of this server changed meanwhile: nothing was changed.")
        )
    code = args.get("code") or ""
    if not code:
        raise ConsentRefused(_("%(provider)s sent back no code: start again.", provider=label))
    try:
        grant = oauth.exchange_code(
            pending.provider, code, pending.redirect_uri, decrypt_secret(pending.verifier_encrypted)
        )
    except oauth.OAuthProblem as problem:
        raise ConsentRefused(str(problem)) from None
    transport.oauth_refresh_encrypted = encrypt_secret(grant.refresh_token)
    transport.oauth_account = grant.account or transport.username
    transport.oauth_error = None
    db.session.flush()
    oauth.remember(transport, grant.access_token, grant.expires_at)
    log.info(
        "%s connected transport %s to %s as %s",
        user.login,
        transport.id,
        pending.provider,
        transport.oauth_account,
    )
    return transport, page
