"""Worker tasks of documents on Huey: ``render_job(job_id)`` and the periodic sweeper.

The queue only says "look now": the job and its items are in the database, so a lost task or a
killed worker costs nothing; ``sweep`` hands a job whose lease expired to a worker again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from huey import crontab
from sqlalchemy.exc import OperationalError

from hpmail import queue
from hpmail.core.time import utcnow
from hpmail.documents import mailing, printing
from hpmail.documents.models import DocumentJob, JobState
from hpmail.extensions import db
from hpmail.outbox.api import InvalidHeader, NoTransport, OutboxBusy, dispatch_emails
from hpmail.queue import huey

log = logging.getLogger(__name__)


@huey.task()
def render_job(job_id: int) -> None:
    """Render a print job's pending documents and queue its e-mails (a worker task)."""
    with queue.app_context():
        try:
            run_job(job_id)
        except OperationalError:
            # The database stayed locked: the job keeps its lease until it expires, then the
            # sweeper gives it to a worker again. Its rendered items are kept.
            db.session.rollback()
            log.warning("database busy: print job %s left for the sweeper", job_id)


def enqueue_job(job_id: int) -> None:
    """Tell a worker to look at this committed job (the sweeper is the net if this fails)."""
    try:
        render_job(job_id)
    except Exception:  # the database is the truth: the sweeper enqueues the job later
        log.exception("could not enqueue print job %s; the sweeper will pick it up", job_id)


def queue_emails(job: DocumentJob) -> None:
    """Queue, commit and dispatch the e-mails of the job's documents ready so far."""
    try:
        email_ids = mailing.queue_ready_emails(job)
        db.session.commit()
    except (InvalidHeader, NoTransport, OutboxBusy) as refused:
        db.session.rollback()
        log.warning("print job %s: e-mails not queued: %s", job.id, refused)
        job.error = str(refused)
        db.session.commit()
        return
    dispatch_emails(email_ids)


def run_job(job_id: int) -> None:
    """Take the job, render what is pending, store its file, queue its e-mails, let it go.

    A mail the user sends while another turn holds the lease is queued by that turn's holder
    on its next look (the loop below) or by the task the send enqueued: never by both.
    """
    for _turn in range(3):
        if not printing.claim_job(job_id, utcnow()):
            return
        job = db.session.get(DocumentJob, job_id)
        try:
            if job.state == JobState.RENDERING:
                printing.render_pending(job, after_chunk=queue_emails)
                printing.finish_job(job, mailing.printed_items(job))
                db.session.commit()
            queue_emails(job)
        except OperationalError:
            raise  # the database is busy: the sweeper hands the job out again later
        except Exception as error:  # noqa: BLE001 - a job that cannot go on must not come back
            db.session.rollback()
            log.exception("print job %s failed", job_id)
            printing.fail_job(job_id, error)
            return
        finally:
            printing.release_job(job_id)
        db.session.expire_all()
        job = db.session.get(DocumentJob, job_id)
        if not job.mail or job.error or not mailing.waiting_emails(job):
            return


def sweep() -> int:
    """Hand lost jobs to a worker again, and delete the old ones; return how many were handed."""
    now = utcnow()
    grace = timedelta(seconds=current_app.config["DOCUMENT_JOB_GRACE_SECONDS"])
    lost = printing.lost_jobs(now, grace) + mailing.jobs_with_mail_to_queue()
    printing.delete_old_jobs(now)
    db.session.commit()
    for job_id in lost:
        enqueue_job(job_id)
    if lost:
        log.info("documents sweeper: %s print jobs handed to a worker again", len(lost))
    return len(lost)


def _sweep_every() -> int:
    if queue._app is not None:
        return max(1, int(queue._app.config["SWEEP_INTERVAL_MINUTES"]))
    return 1


@huey.periodic_task(crontab(minute=f"*/{_sweep_every()}"))
def sweep_documents() -> None:
    """Periodic: run ``sweep`` in the worker."""
    with queue.app_context():
        sweep()
