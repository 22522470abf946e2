"""The server's delivery settings (one row) and the transport a mailing goes through."""

from __future__ import annotations

from hpmail.extensions import db
from hpmail.outbox.models import ServerSettings, Transport, UserTransport


def server_settings() -> ServerSettings:
    """Return the settings row (id 1), creating it on first use (the caller commits)."""
    settings = db.session.get(ServerSettings, 1)
    if settings is None:
        settings = ServerSettings(id=1, delegate=True)
        db.session.add(settings)
        db.session.flush()
    return settings


def user_transport(user_id: int | None) -> Transport | None:
    """Return a user's own transport, or the transport of the profile they retrieved."""
    if user_id is None:
        return None
    chosen = db.session.get(UserTransport, user_id)
    if chosen is None:
        return None
    if chosen.profile is not None:
        return chosen.profile.transport
    return chosen.transport


def transport_for(author_id: int | None, kind: str) -> Transport | None:
    """Return the transport that carries a mailing of ``author_id``, by the delegation switch."""
    settings = server_settings()
    if settings.delegate or kind in ("test", "verification"):
        return settings.transport
    return user_transport(author_id) or None
