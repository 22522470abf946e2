"""Worker heartbeats: each worker process says it lives; the e-mails of a dead one go to another.

Each ``huey_consumer`` process (its thread workers share it; process workers have one each)
writes its ``WorkerProcess`` row every ``HEARTBEAT_SECONDS`` from a thread of its own, so a worker
waiting for a slow SMTP server still beats. The same thread releases the rows claimed by workers
silent for longer than ``dead_after`` (or that have no row) and enqueues them: a killed worker's
e-mails leave within seconds, not when their lease ends. The sweeper does the same.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import and_, delete, func, select, update

from hpmail import queue
from hpmail.core.database import retry_while_locked
from hpmail.core.time import utcnow
from hpmail.extensions import db
from hpmail.outbox import claim, health
from hpmail.outbox.models import EmailState, OutboundEmail, WorkerProcess

log = logging.getLogger(__name__)

# How often the heartbeat thread looks whether its consumer was asked to stop (seconds).
LOOK_EVERY = 0.5


def heartbeat_seconds(config) -> float:
    """Return the time between two heartbeats of a worker process."""
    return float(config["HEARTBEAT_SECONDS"])


def dead_after(config) -> timedelta:
    """Return how long a worker may be silent before it is dead: 3 heartbeats unless configured.

    Never less than 2 heartbeats: a living worker one beat late must not be robbed of its rows.
    """
    beat = heartbeat_seconds(config)
    configured = config.get("WORKER_DEAD_AFTER_SECONDS") or 3 * beat
    return timedelta(seconds=max(float(configured), 2 * beat))


def database_now() -> datetime:
    """Return the time (naive UTC) by the database's clock on PostgreSQL, shared by every machine.

    Heartbeats written and judged on one clock: a worker on a machine whose clock runs a few
    seconds late is not taken for dead. SQLite is on this machine: its clock is this one.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        value = db.session.scalar(select(func.statement_timestamp()))
        return value.astimezone(UTC).replace(tzinfo=None)
    return utcnow()


def new_worker_id() -> str:
    """Return a name no other worker process has had: ``host:pid:random``."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class _Process:
    """This worker process's heartbeat: its row, its thread and its consumer's workers."""

    worker_id: str
    app: Flask
    enqueue: Callable[[list[int]], object]
    pid: int = field(default_factory=os.getpid)
    workers: int = 0  # huey workers (threads) of this process still running
    stopping: bool = False  # asked to stop: said so in its row
    done: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    beaten_at: float | None = None  # time.monotonic() of the last beat written
    steady: bool = False  # its last two beats came on time

    def on_time(self) -> bool:
        """Tell whether this process beat on time lately, so that it may judge others.

        After the database was locked or unreachable for a while, every worker is as late as
        this one: judged now, they would all look dead.
        """
        interval = heartbeat_seconds(self.app.config)
        return (
            self.steady
            and self.beaten_at is not None
            and time.monotonic() - self.beaten_at <= 2 * interval
        )


_lock = threading.Lock()
_process: _Process | None = None


def _current() -> _Process | None:
    """Return the heartbeat of this process (not of the parent a worker was forked from)."""
    if _process is not None and _process.pid == os.getpid():
        return _process
    return None


def beat(process: _Process, now: datetime) -> None:
    """Write this process's row (seen now), forget long-dead workers' rows, and commit."""
    values = {"seen_at": now, "stopping": process.stopping}
    written = db.session.execute(
        update(WorkerProcess).where(WorkerProcess.id == process.worker_id).values(**values)
    ).rowcount
    if not written:
        if process.beaten_at is not None:
            log.warning("worker %s was taken for dead: its row is written again", process.worker_id)
        db.session.add(
            WorkerProcess(
                id=process.worker_id,
                host=socket.gethostname(),
                pid=process.pid,
                started_at=now,
                **values,
            )
        )
    forget = timedelta(seconds=current_app.config["WORKER_FORGET_AFTER_SECONDS"])
    db.session.execute(delete(WorkerProcess).where(WorkerProcess.seen_at < now - forget))
    db.session.commit()
    beaten_at = time.monotonic()
    interval = heartbeat_seconds(current_app.config)
    process.steady = process.beaten_at is not None and beaten_at - process.beaten_at <= 2 * interval
    process.beaten_at = beaten_at
    if claim.this_worker() is None:
        claim.set_this_worker(process.worker_id)  # its row exists: the rows it claims name it


def take_over() -> list[int]:
    """Release the rows claimed by dead workers, committed; return their ids, to enqueue.

    A worker is dead when its row is older than ``dead_after`` or gone. Its rows are queued again
    at once, the attempt not counted (see ``claim.release``). Rows claimed by no worker (sent in a
    request) are left to their lease.
    """
    process = _current()
    if process is not None and not process.on_time():
        return []
    now = database_now()
    living = select(WorkerProcess.id).where(
        WorkerProcess.seen_at >= now - dead_after(current_app.config)
    )
    orphaned = and_(OutboundEmail.claimed_by.is_not(None), OutboundEmail.claimed_by.not_in(living))
    # Read first: most of the time no worker is dead, and a read takes no write lock on SQLite.
    dead = db.session.scalars(
        select(OutboundEmail.claimed_by)
        .where(OutboundEmail.state == EmailState.SENDING, orphaned)
        .distinct()
    ).all()
    if not dead:
        db.session.rollback()
        return []

    def work() -> list[int]:
        released = claim.release(orphaned, now, give_up=True)
        db.session.commit()
        return released

    released = retry_while_locked(work, attempts=3, what="releasing a dead worker's e-mails")
    if released:
        log.warning(
            "%s e-mails of stopped workers (%s) released", len(released), ", ".join(sorted(dead))
        )
    return released


def _round(process: _Process) -> None:
    """Beat, then release dead workers' rows and enqueue them; a failure waits for next time."""
    with process.app.app_context():
        try:
            beat(process, database_now())
            released = take_over()
            if released:
                process.enqueue(released)
            # Failing SMTP servers are probed within seconds of their probe's time, not at the
            # next sweep (in a thread of their own: a probe may wait for its timeout).
            health.probe_soon(process.enqueue, process.app)
        except Exception:  # noqa: BLE001 - the database may be away a moment: beat again later
            db.session.rollback()
            log.exception("worker %s could not write its heartbeat", process.worker_id)


def _run(process: _Process) -> None:
    interval = heartbeat_seconds(process.app.config)
    next_at = time.monotonic() + interval
    while not process.done.wait(min(interval, LOOK_EVERY)):
        if not process.stopping and queue.stopping():
            process.stopping = True
            next_at = 0  # say it now
        if time.monotonic() >= next_at:
            next_at = time.monotonic() + interval
            _round(process)


def worker_started(enqueue: Callable[[list[int]], object]) -> None:
    """Count a huey worker of this process; the first one starts the process's heartbeat.

    huey's startup hook: it runs in each worker (thread or forked process). The first beat is
    written before any task runs, so the rows this process claims name a worker that exists.
    """
    global _process
    with _lock:
        process = _current()
        if process is None:
            process = _Process(new_worker_id(), queue._app, enqueue)
            _process = process
        process.workers += 1
        if process.thread is not None:
            return
        with process.app.app_context():
            try:
                beat(process, database_now())
            except Exception:  # noqa: BLE001 - the thread tries again; claims name no one meanwhile
                db.session.rollback()
                log.exception("worker %s could not write its first heartbeat", process.worker_id)
        process.thread = threading.Thread(
            target=_run, args=(process,), name="heartbeat", daemon=True
        )
        process.thread.start()
        log.info("worker %s started its heartbeat", process.worker_id)


def worker_stopped() -> None:
    """Uncount a huey worker; after the last one, give back what is still held, delete the row.

    huey's shutdown hook. The deliveries gave their rows back already when asked to stop; this
    catches rows a task left claimed (it ended on an error), then the row is marked stopping and
    deleted, so that no one waits for this worker.
    """
    global _process
    with _lock:
        process = _current()
        if process is None:
            return
        process.workers -= 1
        if process.workers > 0:
            return
        process.done.set()
        if process.thread is not None:
            process.thread.join(30)
        _process = None
    with process.app.app_context():
        try:
            process.stopping = True
            now = database_now()
            beat(process, now)
            held = claim.release(OutboundEmail.claimed_by == process.worker_id, now, give_up=False)
            db.session.execute(delete(WorkerProcess).where(WorkerProcess.id == process.worker_id))
            db.session.commit()
            claim.set_this_worker(None)
            if held:
                log.warning("worker %s gave back %s e-mails", process.worker_id, len(held))
                process.enqueue(held)
        except Exception:  # noqa: BLE001 - stopping anyway: the others will take over its rows
            db.session.rollback()
            log.exception("worker %s could not say it stopped", process.worker_id)
    log.info("worker %s stopped", process.worker_id)
