"""Worker tasks on Huey: ``deliver(email_ids)``, the periodic sweeper and the files' clean-up.

The queue only says "look now"; a lost task costs nothing because ``sweep`` finds its rows again.
Each worker process starts its heartbeat (``outbox.heartbeat``) when its consumer starts.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from huey import crontab
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from hpmail import queue
from hpmail.extensions import db
from hpmail.outbox import claim, clock, health, heartbeat, send
from hpmail.outbox.attachments import remove_unused_files
from hpmail.outbox.limits import forget_old_counters
from hpmail.outbox.models import OutboundEmail
from hpmail.queue import huey

log = logging.getLogger(__name__)


@huey.task()
def deliver(email_ids: list[int]) -> None:
    """Send the due e-mails among ``email_ids`` (a worker task)."""
    with queue.app_context():
        try:
            delivery = send.deliver(email_ids)
        except OperationalError:
            # The database stayed locked: the rows are still in the outbox (queued, or sending
            # with a lease), so the sweeper gives them to a worker again. Nothing is lost.
            db.session.rollback()
            log.warning("database busy: %s e-mails left for the sweeper", len(email_ids))
            return
        if delivery.given_back:  # this worker is stopping: another one sends them now
            enqueue_delivery(delivery.given_back)
        if delivery.released:  # their server is back: due now
            enqueue_delivery(delivery.released)


@huey.on_startup()
def start_heartbeat() -> None:
    """Each worker (thread or process) at its start: the first of a process starts its heartbeat."""
    heartbeat.worker_started(enqueue_delivery)


@huey.on_shutdown()
def stop_heartbeat() -> None:
    """Each worker at its end: the last of a process gives back its rows and deletes its row."""
    heartbeat.worker_stopped()


def enqueue_delivery(email_ids: list[int]) -> int:
    """Enqueue ``deliver`` for ``email_ids`` in batches; return how many tasks were enqueued.

    Call it only after the rows are committed. If the queue cannot take the task, the rows stay
    in the outbox and the sweeper enqueues them later: nothing is lost, so nothing is raised.
    """
    size = current_app.config["DELIVERY_BATCH_SIZE"]
    tasks = 0
    for start in range(0, len(email_ids), size):
        try:
            deliver(list(email_ids[start : start + size]))
            tasks += 1
        except Exception:  # the database is the source of truth; the sweeper will enqueue them
            log.exception("could not enqueue delivery; the sweeper will pick these e-mails up")
    return tasks


def due_email_ids(now) -> list[int]:
    """Return the ids of rows a worker should look at: due, lost or abandoned.

    A queued row older than the grace was never picked up: its task was lost. Not while tasks
    still wait in the queue, though: behind a backlog (a mailing of thousands to a slow server)
    rows wait their turn longer than the grace, and enqueueing them again at each sweep would
    only pile up tasks that find nothing left to take. A task lost while others wait (a worker
    killed just after taking it) has its rows found once the queue is empty.
    """
    grace = timedelta(seconds=current_app.config["DELIVERY_QUEUED_GRACE_SECONDS"])
    if tasks_waiting():
        grace = None
    return list(
        db.session.scalars(
            select(OutboundEmail.id).where(claim.due(now, grace)).order_by(OutboundEmail.id)
        )
    )


def tasks_waiting() -> bool:
    """Tell whether the queue holds tasks not yet taken; no when it cannot be read."""
    try:
        return huey.pending_count() > 0
    except Exception:  # the queue is unreachable: look for lost rows, enqueueing will say why
        log.exception("could not count the tasks waiting in the queue")
        return False


def sweep() -> int:
    """Re-enqueue dead workers' rows, due deferred rows, lost queued rows and expired leases.

    Failing SMTP servers whose probe is due are probed too (the heartbeat probes them sooner).
    """
    released = heartbeat.take_over()
    back = health.probe_due()  # failing servers whose probe is due: their e-mails, if back
    now = clock.now()
    ids = sorted(set(due_email_ids(now)) | set(released) | set(back))
    forget_old_counters(now)
    db.session.commit()
    if ids:
        log.info("sweeper: %s e-mails to look at", len(ids))
        enqueue_delivery(ids)
    return len(ids)


def _sweep_every() -> int:
    if queue._app is not None:
        return max(1, int(queue._app.config["SWEEP_INTERVAL_MINUTES"]))
    return 1


@huey.periodic_task(crontab(minute=f"*/{_sweep_every()}"))
def sweep_outbox() -> None:
    """Periodic: run ``sweep`` in the worker."""
    with queue.app_context():
        sweep()


@huey.periodic_task(crontab(minute="23"))
def clean_attachments() -> None:
    """Periodic (hourly): remove the stored files no e-mail, template or signature uses."""
    with queue.app_context():
        try:
            remove_unused_files()
        except OperationalError:  # the database stayed locked: next hour will do
            db.session.rollback()
            log.warning("database busy: unused stored files left for the next clean-up")
