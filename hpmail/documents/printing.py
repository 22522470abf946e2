"""The worker's side of a print job: taken with one conditional UPDATE and a lease, rendered
chunk by chunk (each chunk's files stored at once, its items recorded, the lease renewed and
committed), then its one file stored: the PDF to print, the ZIP of PDFs, or the printed copy.

A killed worker leaves only pending items behind: ``lost_jobs`` finds the job when its lease has
expired, and the next worker goes on from there.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, case, delete, or_, select, update

from hpmail.core.time import utcnow
from hpmail.directory.models import Cohort, Group
from hpmail.documents.content import OwnerKind, cohort_document, group_document, person_documents
from hpmail.documents.jobs import layout_of, period_of
from hpmail.documents.layout import DOCUMENT_KIND_LABELS, DocumentKind, Output
from hpmail.documents.letterhead import current_letterhead
from hpmail.documents.models import DocumentJob, DocumentJobItem, ItemState, JobState
from hpmail.documents.render import (
    RenderError,
    printed_copy,
    render_documents,
    safe_filename,
    zip_of,
)
from hpmail.extensions import db
from hpmail.outbox.attachments import read_attachment, store_attachment, store_attachments

log = logging.getLogger(__name__)


def _lease() -> timedelta:
    return timedelta(seconds=current_app.config["DOCUMENT_JOB_LEASE_SECONDS"])


def claim_job(job_id: int, now: datetime) -> bool:
    """Take the job with one conditional UPDATE and a lease, unless another worker holds it."""
    claimed = db.session.scalar(
        update(DocumentJob)
        .where(
            DocumentJob.id == job_id,
            DocumentJob.state.in_((JobState.WAITING, JobState.RENDERING, JobState.DONE)),
            or_(DocumentJob.lease_until.is_(None), DocumentJob.lease_until < now),
        )
        .values(
            lease_until=now + _lease(),
            state=case(
                (DocumentJob.state == JobState.DONE, JobState.DONE), else_=JobState.RENDERING
            ),
        )
        .returning(DocumentJob.id)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return claimed is not None


def renew_lease(job: DocumentJob) -> None:
    job.lease_until = utcnow() + _lease()


def release_job(job_id: int) -> None:
    """Let the job go (committed): the sweeper or a new task may take it again."""
    db.session.execute(
        update(DocumentJob)
        .where(DocumentJob.id == job_id)
        .values(lease_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _documents_of(job: DocumentJob, items: list[DocumentJobItem]) -> dict[int, object]:
    """Return each pending item's document by item id, loaded in one go."""
    kind, period = DocumentKind(job.kind), period_of(job)
    people = [item.owner_id for item in items if item.owner_kind == OwnerKind.PERSON]
    found = person_documents(kind, people, period) if people else {}
    documents = {}
    for item in items:
        if item.owner_kind == OwnerKind.PERSON and item.owner_id in found:
            documents[item.id] = found[item.owner_id]
        elif item.owner_kind == OwnerKind.COHORT:
            cohort = db.session.get(Cohort, item.owner_id)
            if cohort is not None:
                documents[item.id] = cohort_document(kind, cohort, period)
        elif item.owner_kind == OwnerKind.GROUP:
            group = db.session.get(Group, item.owner_id)
            if group is not None:
                documents[item.id] = group_document(kind, group, period)
    return documents


def render_pending(job: DocumentJob, after_chunk=None) -> int:
    """Render the job's pending items, storing each one's files; commit every chunk.

    ``after_chunk(job)`` runs after each commit (e-mails of the ready items are queued there).
    A document that cannot be rendered fails alone, with the reason. Return how many were done.
    """
    items = db.session.execute(
        select(
            DocumentJobItem.id,
            DocumentJobItem.owner_kind,
            DocumentJobItem.owner_id,
            DocumentJobItem.name,
        )
        .where(DocumentJobItem.job_id == job.id, DocumentJobItem.state == ItemState.PENDING)
        .order_by(DocumentJobItem.position)
    ).all()
    documents = _documents_of(job, items)
    gone = [item for item in items if item.id not in documents]
    reason = _("Not in the directory any more.")
    _record([{"item": item.id, "state": ItemState.FAILED, "error": reason} for item in gone])
    to_render = [item for item in items if item.id in documents]
    chunk = max(1, int(current_app.config["DOCUMENT_JOB_CHUNK"]))
    png = job.output == Output.EMAIL and job.inline_png
    results = render_documents(
        [documents[item.id] for item in to_render],
        layout_of(job),
        current_letterhead(),
        png=png,
        processes=current_app.config["DOCUMENT_RENDER_PROCESSES"],
    )
    done, batch = len(gone), []
    for index, rendered in results:
        batch.append((to_render[index], rendered))
        if len(batch) >= chunk:
            done += _store_chunk(job, batch, png, after_chunk)
            batch = []
    done += _store_chunk(job, batch, png, after_chunk)
    return done


def _store_chunk(job: DocumentJob, batch: list, png: bool, after_chunk) -> int:
    """Store a chunk's files at once, record its items, renew the lease and commit."""
    ready = [(item, rendered) for item, rendered in batch if not isinstance(rendered, RenderError)]
    files = [(rendered.pdf, "application/pdf") for _item, rendered in ready]
    if png:
        files += [(rendered.png, "image/png") for _item, rendered in ready]
    stored = store_attachments(files)
    pdfs, pngs = stored[: len(ready)], stored[len(ready) :]
    rows = [
        {
            "item": item.id,
            "state": ItemState.READY,
            "pdf_id": pdfs[n].id,
            "png_id": pngs[n].id if png else None,
        }
        for n, (item, _rendered) in enumerate(ready)
    ]
    for item, rendered in batch:
        if isinstance(rendered, RenderError):
            log.warning("job %s: the document of %s failed: %s", job.id, item.name, rendered)
            rows.append({"item": item.id, "state": ItemState.FAILED, "error": str(rendered)[:2000]})
    _record(rows)
    renew_lease(job)
    db.session.commit()
    if after_chunk is not None:
        after_chunk(job)
    return len(batch)


def _record(rows: list[dict]) -> None:
    """Write each item's state, error and files: one UPDATE run for the whole chunk."""
    if not rows:
        return
    table = DocumentJobItem.__table__
    db.session.execute(
        update(table)
        .where(table.c.id == bindparam("item"))
        .values(
            state=bindparam("new_state"),
            error=bindparam("new_error"),
            pdf_id=bindparam("new_pdf"),
            png_id=bindparam("new_png"),
        ),
        [
            {
                "item": row["item"],
                "new_state": row["state"],
                "new_error": row.get("error"),
                "new_pdf": row.get("pdf_id"),
                "new_png": row.get("png_id"),
            }
            for row in rows
        ],
    )


def file_name(job: DocumentJob, name: str, extension: str = "pdf") -> str:
    """Return a file name for a person's document: « Emploi du temps - Alice Martin.pdf »."""
    label = str(DOCUMENT_KIND_LABELS[DocumentKind(job.kind)])
    return safe_filename(f"{label} - {name}", f".{extension}")


def _pdfs(items: list[DocumentJobItem]) -> list[bytes]:
    return [read_attachment(item.pdf) for item in items]


def finish_job(job: DocumentJob, printed_items: list[DocumentJobItem] | None) -> None:
    """Store the job's one file once every item is done, and mark it done (flushed).

    Printer: one PDF of every document; PDF: a ZIP of one PDF per person; e-mail: the printed
    copy of ``printed_items`` (everyone's, or those who get no e-mail), when asked for.
    """
    ready = [
        item for item in job.items if item.state == ItemState.READY and item.pdf_id is not None
    ]
    label = str(DOCUMENT_KIND_LABELS[DocumentKind(job.kind)])
    if job.output == Output.PRINTER and ready:
        data, filename = printed_copy(_pdfs(ready)), f"{label}.pdf"
    elif job.output == Output.PDF and ready:
        # zip_of makes the names unique (two people of the same name).
        named = [(file_name(job, item.name), read_attachment(item.pdf)) for item in ready]
        data, filename = zip_of(named), f"{label}.zip"
    elif printed_items:
        data = printed_copy(_pdfs(printed_items))
        filename = _("%(document)s - printed copy", document=label) + ".pdf"
    else:
        data = filename = None
    if data is not None:
        content_type = "application/zip" if filename.endswith(".zip") else "application/pdf"
        stored = store_attachment(data, content_type)
        job.output_file_id, job.output_filename = stored.id, filename
    if not ready and job.items:
        job.state, job.error = JobState.FAILED, _("No document could be made.")
    else:
        job.state = JobState.DONE
    job.finished_at = utcnow()
    log.info(
        "print job %s %s: %s of %s documents ready", job.id, job.state, len(ready), len(job.items)
    )


def fail_job(job_id: int, error: Exception) -> None:
    """Mark the job failed with why (committed): its documents ready so far stay readable."""
    reason = _(
        "The documents could not be made: %(reason)s", reason=str(error) or type(error).__name__
    )
    db.session.execute(
        update(DocumentJob)
        .where(DocumentJob.id == job_id)
        .values(state=JobState.FAILED, error=reason[:2000], finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def lost_jobs(now: datetime, grace: timedelta) -> list[int]:
    """Return the jobs a worker should take again: waiting too long, or their lease expired."""
    return list(
        db.session.scalars(
            select(DocumentJob.id)
            .where(
                DocumentJob.state.in_((JobState.WAITING, JobState.RENDERING)),
                or_(
                    DocumentJob.lease_until < now,
                    (DocumentJob.lease_until.is_(None)) & (DocumentJob.created_at <= now - grace),
                ),
            )
            .order_by(DocumentJob.id)
        )
    )


def delete_old_jobs(now: datetime) -> int:
    """Delete the jobs older than ``DOCUMENT_JOB_KEEP_DAYS`` with their items; return how many.

    Their files are stored by content hash and shared: the files no row uses any more are the
    outbox's to remove.
    """
    before = now - timedelta(days=current_app.config["DOCUMENT_JOB_KEEP_DAYS"])
    old = list(
        db.session.scalars(
            select(DocumentJob.id).where(
                DocumentJob.created_at < before,
                DocumentJob.state.in_((JobState.DONE, JobState.FAILED, JobState.CANCELLED)),
            )
        )
    )
    if old:
        db.session.execute(delete(DocumentJobItem).where(DocumentJobItem.job_id.in_(old)))
        db.session.execute(delete(DocumentJob).where(DocumentJob.id.in_(old)))
        log.info("deleted %s print jobs older than %s", len(old), before)
    return len(old)
