"""Sign-ins to a provider that were started and not finished yet (OAuth2 ``state``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from hpmail.core.time import utcnow
from hpmail.extensions import db


class PendingConsent(db.Model):
    """One « Se connecter avec Microsoft / Google » between the click and the provider's return.

    The row is the server's memory of the ``state`` it sent (kept as a SHA-256, never in clear):
    it is taken once by the callback, so a replayed or foreign ``state`` finds nothing. The PKCE
    verifier is encrypted like the SMTP secrets.
    """

    __tablename__ = "pending_consent"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    transport_id: Mapped[int] = mapped_column(
        ForeignKey("transport.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(10))
    verifier_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
