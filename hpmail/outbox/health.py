"""A transport's health: the server's failures are the transport's state, not each e-mail's.

When an SMTP server cannot be reached (refused, timeout, unknown name, TLS handshake, 421:
``smtp.server_failing``), every e-mail through it would fail the same way. Backing each one off
on its own (1 minute doubling to 1 hour) would leave mail waiting up to an hour after the server
is back. Instead the transport records that it fails (``failing_since``, ``last_failure``,
``next_probe_at``) and its e-mails wait for it (``OutboundEmail.waits_for_transport``), their
own attempts and backoff unchanged. One worker at a time (``claim_probe``: a conditional UPDATE
on ``next_probe_at``, like rows are claimed) probes it at most every ``TRANSPORT_PROBE_SECONDS``:
connect, EHLO, STARTTLS and login as configured, QUIT. When the server answers again, every
e-mail waiting for it is due at once and enqueued; the sending limits still apply when they are
sent (``limits.reserve``).

An e-mail waiting for its transport is due at its give-up time (``next_attempt_at``): the time
for retries counts from its creation whatever it waited for, so that an e-mail behind a server
gone for days still fails for good, visibly, after ``DELIVERY_GIVE_UP_AFTER_SECONDS``.

Each worker's heartbeat starts the due probes in a thread of their own (``probe_soon``), so
that a server slow to time out never delays a heartbeat; the sweeper probes too (``probe_due``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import and_, case, func, select, update

from hpmail.core.database import retry_while_locked
from hpmail.extensions import db
from hpmail.outbox import clock
from hpmail.outbox.models import EmailState, Mailing, OutboundEmail, Transport
from hpmail.outbox.smtp import Failure, classify, close_quietly, connect, server_failing

log = logging.getLogger(__name__)


def probe_interval() -> timedelta:
    """Return the time between two probes of a failing transport."""
    return timedelta(seconds=float(current_app.config["TRANSPORT_PROBE_SECONDS"]))


def mark_failing(transport_id: int, failure: Failure, now: datetime) -> None:
    """Record that the transport's server fails (since now, unless it failed already); commit.

    A transport failing already keeps the probe it has planned: a worker that failed to reach
    it meanwhile does not push the next probe back.
    """
    first_probe = now + probe_interval()

    def work() -> None:
        db.session.execute(
            update(Transport)
            .where(Transport.id == transport_id)
            .values(
                failing_since=func.coalesce(Transport.failing_since, now),
                last_failure=failure.message,
                next_probe_at=case(
                    (Transport.failing_since.is_(None), first_probe),
                    else_=func.coalesce(Transport.next_probe_at, first_probe),
                ),
            )
            .execution_options(synchronize_session=False)
        )
        db.session.commit()

    retry_while_locked(work, attempts=5, what="recording a failing SMTP server")
    log.warning("SMTP server of transport %s failing: %s", transport_id, failure.message)


def _waiting(transport_condition):
    """Return the condition of e-mails waiting for a transport that matches the condition."""
    through = select(Mailing.id).where(
        Mailing.transport_id.in_(select(Transport.id).where(transport_condition))
    )
    return and_(
        OutboundEmail.state == EmailState.DEFERRED,
        OutboundEmail.waits_for_transport.is_(True),
        OutboundEmail.mailing_id.in_(through),
    )


def _release(condition, now: datetime) -> list[int]:
    """Make the e-mails matching ``condition`` due now, no longer waiting; return their ids."""
    return list(
        db.session.scalars(
            update(OutboundEmail)
            .where(condition)
            .values(waits_for_transport=False, next_attempt_at=now)
            .returning(OutboundEmail.id)
            .execution_options(synchronize_session=False)
        )
    )


def mark_healthy(transport_id: int, now: datetime) -> list[int]:
    """Record that the transport's server answers; release the e-mails waiting for it; commit.

    Return their ids, to enqueue: they are due now.
    """

    def work() -> list[int]:
        db.session.execute(
            update(Transport)
            .where(Transport.id == transport_id, Transport.failing_since.is_not(None))
            .values(failing_since=None, last_failure=None, next_probe_at=None)
            .execution_options(synchronize_session=False)
        )
        released = _release(_waiting(Transport.id == transport_id), now)
        db.session.commit()
        return released

    released = retry_while_locked(work, attempts=5, what="recording an SMTP server back")
    log.info("SMTP server of transport %s back: %s e-mails due now", transport_id, len(released))
    return released


def release_forgotten(now: datetime) -> list[int]:
    """Release e-mails waiting for a transport that is not failing; commit; return their ids.

    A worker may record its e-mails as waiting just after another one found the server back:
    without this they would wait for a probe that never comes.
    """

    forgotten = _waiting(Transport.failing_since.is_(None))
    # Read first: most of the time none is, and a read takes no write lock on SQLite.
    if db.session.scalar(select(OutboundEmail.id).where(forgotten).limit(1)) is None:
        db.session.rollback()
        return []

    def work() -> list[int]:
        released = _release(forgotten, now)
        db.session.commit()
        return released

    released = retry_while_locked(work, attempts=3, what="releasing e-mails")
    if released:
        log.info("%s e-mails waited for a server that is not failing: due now", len(released))
    return released


def claim_probe(transport_id: int, now: datetime) -> bool:
    """Take the due probe of a failing transport for this worker (one conditional UPDATE); commit.

    The next probe is planned at once, so that another worker asking now finds none due.
    """

    def work() -> bool:
        taken = db.session.execute(
            update(Transport)
            .where(
                Transport.id == transport_id,
                Transport.failing_since.is_not(None),
                Transport.next_probe_at <= now,
            )
            .values(next_probe_at=now + probe_interval())
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        return taken == 1

    return retry_while_locked(work, attempts=3, what="claiming a probe")


def probe(transport: Transport) -> Failure | None:
    """Open a session with the transport's server as sending does, then QUIT.

    Return the failure when the server still fails, None when it answers (a refused login is
    the settings' problem, not the server's: its e-mails go and say so themselves).
    """
    try:
        close_quietly(connect(transport))
    except Exception as error:  # noqa: BLE001 - every failure is classified
        if server_failing(error):
            return classify(error)
    return None


def probe_due() -> list[int]:
    """Probe each failing transport whose probe is due and that this worker claims.

    Return the ids of the e-mails released (their server is back), to enqueue.
    """
    now = clock.now()
    released = release_forgotten(now)
    due = db.session.scalars(
        select(Transport.id).where(
            Transport.failing_since.is_not(None), Transport.next_probe_at <= now
        )
    ).all()
    db.session.rollback()
    for transport_id in due:
        if not claim_probe(transport_id, now):
            continue  # another worker probes it
        transport = db.session.get(Transport, transport_id)
        if transport is None:
            continue
        failure = probe(transport)
        db.session.rollback()  # the probe read the transport only
        if failure is not None:
            mark_failing(transport_id, failure, clock.now())
        else:
            released += mark_healthy(transport_id, clock.now())
    return released


_probing = threading.Lock()


def probe_soon(enqueue: Callable[[list[int]], object], app: Flask | None = None) -> bool:
    """Run ``probe_due`` in a thread of its own unless this process runs one already.

    Its released e-mails are handed to ``enqueue``. Return whether a thread was started.
    """
    if not _probing.acquire(blocking=False):
        return False
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> None:
        try:
            with app.app_context():
                try:
                    released = probe_due()
                    if released:
                        enqueue(released)
                except Exception:  # noqa: BLE001 - the database may be away: next round retries
                    db.session.rollback()
                    log.exception("probing failing SMTP servers failed")
        finally:
            _probing.release()

    try:
        threading.Thread(target=run, name="probe", daemon=True).start()
    except BaseException:
        _probing.release()
        raise
    return True
