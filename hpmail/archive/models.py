"""The archive's search index: each mailing's words (subject, body, recipients), normalised."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hpmail.extensions import db
from hpmail.outbox.models import Mailing


class ArchiveWord(db.Model):
    """A word of a mailing, lower-case without accents; searched by exact match or prefix."""

    __tablename__ = "archive_word"
    __table_args__ = (Index("ix_archive_word_mailing", "mailing_id"),)

    # Byte order on PostgreSQL too (collation "C"), so that a prefix is one index range.
    word: Mapped[str] = mapped_column(
        String(40).with_variant(String(40, collation="C"), "postgresql"), primary_key=True
    )
    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailing.id", ondelete="CASCADE"), primary_key=True
    )


class ArchiveIndexed(db.Model):
    """A mailing whose words are in the index (the others are indexed at the next search)."""

    __tablename__ = "archive_indexed"

    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailing.id", ondelete="CASCADE"), primary_key=True
    )


# The archive lists an account's mailings newest first. The index is on the delivery engine's
# table; it is declared here, with the query that needs it (one more index, nothing renamed).
Index("ix_mailing_account_created", Mailing.account_id, Mailing.created_at)
