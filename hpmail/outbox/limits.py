"""Sending limits per transport (per minute, per day), counted in the database for every worker."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from hpmail.extensions import db
from hpmail.outbox.models import SendCounter, Transport


def _windows(transport: Transport, now: datetime) -> list[tuple[str, int, datetime, datetime]]:
    windows = []
    if transport.per_minute:
        start = now.replace(second=0, microsecond=0)
        windows.append(("minute", transport.per_minute, start, start + timedelta(minutes=1)))
    if transport.per_day:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        windows.append(("day", transport.per_day, start, start + timedelta(days=1)))
    return windows


def _insert_ignoring_duplicates():
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(SendCounter)


def _take(key: tuple, limit: int, wanted: int) -> int:
    """Add up to ``wanted`` to one counter without passing ``limit``; return how many were added."""
    transport_id, window, start = key
    db.session.execute(
        _insert_ignoring_duplicates()
        .values(transport_id=transport_id, window=window, window_start=start, count=0)
        .on_conflict_do_nothing()
    )
    where = (
        (SendCounter.transport_id == transport_id)
        & (SendCounter.window == window)
        & (SendCounter.window_start == start)
    )
    for _attempt in range(20):
        count = db.session.scalar(select(SendCounter.count).where(where)) or 0
        granted = min(wanted, limit - count)
        if granted <= 0:
            return 0
        # Compare and set: another worker may have counted in between; then read again.
        done = db.session.execute(
            update(SendCounter)
            .where(where & (SendCounter.count == count))
            .values(count=count + granted)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1:
            return granted
    return 0


def _give_back(key: tuple, amount: int) -> None:
    transport_id, window, start = key
    db.session.execute(
        update(SendCounter)
        .where(
            (SendCounter.transport_id == transport_id)
            & (SendCounter.window == window)
            & (SendCounter.window_start == start)
        )
        .values(count=SendCounter.count - amount)
        .execution_options(synchronize_session=False)
    )


def reserve(transport: Transport, wanted: int, now: datetime) -> tuple[int, datetime | None]:
    """Count up to ``wanted`` messages against the transport's limits (the caller commits).

    Return how many may go now and, when some are held back, when the next window opens.
    """
    granted = wanted
    taken: list[tuple[tuple, int]] = []
    reopens = None
    for window, limit, start, end in _windows(transport, now):
        key = (transport.id, window, start)
        got = _take(key, limit, granted)
        if got < granted:
            reopens = max(reopens or end, end)
            for earlier, amount in taken:
                _give_back(earlier, amount - got)
            taken = [(earlier, got) for earlier, _amount in taken]
        granted = got
        taken.append((key, got))
        if granted == 0:
            break
    return granted, reopens if granted < wanted else None


def forget_old_counters(now: datetime) -> None:
    """Delete counters of windows that closed more than two days ago."""
    db.session.execute(
        delete(SendCounter).where(SendCounter.window_start < now - timedelta(days=2))
    )
