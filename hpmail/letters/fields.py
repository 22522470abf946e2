"""The fields of each category of letter, their French names, and their values for a record.

A record is what one letter is written for: a person (students, teachers, staff), a student with
their absences in the selection (absences), or an internship (internships). Values are text, as
printed; the absences' list is a list of ``AbsenceLine``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hpmail.directory.models import Absence, Internship, Person, PersonKind
from hpmail.documents.layout import LetterheadInfo
from hpmail.documents.print_html import french_date, hours_text
from hpmail.extensions import db
from hpmail.letters.models import Category


@dataclass(frozen=True)
class Field:
    """A field as the « Insérer un champ » menu lists it and the body writes it."""

    name: str  # as written in the body: {{ nom }}
    label: str  # the French name in the menu
    snippet: str = ""  # what the menu inserts, when more than {{ name }}

    @property
    def inserted(self) -> str:
        return self.snippet or "{{ " + self.name + " }}"


@dataclass(frozen=True)
class AbsenceLine:
    """One absence as a letter lists it: {{ absence.date }} inside the loop."""

    date: str
    horaire: str
    cours: str
    motif: str
    justifiee: str
    heures: str

    def __str__(self) -> str:
        """``2 novembre 2026, 8 h 00 – 10 h 00 : Droit civil (2 h)`` — the list written bare."""
        return f"{self.date}, {self.horaire} : {self.cours} ({self.heures})"


# The attributes a letter may read on the items of each list field.
LIST_ITEMS = {"absences": ("absence", AbsenceLine)}
ITEM_ATTRIBUTES = {"absences": frozenset(AbsenceLine.__dataclass_fields__)}

ABSENCES_LIST_SNIPPET = (
    "<ul>{% for absence in absences %}<li>{{ absence.date }}, {{ absence.horaire }} : "
    "{{ absence.cours }} ({{ absence.heures }}) — {{ absence.motif }}</li>{% endfor %}</ul>"
)

COMMON = (
    Field("nom", _l("Last name")),
    Field("prenom", _l("First name")),
    Field("email", _l("E-mail")),
    Field("date_du_jour", _l("Today's date")),
    Field("etablissement", _l("School")),
)
STUDENT = (
    Field("promotion", _l("Cohort")),
    Field("groupes", _l("Groups")),
)
ABSENCE = (
    Field("date", _l("Date")),
    Field("horaire", _l("Time")),
    Field("cours", _l("Course")),
    Field("motif", _l("Reason")),
    Field("justifiee", _l("Justified")),
    Field("absences", _l("List of the absences"), ABSENCES_LIST_SNIPPET),
    Field("nombre_absences", _l("Number of absences")),
    Field("total_heures", _l("Total hours")),
)
INTERNSHIP = (
    Field("entreprise", _l("Company")),
    Field("adresse_entreprise", _l("Company address")),
    Field("tuteur", _l("Tutor")),
    Field("email_tuteur", _l("Tutor's e-mail")),
    Field("debut", _l("Start")),
    Field("fin", _l("End")),
    Field("sujet", _l("Topic")),
)
FIELDS: dict[str, tuple[Field, ...]] = {
    Category.STUDENTS: COMMON + STUDENT,
    Category.TEACHERS: COMMON,
    Category.STAFF: COMMON,
    Category.ABSENCES: COMMON + STUDENT + ABSENCE,
    Category.INTERNSHIPS: COMMON + STUDENT + INTERNSHIP,
}
# Who a person category is about.
PERSON_KINDS = {
    Category.STUDENTS: PersonKind.STUDENT,
    Category.TEACHERS: PersonKind.TEACHER,
    Category.STAFF: PersonKind.STAFF,
}


def field_names(category: str) -> frozenset[str]:
    return frozenset(field.name for field in FIELDS[category])


def list_fields(category: str) -> dict[str, frozenset[str]]:
    """The list fields of a category and the attributes of their items."""
    return {name: ITEM_ATTRIBUTES[name] for name in LIST_ITEMS if name in field_names(category)}


@dataclass(frozen=True)
class AbsenceRecord:
    """One absences letter: a student and their absences in the selection, in date order."""

    student: Person
    absences: tuple[Absence, ...]


Record = Person | AbsenceRecord | Internship


def recipient_of(record: Record) -> Person:
    """The person the letter is addressed to."""
    if isinstance(record, AbsenceRecord):
        return record.student
    if isinstance(record, Internship):
        return record.person
    return record


def values_of(record: Record, letterhead: LetterheadInfo, today: date) -> dict[str, object]:
    """Return every field's value for ``record``, as printed in French."""
    with force_locale("fr"):
        person = recipient_of(record)
        values: dict[str, object] = {
            "nom": person.last_name,
            "prenom": person.first_name,
            "email": person.email or "",
            "date_du_jour": french_date(today),
            "etablissement": letterhead.school_name,
            "promotion": person.cohort.name if person.cohort else "",
            "groupes": ", ".join(group.name for group in person.groups),
        }
        if isinstance(record, AbsenceRecord):
            values.update(_absence_values(record))
        elif isinstance(record, Internship):
            values.update(
                entreprise=record.company,
                adresse_entreprise=record.company_address,
                tuteur=record.tutor_name,
                email_tuteur=record.tutor_email or "",
                debut=french_date(record.start_date),
                fin=french_date(record.end_date),
                sujet=record.subject,
            )
        return values


def _absence_values(record: AbsenceRecord) -> dict[str, object]:
    lines = [_absence_line(absence) for absence in record.absences]
    first = lines[0] if lines else AbsenceLine("", "", "", "", "", "")
    total = sum(absence.minutes for absence in record.absences) / 60
    return {
        "date": first.date,
        "horaire": first.horaire,
        "cours": first.cours,
        "motif": first.motif,
        "justifiee": first.justifiee,
        "absences": lines,
        "nombre_absences": str(len(lines)),
        "total_heures": hours_text(total),
    }


def _absence_line(absence: Absence) -> AbsenceLine:
    return AbsenceLine(
        date=french_date(absence.day),
        horaire=f"{_clock(absence.start_time)} – {_clock(absence.end_time)}",
        cours=absence.course.subject if absence.course else absence.course_label,
        motif=absence.reason,
        justifiee=_("Yes") if absence.justified else _("No"),
        heures=hours_text(absence.minutes / 60),
    )


def _clock(value) -> str:
    """``8 h 30`` — a time of day as the French write it."""
    return f"{value.hour} h {value.minute:02d}"


def absence_records(absences: Iterable[Absence]) -> list[AbsenceRecord]:
    """Group absences into one record per student (in the order students first appear)."""
    by_student: dict[int, list[Absence]] = {}
    students: dict[int, Person] = {}
    for absence in absences:
        by_student.setdefault(absence.person_id, []).append(absence)
        students[absence.person_id] = absence.person
    return [
        AbsenceRecord(
            students[person_id], tuple(sorted(found, key=lambda a: (a.day, a.start_time, a.id)))
        )
        for person_id, found in by_student.items()
    ]


# Records read from the directory (for the preview, or for a batch of letters).

SAMPLE_SIZE = 50  # records offered in the preview's menu


def people_query(kind: str):
    return (
        select(Person)
        .where(Person.kind == kind)
        .options(selectinload(Person.cohort), selectinload(Person.groups))
        .order_by(Person.last_name_key, Person.first_name_key, Person.id)
    )


def internships_query():
    return (
        select(Internship)
        .options(
            selectinload(Internship.person).selectinload(Person.cohort),
            selectinload(Internship.person).selectinload(Person.groups),
        )
        .order_by(Internship.start_date, Internship.id)
    )


def absences_query():
    return (
        select(Absence)
        .options(
            selectinload(Absence.course),
            selectinload(Absence.person).selectinload(Person.cohort),
            selectinload(Absence.person).selectinload(Person.groups),
        )
        .order_by(Absence.day, Absence.start_time, Absence.id)
    )


def sample_choices(category: str) -> list[tuple[int, str]]:
    """Return (id, label) of the first records of the category, for the preview's menu.

    For absences the id is a student's: the preview shows them with all their absences.
    """
    if category in PERSON_KINDS:
        people = db.session.scalars(people_query(PERSON_KINDS[category]).limit(SAMPLE_SIZE))
        return [(p.id, p.full_name) for p in people]
    if category == Category.INTERNSHIPS:
        found = db.session.scalars(internships_query().limit(SAMPLE_SIZE))
        return [(i.id, f"{i.person.full_name} — {i.company}") for i in found]
    students = db.session.execute(
        select(Person.id, Person.last_name, Person.first_name)
        .where(Person.id.in_(select(Absence.person_id)))
        .order_by(Person.last_name_key, Person.first_name_key, Person.id)
        .limit(SAMPLE_SIZE)
    )
    return [(i, f"{last.upper()} {first}".strip()) for i, last, first in students]


def sample_record(category: str, record_id: int | None = None) -> Record | None:
    """Return the record ``record_id`` of the category, or its first one; None when none."""
    if category in PERSON_KINDS:
        query = people_query(PERSON_KINDS[category])
        if record_id is not None:
            query = query.where(Person.id == record_id)
        return db.session.scalars(query.limit(1)).first()
    if category == Category.INTERNSHIPS:
        query = internships_query()
        if record_id is not None:
            query = query.where(Internship.id == record_id)
        return db.session.scalars(query.limit(1)).first()
    if record_id is None:
        record_id = db.session.scalar(
            select(Absence.person_id).order_by(Absence.day, Absence.id).limit(1)
        )
    absences = db.session.scalars(absences_query().where(Absence.person_id == record_id)).all()
    records = absence_records(absences)
    return records[0] if records else None


def records_for(category: str, ids: Sequence[int]) -> list[Record]:
    """Return the records of a batch of letters, in the order of ``ids``.

    People or internships by their ids; for absences, ``ids`` are absences, grouped into one
    record per student.
    """
    if category in PERSON_KINDS:
        model, query = Person, people_query(PERSON_KINDS[category])
    elif category == Category.INTERNSHIPS:
        model, query = Internship, internships_query()
    else:
        found = db.session.scalars(absences_query().where(Absence.id.in_(ids))).all()
        order = {absence_id: n for n, absence_id in enumerate(ids)}
        return absence_records(sorted(found, key=lambda a: order[a.id]))
    found = {row.id: row for row in db.session.scalars(query.where(model.id.in_(ids)))}
    return [found[i] for i in ids if i in found]
