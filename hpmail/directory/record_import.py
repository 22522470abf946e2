"""CSV import of absences and internships: each row names a student, re-importing updates.

Read by the same reader as people (``csv_file``), reported the same way (``importer``): a file with
rejected rows writes nothing unless the admin asks for the valid rows only, and the caller commits
once, so a file is never half-imported.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from datetime import date, datetime, time

from flask_babel import gettext as _
from sqlalchemy import insert, select, update

from hpmail.core.text import fold
from hpmail.directory.csv_file import Layout, RowReport
from hpmail.directory.emails import email_status_of
from hpmail.directory.importer import ImportReport, read_report
from hpmail.directory.models import (
    Absence,
    Course,
    CourseSlot,
    Internship,
    Person,
    PersonKind,
    course_cohort,
    course_group,
    minutes_between,
    person_group,
)
from hpmail.extensions import db

log = logging.getLogger(__name__)

DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y")
TIME = re.compile(r"^(\d{1,2})\s*[:hH]\s*(\d{2})?(?::\d{2})?$")
YES = {"oui", "o", "yes", "y", "1", "vrai", "true", "x"}
NO = {"non", "n", "no", "0", "faux", "false", ""}

# Header (folded, without spaces, dashes, underscores or apostrophes) -> field.
STUDENT_HEADERS = {
    "etudiant": "student", "etudiante": "student", "eleve": "student", "student": "student",
    "identifiant": "student", "identifiantetudiant": "student", "studentid": "student",
}  # fmt: skip
ABSENCE_HEADERS = {
    **STUDENT_HEADERS,
    "date": "day", "jour": "day", "day": "day",
    "debut": "start", "heuredebut": "start", "start": "start", "starttime": "start",
    "fin": "end", "heurefin": "end", "end": "end", "endtime": "end",
    "cours": "course", "matiere": "course", "course": "course",
    "motif": "reason", "raison": "reason", "reason": "reason",
    "justifiee": "justified", "justifie": "justified", "justified": "justified",
    "idabsence": "external_id", "absenceid": "external_id", "reference": "external_id",
}  # fmt: skip
INTERNSHIP_HEADERS = {
    **STUDENT_HEADERS,
    "entreprise": "company", "societe": "company", "company": "company",
    "adresse": "company_address", "adresseentreprise": "company_address",
    "adressedelentreprise": "company_address", "address": "company_address",
    "companyaddress": "company_address",
    "tuteur": "tutor_name", "nomdututeur": "tutor_name", "tutor": "tutor_name",
    "tutorname": "tutor_name",
    "emaildututeur": "tutor_email", "emailtuteur": "tutor_email", "mailtuteur": "tutor_email",
    "courrieltuteur": "tutor_email", "tutoremail": "tutor_email",
    "debut": "start", "datedebut": "start", "start": "start", "startdate": "start",
    "fin": "end", "datefin": "end", "end": "end", "enddate": "end",
    "sujet": "subject", "subject": "subject", "mission": "subject",
    "idstage": "external_id", "internshipid": "external_id", "reference": "external_id",
}  # fmt: skip


def _absence_names() -> dict[str, str]:
    return {
        "student": _("student (étudiant)"),
        "day": _("date"),
        "start": _("start (début)"),
        "end": _("end (fin)"),
        "course": _("course (cours)"),
        "reason": _("reason (motif)"),
        "external_id": _("absence id (référence)"),
    }


def _internship_names() -> dict[str, str]:
    return {
        "student": _("student (étudiant)"),
        "company": _("company (entreprise)"),
        "company_address": _("address (adresse)"),
        "tutor_name": _("tutor (tuteur)"),
        "tutor_email": _("tutor's e-mail (e-mail du tuteur)"),
        "start": _("start (début)"),
        "end": _("end (fin)"),
        "subject": _("subject (sujet)"),
        "external_id": _("internship id (référence)"),
    }


def parse_day(raw: str) -> date | None:
    """Return the date written as 31/01/2026, 2026-01-31, 31-01-2026 or 31.01.2026, or None."""
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(raw.strip(), pattern).date()
        except ValueError:
            continue
    return None


def parse_time(raw: str) -> time | None:
    """Return the time written as 8:30, 08:30:00, 8h30 or 8h, or None."""
    match = TIME.match(raw.strip())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    return time(hour, minute) if hour < 24 and minute < 60 else None


def _student_name(raw: dict, row: RowReport, problems: list) -> None:
    row.name = raw.get("student", "")[:250]
    if not raw.get("student"):
        problems.append(_("The student is missing."))


def _dated(raw: dict, key: str, problems: list) -> date | None:
    value = raw.get(key, "")
    day = parse_day(value) if value else None
    if value and day is None:
        problems.append(
            _(
                "Unreadable date « %(value)s »: write it as 31/01/2026.",
                value=value[:40],
            )
        )
    return day


def _timed(raw: dict, key: str, problems: list) -> time | None:
    value = raw.get(key, "")
    moment = parse_time(value) if value else None
    if moment is None:
        problems.append(
            _("Unreadable time « %(value)s »: write it as 08:30.", value=value[:40])
            if value
            else _("The start or end time is missing.")
        )
    return moment


def _check_absence(raw: dict, row: RowReport, problems: list, notes: list) -> None:
    _student_name(raw, row, problems)
    day = _dated(raw, "day", problems)
    if day is None and not raw.get("day"):
        problems.append(_("The date is missing."))
    start, end = _timed(raw, "start", problems), _timed(raw, "end", problems)
    if start and end and end <= start:
        problems.append(_("The end (%(end)s) is not after the start.", end=raw["end"]))
    answer = fold(raw.get("justified", "")).strip()
    if answer not in YES | NO:
        problems.append(
            _(
                "Justified: « %(value)s » is neither oui nor non (yes, no, 1, 0).",
                value=raw.get("justified", "")[:40],
            )
        )
    row.values = {
        "day": day,
        "start_time": start,
        "end_time": end,
        "course_label": raw.get("course", ""),
        "reason": raw.get("reason", ""),
        "justified": answer in YES,
        "external_id": raw.get("external_id") or None,
    }


def _check_internship(raw: dict, row: RowReport, problems: list, notes: list) -> None:
    _student_name(raw, row, problems)
    if not raw.get("company"):
        problems.append(_("The company is missing."))
    start, end = _dated(raw, "start", problems), _dated(raw, "end", problems)
    if not raw.get("start") or not raw.get("end"):
        problems.append(_("The start or end date is missing."))
    if start and end and end < start:
        problems.append(_("The end (%(end)s) is before the start.", end=raw["end"]))
    tutor_email = raw.get("tutor_email") or None
    status = email_status_of(tutor_email)
    if status == "invalid":
        notes.append(_("Invalid e-mail address, kept as it is."))
    row.values = {
        "company": raw.get("company", ""),
        "company_address": raw.get("company_address", ""),
        "tutor_name": raw.get("tutor_name", ""),
        "tutor_email": tutor_email,
        "tutor_email_status": str(status),
        "start_date": start,
        "end_date": end,
        "subject": raw.get("subject", ""),
        "external_id": raw.get("external_id") or None,
    }


ABSENCES = Layout(
    headers=ABSENCE_HEADERS,
    required=("student", "day", "start", "end"),
    limits={"student": 250, "course": 200, "reason": 200, "external_id": 64},
    names=_absence_names,
    check=_check_absence,
    nothing=lambda: _("The file has a header line but no absence."),
)
INTERNSHIPS = Layout(
    headers=INTERNSHIP_HEADERS,
    required=("student", "company", "start", "end"),
    limits={
        "student": 250,
        "company": 200,
        "company_address": 500,
        "tutor_name": 200,
        "tutor_email": 254,
        "subject": 500,
        "external_id": 64,
    },  # fmt: skip
    names=_internship_names,
    check=_check_internship,
    nothing=lambda: _("The file has a header line but no internship."),
)


class _Students:
    """The students, found by their id in the school's software or by « NOM Prénom»."""

    def __init__(self):
        query = select(
            Person.id, Person.external_id, Person.last_name_key, Person.first_name_key
        ).where(Person.kind == PersonKind.STUDENT)
        self.by_id: dict[str, int] = {}
        by_name: dict[str, set[int]] = defaultdict(set)
        for pid, external_id, last, first in db.session.execute(query):
            if external_id:
                self.by_id[fold(external_id)] = pid
            by_name[f"{last} {first}"].add(pid)
            by_name[f"{first} {last}"].add(pid)
        self.by_name = by_name

    def find(self, row: RowReport) -> None:
        """Set ``row.person_id``, or reject the row saying why."""
        key = " ".join(fold(row.name).split())
        found = self.by_id.get(key)
        if found is None:
            named = self.by_name.get(key, set())
            if len(named) > 1:
                return _reject(row, _("Several students have this name: give their id."))
            found = next(iter(named), None)
        if found is None:
            return _reject(row, _("Unknown student « %(name)s ».", name=row.name[:80]))
        row.person_id = found


def _reject(row: RowReport, message: str) -> None:
    row.status = "rejected"
    row.messages.insert(0, message)


def _match(report: ImportReport, model, identity) -> dict:
    """Find each row's student and the record it updates; reject unknown ones and duplicates.

    Return the existing records' values, by id, to tell updated from unchanged.
    """
    students = _Students()
    for row in report.valid_rows:
        students.find(row)
    rows = report.valid_rows
    by_external = dict(
        db.session.execute(
            select(model.external_id, model.id).where(
                model.external_id.in_({r.values["external_id"] for r in rows} - {None})
            )
        ).all()
    )
    people = {r.person_id for r in rows}
    existing = {
        record.id: record
        for record in db.session.execute(select(model).where(model.person_id.in_(people)))
        .scalars()
        .all()
    }
    by_identity = {identity(r.person_id, r.__dict__): r.id for r in existing.values()}
    first_line: dict = {}
    for row in rows:
        external_id = row.values["external_id"]
        key = ("id", external_id) if external_id else identity(row.person_id, row.values)
        if key in first_line:
            _reject(row, _("Duplicate of line %(line)s.", line=first_line[key]))
            continue
        first_line[key] = row.line
        if external_id:
            row.record_id = by_external.get(external_id)
            if row.record_id is not None and row.record_id not in existing:
                existing[row.record_id] = db.session.get(model, row.record_id)
        else:
            row.record_id = by_identity.get(identity(row.person_id, row.values))
    return existing


def _absence_identity(person_id: int, values: dict) -> tuple:
    return ("slot", person_id, values["day"], values["start_time"])


def _internship_identity(person_id: int, values: dict) -> tuple:
    return ("stage", person_id, values["start_date"], fold(values["company"]))


class _Courses:
    """The courses a student attends, by subject, to link an absence to its course."""

    def __init__(self):
        self.subject = dict(db.session.execute(select(Course.id, Course.subject)).all())
        self.slots: dict[int, list] = defaultdict(list)
        for course_id, weekday, start, end in db.session.execute(
            select(
                CourseSlot.course_id, CourseSlot.weekday, CourseSlot.start_time, CourseSlot.end_time
            )
        ):
            self.slots[course_id].append((weekday, start, end))
        self.of_cohort: dict[int, set[int]] = defaultdict(set)
        for course_id, cohort_id in db.session.execute(select(course_cohort)):
            self.of_cohort[cohort_id].add(course_id)
        self.of_group: dict[int, set[int]] = defaultdict(set)
        for course_id, group_id in db.session.execute(select(course_group)):
            self.of_group[group_id].add(course_id)

    def audience(self, person_ids: set[int]) -> dict[int, set[int]]:
        """Return {student: ids of the courses of their cohort and groups}."""
        courses: dict[int, set[int]] = defaultdict(set)
        for pid, cohort_id in db.session.execute(
            select(Person.id, Person.cohort_id).where(Person.id.in_(person_ids))
        ):
            courses[pid] |= self.of_cohort.get(cohort_id, set())
        for pid, group_id in db.session.execute(
            select(person_group.c.person_id, person_group.c.group_id).where(
                person_group.c.person_id.in_(person_ids)
            )
        ):
            courses[pid] |= self.of_group.get(group_id, set())
        return courses

    def find(self, course_ids: set[int], values: dict) -> int | None:
        """Return the student's course of this subject, the one at that time if several."""
        label = fold(values["course_label"])
        same = sorted(c for c in course_ids if label and fold(self.subject[c]) == label)
        weekday = values["day"].weekday()
        for course_id in same:
            for day, start, end in self.slots[course_id]:
                if day == weekday and start < values["end_time"] and values["start_time"] < end:
                    return course_id
        return same[0] if same else None


def import_absences(
    data: bytes, *, valid_only: bool = False, max_bytes: int = 20 * 1024 * 1024, actor: str = "?"
) -> ImportReport:
    """Import the absences of a CSV file; write only if no row is rejected or ``valid_only``."""
    report = read_report(data, max_bytes, ABSENCES)
    if report.errors:
        return report
    existing = _match(report, Absence, _absence_identity)
    courses = _Courses()
    audience = courses.audience({row.person_id for row in report.valid_rows})
    fields = (
        "person_id", "day", "start_time", "end_time", "course_id", "course_label", "reason",
        "justified", "external_id",
    )  # fmt: skip
    creates, updates = [], []
    for row in report.valid_rows:
        values = {**row.values, "person_id": row.person_id}
        values["course_id"] = courses.find(audience[row.person_id], values)
        values["minutes"] = minutes_between(values["start_time"], values["end_time"])
        _sort(row, values, existing, fields, creates, updates)
    return _apply(report, valid_only, Absence, creates, updates, actor)


def import_internships(
    data: bytes, *, valid_only: bool = False, max_bytes: int = 20 * 1024 * 1024, actor: str = "?"
) -> ImportReport:
    """Import the internships of a CSV file; write only if no row is rejected or ``valid_only``."""
    report = read_report(data, max_bytes, INTERNSHIPS)
    if report.errors:
        return report
    existing = _match(report, Internship, _internship_identity)
    fields = (
        "company", "company_address", "tutor_name", "tutor_email", "tutor_email_status",
        "start_date", "end_date", "subject", "external_id", "person_id",
    )  # fmt: skip
    creates, updates = [], []
    for row in report.valid_rows:
        values = {**row.values, "person_id": row.person_id}
        values["company_key"] = fold(values["company"])[:200]
        _sort(row, values, existing, fields, creates, updates)
    return _apply(report, valid_only, Internship, creates, updates, actor)


def _sort(row, values, existing, fields, creates, updates) -> None:
    """Mark the row created, updated or unchanged, and put its values where they will be written."""
    if row.record_id is None:
        row.status = "created"
        creates.append(values)
        return
    before = existing[row.record_id]
    if values["external_id"] is None:
        values.pop("external_id")
    changed = any(getattr(before, key) != values[key] for key in fields if key in values)
    row.status = "updated" if changed else "unchanged"
    if changed:
        updates.append({"id": row.record_id, **values})


def _apply(report: ImportReport, valid_only: bool, model, creates, updates, actor) -> ImportReport:
    if report.rejected and not valid_only:
        return report
    if creates:
        db.session.execute(insert(model), creates)
    if updates:
        db.session.execute(update(model), updates)
    db.session.flush()
    report.applied = True
    log.info(
        "%s imported %s: %s created, %s updated, %s unchanged, %s rejected",
        actor,
        model.__tablename__,
        report.count("created"),
        report.count("updated"),
        report.count("unchanged"),
        report.count("rejected"),
    )
    return report
