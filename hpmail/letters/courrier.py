"""« Envoyer un courrier »: a form letter for each person of a list's selection, through the
documents' print dialog, print jobs and Imprimer / Mailer.

The job is a ``DocumentJob`` of kind ``letter`` with its letter template; its items keep their
person and, for absences, that student's absences in the selection (one letter lists them all),
for internships the internship (one letter each, addressed to the student). The worker draws the
letters through ``documents.kinds`` (registered below): the same runner, progress, printed copy,
composer and archive as documents.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from flask import current_app
from flask_babel import gettext as _
from markupsafe import escape
from sqlalchemy import String, cast, func, literal, select

from hpmail.core.time import school_today
from hpmail.directory.models import (
    Absence,
    Internship,
    Person,
    SelectionAbsence,
    SelectionInternship,
    SelectionMember,
)
from hpmail.directory.selection import selection_for
from hpmail.documents import kinds
from hpmail.documents.content import OwnerKind
from hpmail.documents.jobs import Owners, PrintRefused
from hpmail.documents.letterhead import current_letterhead
from hpmail.documents.models import DocumentJob, DocumentJobItem
from hpmail.documents.render import RenderError
from hpmail.extensions import db
from hpmail.letters import sandbox
from hpmail.letters.fields import records_for
from hpmail.letters.models import Category, LetterTemplate
from hpmail.letters.render import render_letters, write_letter

log = logging.getLogger(__name__)

# The category of letters a list's selection is written with, by the selection's kind.
CATEGORY_OF_LIST = {
    "student": Category.STUDENTS,
    "teacher": Category.TEACHERS,
    "staff": Category.STAFF,
    "absence": Category.ABSENCES,
    "internship": Category.INTERNSHIPS,
}


def category_of(user, token: str) -> Category:
    """Return the category of letters for the list of this selection (404 for another user's);
    refuse a selection of people of every kind."""
    selection = selection_for(user, token)
    category = CATEGORY_OF_LIST.get(selection.kind or "")
    if category is None:
        raise PrintRefused(
            _("Send a letter from the list of students, teachers or staff."), field="letter"
        )
    return category


def letters_of(category: Category) -> list[LetterTemplate]:
    """Return the letter templates of a category, by title."""
    return list(
        db.session.scalars(
            select(LetterTemplate)
            .where(LetterTemplate.category == category)
            .order_by(LetterTemplate.title, LetterTemplate.id)
        )
    )


def checked_letter(letter_id: int | None, category: Category) -> LetterTemplate:
    """Return the chosen letter; refuse none, an unknown one or a letter of another category."""
    if letter_id is None:
        raise PrintRefused(_("Choose the letter to send."), field="letter")
    letter = db.session.get(LetterTemplate, letter_id)
    if letter is None or letter.category != category:
        raise PrintRefused(_("Choose one of the letters of this list."), field="letter")
    return letter


def _name():
    return func.substr(func.trim(Person.first_name + " " + Person.last_name), 1, 300)


def owners_of_letters(user, token: str, category: Category) -> Owners:
    """Return the letters' items of the selection, as ``documents.jobs.create_job`` writes them:
    (position, owner_kind, owner_id, name, records), one per person, per student with their
    absences, or per internship, by name."""
    selection = selection_for(user, token)
    order = (Person.last_name_key, Person.first_name_key, Person.id)
    person = literal(str(OwnerKind.PERSON)).label("owner_kind")
    if category == Category.ABSENCES:
        query = (
            select(
                (func.row_number().over(order_by=order) - 1).label("position"),
                person,
                Person.id.label("owner_id"),
                _name().label("name"),
                # group_concat on SQLite, string_agg on PostgreSQL.
                func.aggregate_strings(cast(Absence.id, String), ",").label("records"),
            )
            .join(Absence, Absence.person_id == Person.id)
            .join(SelectionAbsence, SelectionAbsence.absence_id == Absence.id)
            .where(SelectionAbsence.selection_id == selection.id)
            .group_by(Person.id)
        )
    elif category == Category.INTERNSHIPS:
        order = (*order, Internship.start_date, Internship.id)
        query = (
            select(
                (func.row_number().over(order_by=order) - 1).label("position"),
                person,
                Person.id.label("owner_id"),
                _name().label("name"),
                cast(Internship.id, String).label("records"),
            )
            .join(Internship, Internship.person_id == Person.id)
            .join(SelectionInternship, SelectionInternship.internship_id == Internship.id)
            .where(SelectionInternship.selection_id == selection.id)
        )
    else:
        query = (
            select(
                (func.row_number().over(order_by=order) - 1).label("position"),
                person,
                Person.id.label("owner_id"),
                _name().label("name"),
                literal(None).label("records"),
            )
            .join(SelectionMember, SelectionMember.person_id == Person.id)
            .where(SelectionMember.selection_id == selection.id)
        )
    rows = query.subquery()
    count = db.session.scalar(select(func.count()).select_from(rows))
    first = db.session.scalar(select(rows.c.name).limit(1)) if count == 1 else ""
    return Owners(query, count, first or "", True)


# The worker's side: drawing a job's letters.


def _ids(records: str | None) -> list[int]:
    return [int(i) for i in (records or "").split(",") if i.strip().isdigit()]


def _records_of(category: str, items: Sequence) -> dict[int, object]:
    """Return each item's record (by item id), read in one go; missing ones left out."""
    if category == Category.ABSENCES:
        wanted = [i for item in items for i in _ids(item.records)]
        by_student = {r.student.id: r for r in records_for(category, wanted)}
        return {item.id: by_student[item.owner_id] for item in items if item.owner_id in by_student}
    if category == Category.INTERNSHIPS:
        wanted = [i for item in items for i in _ids(item.records)]
        found = {r.id: r for r in records_for(category, wanted)}
        return {
            item.id: found[ids[0]]
            for item in items
            if (ids := _ids(item.records)) and ids[0] in found
        }
    found = {p.id: p for p in records_for(category, [item.owner_id for item in items])}
    return {item.id: found[item.owner_id] for item in items if item.owner_id in found}


def draw_letters(job: DocumentJob, items: Sequence) -> Iterator[tuple[int, object]]:
    """Yield (index into ``items``, its ``kinds.Drawn`` or why it failed) for a letter job.

    The letters' PDFs are drawn by ``letters.render.render_letters`` in documents' processes; a
    letter whose record left the directory, or that cannot be written, fails alone by name.
    """
    letter = db.session.get(LetterTemplate, job.letter_id) if job.letter_id else None
    if letter is None:
        reason = RenderError(_("The letter was deleted."))
        yield from ((index, reason) for index in range(len(items)))
        return
    found = _records_of(letter.category, items)
    present = [index for index, item in enumerate(items) if item.id in found]
    gone = RenderError(_("Not in the directory any more."))
    yield from ((index, gone) for index, item in enumerate(items) if item.id not in found)
    records = [found[items[index].id] for index in present]
    letterhead, today = current_letterhead(), school_today()
    drawn = render_letters(
        letter,
        records,
        letterhead,
        today=today,
        processes=current_app.config["DOCUMENT_RENDER_PROCESSES"],
    )
    for n, result in drawn:
        if isinstance(result, RenderError):
            yield present[n], result
            continue
        body = None
        if job.inline_png:  # the letter in the e-mail's body too
            try:
                body = write_letter(letter, records[n], letterhead, today).body_html
            except (sandbox.RenderLimit, sandbox.LetterRefused) as error:
                yield present[n], RenderError(str(error))
                continue
        yield present[n], kinds.Drawn(pdf=result, body_html=body)


def _letter_of(job: DocumentJob) -> LetterTemplate | None:
    return db.session.get(LetterTemplate, job.letter_id) if job.letter_id else None


def letter_subject(job: DocumentJob) -> str:
    """The composer's first subject: the letter's, unless it has fields (then its title)."""
    letter = _letter_of(job)
    if letter is None:
        return ""
    subject = " ".join(letter.subject.split())
    return subject if subject and "{" not in subject else letter.title


def letter_introduction(job: DocumentJob) -> str:
    letter = _letter_of(job)
    title = letter.title if letter is not None else ""
    line = _("Please find your letter « %(title)s ».", title=title)
    return f"<p>{escape(_('Hello,'))}</p><p>{escape(line)}</p>"


def tutor_of(job: DocumentJob, item: DocumentJobItem) -> list[tuple[str, str]]:
    """The internship's tutor of an internship letter, when they have an address."""
    ids = _ids(item.records)
    letter = _letter_of(job)
    if not ids or letter is None or letter.category != Category.INTERNSHIPS:
        return []
    internship = db.session.get(Internship, ids[0])
    if internship is None or not internship.tutor_email:
        return []
    return [(internship.tutor_name, internship.tutor_email)]


def _tutor_label(job: DocumentJob) -> str | None:
    letter = _letter_of(job)
    if letter is None or letter.category != Category.INTERNSHIPS:
        return None
    return _("Send a copy of each letter to the internship's tutor")


# What « Envoyer un courrier » adds to print jobs; ``create_app`` registers it.
LETTER_JOBS = kinds.JobKind(
    draw=draw_letters,
    subject=letter_subject,
    introduction=letter_introduction,
    copies_of=tutor_of,
    copies_label=_tutor_label,
)
