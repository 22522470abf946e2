"""Print jobs as the request makes them: the print dialog's choices checked, whose documents
they are, the job and its items written, and how far a job is.

The request writes a ``DocumentJob`` and one ``DocumentJobItem`` per document (a snapshot of the
selection, in list order) and commits before the worker is told (``tasks.enqueue_job``); the
worker's side is ``documents.printing``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from flask import abort
from flask_babel import gettext as _
from sqlalchemy import Select, func, insert, literal, select

from hpmail.core.forms import InputRefused
from hpmail.core.time import school_today
from hpmail.directory.models import Cohort, Group, Person, SelectionMember
from hpmail.directory.selection import selection_for
from hpmail.documents.content import OwnerKind
from hpmail.documents.layout import (
    ORIENTATIONS,
    PAPERS,
    PRINTED_KINDS,
    DocumentKind,
    Layout,
    Output,
    Period,
    PrintCopy,
)
from hpmail.documents.models import DocumentJob, DocumentJobItem, ItemState, JobState
from hpmail.extensions import db

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
    letter_id: int | None = None  # for a letter (kind ``letter``): the template written


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


def checked_request(posted: PrintRequest, letter_id: int | None = None) -> Choices:
    """Return the dialog's choices, or raise PrintRefused with a message per wrong field.

    With ``letter_id`` (« Envoyer un courrier », the letter checked by its package) the job is a
    letter's: its output and e-mail options are checked here, its kind, layout and period are
    the letter's own (A4 portrait, dated today).
    """
    errors: dict[str, list[str]] = {}
    if letter_id is None:
        _one_of(posted.kind, PRINTED_KINDS, "kind", errors)
        _one_of(posted.paper, PAPERS, "paper", errors)
        _one_of(posted.orientation, ORIENTATIONS, "orientation", errors)
        _one_of(posted.colour, ("colour", "grey"), "colour", errors)
    _one_of(posted.output, Output, "output", errors)
    _one_of(posted.print_copy, PrintCopy, "print_copy", errors)
    period = None
    if letter_id is not None:
        today = school_today()
        period = Period(today, today)
    elif _one_of(posted.period, ("week", "dates"), "period", errors) == "week":
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
            _("Attach the document as a PDF, insert it in the body, or both.")
            if letter_id is not None
            else _("Attach the document as a PDF, insert its preview in the body, or both.")
        )
    if errors or period is None:
        raise PrintRefused(errors)
    email = posted.output == Output.EMAIL
    letter = letter_id is not None
    return Choices(
        kind=DocumentKind.LETTER if letter else DocumentKind(posted.kind),
        output=Output(posted.output),
        period=period,
        layout=Layout(paper="A4", orientation="portrait")
        if letter
        else Layout(
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
        letter_id=letter_id,
    )


@dataclass(frozen=True)
class Owners:
    """Whose documents a job makes, as a query of (position, owner_kind, owner_id, name) rows in
    the order of the list printed from: the job's items are written from it in one statement.
    A letter's query has a fifth column, ``records`` (``DocumentJobItem.records``)."""

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
        letter_id=choices.letter_id,
        state=JobState.WAITING,
    )
    db.session.add(job)
    db.session.flush()
    # One INSERT … SELECT: thousands of items written without a round trip through Python.
    rows = owners.query.subquery()
    records = rows.c.records if "records" in rows.c else literal(None)
    db.session.execute(
        insert(DocumentJobItem.__table__).from_select(
            ["job_id", "position", "owner_kind", "owner_id", "name", "records", "state"],
            select(
                literal(job.id),
                rows.c.position,
                rows.c.owner_kind,
                rows.c.owner_id,
                rows.c.name,
                records,
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
