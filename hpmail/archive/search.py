"""Search of sent e-mails by words: a word → mailing table that works on SQLite and PostgreSQL.

Words are lower-case without accents (as the directory folds names). A mailing is indexed (subject,
body, recipients' names and addresses) the first time the archive is read after it was queued, so
that mailings from every feature are found, however their rows were inserted.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import func, insert, intersect, select
from sqlalchemy.exc import IntegrityError

from hpmail.archive.models import ArchiveIndexed, ArchiveWord
from hpmail.core.text import fold
from hpmail.extensions import db
from hpmail.outbox.models import EmailRecipient, Mailing, OutboundEmail

log = logging.getLogger(__name__)

WORD = re.compile(r"[0-9a-z]+")
WORD_MAX = 40
WORDS_PER_MAILING = 2000
BATCH = 500
# Mailings below the highest indexed id minus this margin are taken as indexed: the margin covers
# transactions that commit out of id order (PostgreSQL sequences).
LOOKBACK = 1000


def words_of(*texts: str | None) -> set[str]:
    """Return the searchable words of ``texts`` (two characters or more, folded)."""
    words: set[str] = set()
    for text in texts:
        if text:
            words.update(w[:WORD_MAX] for w in WORD.findall(fold(text)) if len(w) > 1)
    return words


def query_words(text: str) -> list[str]:
    """Return the words of a search, in order, each once."""
    seen: list[str] = []
    for word in WORD.findall(fold(text or "")):
        word = word[:WORD_MAX]
        if word not in seen:
            seen.append(word)
    return seen[:8]


def index_mailings(mailing_ids: list[int]) -> int:
    """Add the words of these mailings to the index (flushed); return how many were indexed."""
    if not mailing_ids:
        return 0
    words: dict[int, set[str]] = {}
    for mailing_id, subject, text_body in db.session.execute(
        select(Mailing.id, Mailing.subject, Mailing.text_body).where(Mailing.id.in_(mailing_ids))
    ):
        words[mailing_id] = words_of(subject, text_body)
    recipients = (
        select(OutboundEmail.mailing_id, EmailRecipient.name, EmailRecipient.address)
        .join(EmailRecipient, EmailRecipient.email_id == OutboundEmail.id)
        .where(OutboundEmail.mailing_id.in_(mailing_ids))
    )
    for mailing_id, name, address in db.session.execute(recipients):
        if len(words[mailing_id]) < WORDS_PER_MAILING:
            words[mailing_id].update(words_of(name, address))
    rows = [
        {"word": word, "mailing_id": mailing_id}
        for mailing_id, found in words.items()
        for word in sorted(found)[:WORDS_PER_MAILING]
    ]
    if rows:
        db.session.execute(insert(ArchiveWord), rows)
    db.session.execute(insert(ArchiveIndexed), [{"mailing_id": m} for m in words])
    db.session.flush()
    return len(words)


def unindexed_ids(limit: int) -> list[int]:
    """Return ids of mailings not yet in the index."""
    highest = db.session.scalar(select(func.max(ArchiveIndexed.mailing_id))) or 0
    indexed = select(ArchiveIndexed.mailing_id).where(ArchiveIndexed.mailing_id == Mailing.id)
    query = (
        select(Mailing.id)
        .where(Mailing.id > highest - LOOKBACK, ~indexed.exists())
        .order_by(Mailing.id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def refresh_index(limit: int = 20_000) -> int:
    """Index the mailings queued since the last refresh (committed); return how many."""
    done = 0
    while done < limit:
        ids = unindexed_ids(min(BATCH, limit - done))
        if not ids:
            break
        try:
            index_mailings(ids)
            db.session.commit()
        except IntegrityError:  # another request indexed them at the same moment
            db.session.rollback()
            break
        done += len(ids)
    if done:
        log.info("archive index: %d mailings indexed", done)
    return done


def rebuild_index() -> int:
    """Empty the index and index every mailing again (committed); return how many."""
    db.session.execute(ArchiveWord.__table__.delete())
    db.session.execute(ArchiveIndexed.__table__.delete())
    db.session.commit()
    total = 0
    while True:
        indexed = select(ArchiveIndexed.mailing_id).where(ArchiveIndexed.mailing_id == Mailing.id)
        ids = list(
            db.session.scalars(
                select(Mailing.id).where(~indexed.exists()).order_by(Mailing.id).limit(BATCH)
            )
        )
        if not ids:
            return total
        total += index_mailings(ids)
        db.session.commit()


def matching_ids(text: str):
    """Return a SELECT of the ids of mailings holding every word (the last one as a prefix)."""
    words = query_words(text)
    if not words:
        return None
    *exact, last = words
    exact = [w for w in exact if len(w) > 1]  # one-letter words are not indexed
    selects = [select(ArchiveWord.mailing_id).where(ArchiveWord.word == w) for w in exact]
    # Only letters and digits are indexed, so "{" sorts after every word starting with ``last``.
    selects.append(
        select(ArchiveWord.mailing_id).where(
            ArchiveWord.word >= last, ArchiveWord.word < last + "{"
        )
    )
    return selects[0] if len(selects) == 1 else intersect(*selects)
