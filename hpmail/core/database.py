"""Writing while another process holds the database: the one loop that tries again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

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
