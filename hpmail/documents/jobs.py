"""Print jobs: the print dialog's choices checked and written as a job and its items (the
request), then rendered by the worker chunk by chunk under a lease, with progress.

The request writes a ``DocumentJob`` and one ``DocumentJobItem`` per document (a snapshot of the
selection, in list order) and commits before the worker is told (``tasks.enqueue_job``). The
worker takes the job with one conditional UPDATE and a lease (``claim_job``), like the outbox
takes e-mails; it commits every chunk, so the page shows progress and a killed worker's job is
resumed from its pending items when the sweeper finds the lease expired.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from flask import abort, current_app
from flask_babel import gettext as _
from sqlalchemy import Select, bindparam, case, delete, func, insert, literal, or_, select, update

from hpmail.core.forms import InputRefused
from hpmail.core.time import utcnow
from hpmail.directory.models import Cohort, Group, Person, SelectionMember
from hpmail.directory.selection import selection_for
from hpmail.documents.content import (
    OwnerKind,
    cohort_document,
    group_document,
    person_documents,
)
from hpmail.documents.layout import (
    DOCUMENT_KIND_LABELS,
    ORIENTATIONS,
    PAPERS,
    DocumentKind,
    Layout,
    Output,
    Period,
    PrintCopy,
)
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

# A period longer than this is refused (a school year and a bit).
LONGEST_PERIOD = timedelta(days=366)


@dataclass(frozen=True)
class Whose:
    """Whose documents the dialog prints: a list's selection, or one person, cohort or group."""

    selection: str = ""
    person_id: int | None = None
    cohort_id: int | None = None
    group_id: int | None = None


@dataclass(frozen=True)
class PrintRequest:
    """The print dialog's choices as posted, not yet checked."""

    kind: str = "timetable"
    output: str = "printer"
    paper: str = "A4"
    orientation: str = "landscape"
    colour: str = "colour"
    show_room: bool = True
    show_teachers: bool = True
    show_groups: bool = True
    period: str = "week"
    week: str = ""
    start: str = ""
    end: str = ""
    attach_pdf: bool = True
    inline_png: bool = False
    print_copy: str = "none"
    request_token: str = ""


@dataclass(frozen=True)
class Choices:
    """The print dialog's choices, checked."""

    kind: DocumentKind
    output: Output
    period: Period
    layout: Layout
    attach_pdf: bool
    inline_png: bool
    print_copy: PrintCopy


class PrintRefused(InputRefused):
    """The print dialog's choices cannot make a job: messages by field."""


def _one_of(value: str, allowed, field: str, errors: dict) -> str:
    if value not in {str(v) for v in allowed}:
        errors.setdefault(field, []).append(_("Choose one of the proposed values."))
    return value


def _day(value: str, field: str, errors: dict) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.setdefault(field, []).append(_("Give a date (day, month and year)."))
        return None


def checked_request(posted: PrintRequest) -> Choices:
    """Return the dialog's choices, or raise PrintRefused with a message per wrong field."""
    errors: dict[str, list[str]] = {}
    _one_of(posted.kind, DocumentKind, "kind", errors)
    _one_of(posted.output, Output, "output", errors)
    _one_of(posted.paper, PAPERS, "paper", errors)
    _one_of(posted.orientation, ORIENTATIONS, "orientation", errors)
    _one_of(posted.colour, ("colour", "grey"), "colour", errors)
    _one_of(posted.print_copy, PrintCopy, "print_copy", errors)
    period = None
    if _one_of(posted.period, ("week", "dates"), "period", errors) == "week":
        day = _day(posted.week, "week", errors)
        period = Period.week_of(day) if day else None
    elif posted.period == "dates":
        start, end = _day(posted.start, "start", errors), _day(posted.end, "end", errors)
        if start and end and end < start:
            errors.setdefault("end", []).append(_("The end of the period is before its start."))
        elif start and end and end - start >= LONGEST_PERIOD:
            errors.setdefault("end", []).append(_("The period is at most one year long."))
        elif start and end:
            period = Period(start, end)
    if posted.output == Output.EMAIL and not (posted.attach_pdf or posted.inline_png):
        errors.setdefault("attach_pdf", []).append(
            _("Attach the document as a PDF, insert its preview in the body, or both.")
        )
    if errors or period is None:
        raise PrintRefused(errors)
    email = posted.output == Output.EMAIL
    return Choices(
        kind=DocumentKind(posted.kind),
        output=Output(posted.output),
        period=period,
        layout=Layout(
            paper=posted.paper,
            orientation=posted.orientation,
            colour=posted.colour == "colour",
            show_room=posted.show_room,
            show_teachers=posted.show_teachers,
            show_groups=posted.show_groups,
        ),
        attach_pdf=posted.attach_pdf if email else False,
        inline_png=posted.inline_png if email else False,
        print_copy=PrintCopy(posted.print_copy) if email else PrintCopy.NONE,
    )


@dataclass(frozen=True)
class Owners:
    """Whose documents a job makes, as a query of (position, owner_kind, owner_id, name) rows in
    the order of the list printed from: the job's items are written from it in one statement."""

    query: Select
    count: int
    first_name: str  # the name shown when there is only one
    people_only: bool


def _one(kind: OwnerKind, owner_id: int, name: str) -> Owners:
    query = select(
        literal(0).label("position"),
        literal(str(kind)).label("owner_kind"),
        literal(owner_id).label("owner_id"),
        literal(name[:300]).label("name"),
    )
    return Owners(query, 1, name, kind == OwnerKind.PERSON)


def owners_of(user, whose: Whose) -> Owners:
    """Return whose documents to make, in the order of the list printed from.

    Another user's selection, or an unknown person, cohort or group, is a 404.
    """
    if whose.person_id:
        person = db.get_or_404(Person, whose.person_id)
        return _one(OwnerKind.PERSON, person.id, f"{person.first_name} {person.last_name}".strip())
    if whose.cohort_id:
        cohort = db.get_or_404(Cohort, whose.cohort_id)
        return _one(OwnerKind.COHORT, cohort.id, cohort.name)
    if whose.group_id:
        group = db.get_or_404(Group, whose.group_id)
        return _one(OwnerKind.GROUP, group.id, f"{group.cohort.name} — {group.name}")
    selection_id = selection_for(user, whose.selection).id if whose.selection else None
    order = (Person.last_name_key, Person.first_name_key, Person.id)
    name = func.trim(Person.first_name + " " + Person.last_name)
    query = (
        select(
            (func.row_number().over(order_by=order) - 1).label("position"),
            literal(str(OwnerKind.PERSON)).label("owner_kind"),
            Person.id.label("owner_id"),
            func.substr(name, 1, 300).label("name"),
        )
        .join(SelectionMember, SelectionMember.person_id == Person.id)
        .where(SelectionMember.selection_id == selection_id)
    )
    count = db.session.scalar(
        select(func.count()).where(SelectionMember.selection_id == selection_id)
    )
    first = db.session.scalar(select(query.subquery().c.name).limit(1)) if count == 1 else ""
    return Owners(query, count, first or "", True)


def check_owners(owners: Owners, choices: Choices) -> None:
    """Refuse an empty selection, and an e-mail of a cohort's or a group's document."""
    if not owners.count:
        raise PrintRefused(_("Nobody is selected: tick people in the list first."), field="whose")
    if choices.output == Output.EMAIL and not owners.people_only:
        raise PrintRefused(
            _("Only people receive e-mails: print this document, or choose people in a list."),
            field="output",
        )


def job_of_request(token: str) -> DocumentJob | None:
    """Return the job that the print dialog of this one-time token already made, if any."""
    if not token:
        return None
    return db.session.scalar(select(DocumentJob).where(DocumentJob.request_token == token))


def create_job(user, choices: Choices, owners: Owners, token: str) -> DocumentJob:
    """Write the job and its items, in list order (flushed, not committed); return the job."""
    check_owners(owners, choices)
    job = DocumentJob(
        user_id=user.id,
        request_token=token or None,
        kind=choices.kind,
        output=choices.output,
        period_start=datetime.combine(choices.period.start, datetime.min.time()),
        period_end=datetime.combine(choices.period.end, datetime.min.time()),
        layout=json.dumps(asdict(choices.layout)),
        attach_pdf=choices.attach_pdf,
        inline_png=choices.inline_png,
        print_copy=choices.print_copy,
        state=JobState.WAITING,
    )
    db.session.add(job)
    db.session.flush()
    # One INSERT … SELECT: thousands of items written without a round trip through Python.
    rows = owners.query.subquery()
    db.session.execute(
        insert(DocumentJobItem.__table__).from_select(
            ["job_id", "position", "owner_kind", "owner_id", "name", "state"],
            select(
                literal(job.id),
                rows.c.position,
                rows.c.owner_kind,
                rows.c.owner_id,
                rows.c.name,
                literal(str(ItemState.PENDING)),
            ),
        )
    )
    log.info(
        "user %s made print job %s: %s %s for %s",
        user.login,
        job.id,
        job.kind,
        job.output,
        owners.count,
    )
    return job


def job_for(user, job_id: int) -> DocumentJob:
    """Return the user's job; 404 for an unknown job or another user's."""
    job = db.session.get(DocumentJob, job_id)
    if job is None or job.user_id != user.id:
        abort(404)
    return job


def period_of(job: DocumentJob) -> Period:
    return Period(job.period_start.date(), job.period_end.date())


def layout_of(job: DocumentJob) -> Layout:
    return Layout(**json.loads(job.layout or "{}"))


@dataclass(frozen=True)
class Progress:
    """How far a job is: documents ready, failed (with the names), out of the total."""

    total: int
    ready: int
    failed: list[tuple[str, str]]

    @property
    def done(self) -> int:
        return self.ready + len(self.failed)


def progress_of(job: DocumentJob) -> Progress:
    """Return how many of the job's documents are ready, and which failed with why."""
    counts = dict(
        db.session.execute(
            select(DocumentJobItem.state, func.count())
            .where(DocumentJobItem.job_id == job.id)
            .group_by(DocumentJobItem.state)
        ).all()
    )
    failed = db.session.execute(
        select(DocumentJobItem.name, DocumentJobItem.error)
        .where(DocumentJobItem.job_id == job.id, DocumentJobItem.state == ItemState.FAILED)
        .order_by(DocumentJobItem.position)
    ).all()
    return Progress(
        total=sum(counts.values()),
        ready=counts.get(ItemState.READY, 0),
        failed=[(name, error or "") for name, error in failed],
    )


# --- the worker's side -------------------------------------------------------------------------


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
