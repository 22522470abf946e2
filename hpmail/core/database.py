"""Writing while another process holds the database: the one loop that tries again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import DDL, Index, event
from sqlalchemy.exc import OperationalError

from hpmail.extensions import db

log = logging.getLogger(__name__)

T = TypeVar("T")


def retry_while_locked(
    work: Callable[[], T],
    *,
    attempts: int,
    what: str,
    busy: tuple[type[Exception], ...] = (OperationalError,),
) -> T:
    """Run ``work``, which writes and commits; while the database stays locked, roll back and
    run it again a moment later, at most ``attempts`` times, then let the last error through.

    SQLite answers "database is locked" once its busy timeout has passed (the worker or the
    sweeper was writing); a second try a moment later nearly always gets through. ``work`` must
    redo every write, since the rollback forgets them. ``busy`` names the errors that mean
    "locked" (a caller's own exception wrapping ``OperationalError`` among them).
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except busy as error:
            db.session.rollback()
            if attempt == attempts:
                raise
            log.warning("database busy while %s (try %s): %s", what, attempt, error)
            time.sleep(0.2 * attempt)
    raise ValueError("attempts must be at least 1")


# Trigram indexes (below) need PostgreSQL's pg_trgm, a "trusted" extension that the owner of the
# database may create; ``create_all`` creates it first, the migration that adds them too.
event.listen(
    db.metadata,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)


def trigram_index(name: str, column: str) -> Index:
    """Return a GIN trigram index on ``column``, made on PostgreSQL only.

    The text filters search a folded column with ``LIKE '%word%'``, which no B-tree can serve:
    SQLite scans the rows (fast enough for a school's directory, and it counts from a covering
    index), while PostgreSQL, whose installations are the big ones, finds the rows holding the
    word's trigrams in this index. SQLite's schema gets nothing (``schema_objects_of``).
    """
    index = Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
    return index.ddl_if(dialect="postgresql")


def schema_objects_of(dialect: str) -> Callable:
    """Return Alembic's ``include_object`` that leaves out what another database only has.

    Alembic compares every index of the models, even those made on one database only
    (``ddl_if``); this keeps ``flask db migrate`` and the schema test from asking for them on
    SQLite.
    """

    def include(item, _name, type_, reflected, _compare_to) -> bool:
        condition = getattr(item, "_ddl_if", None)
        if type_ != "index" or reflected or condition is None or condition.dialect is None:
            return True
        dialects = condition.dialect
        return dialect in ((dialects,) if isinstance(dialects, str) else dialects)

    return include
