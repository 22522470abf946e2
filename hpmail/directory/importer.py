"""CSV import of people: read the file, check every row, match existing people, write in one go.

A file with rejected rows writes nothing unless the admin asks for the valid rows only; the caller
commits once, so a file is never half-imported.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import delete, insert, select, update

from hpmail.directory.emails import email_status_of
from hpmail.directory.models import (
    Cohort,
    Group,
    Person,
    PersonKind,
    insert_many,
    person_group,
)
from hpmail.directory.text import fold, search_text_for
from hpmail.extensions import db

log = logging.getLogger(__name__)

# Header (folded, without spaces, dashes or underscores) -> field.
COLUMNS = {
    "nom": "last_name", "lastname": "last_name", "nomdefamille": "last_name", "name": "last_name",
    "prenom": "first_name", "firstname": "first_name",
    "email": "email", "mail": "email", "courriel": "email", "adresseemail": "email",
    "type": "kind", "kind": "kind", "categorie": "kind",
    "promotion": "cohort", "cohort": "cohort", "classe": "cohort",
    "groupes": "groups", "groups": "groups", "groupe": "groups", "group": "groups",
    "identifiant": "external_id", "id": "external_id",
}  # fmt: skip
REQUIRED = ("last_name", "first_name", "kind")
KINDS = {
    "enseignant": PersonKind.TEACHER, "enseignante": PersonKind.TEACHER,
    "professeur": PersonKind.TEACHER, "prof": PersonKind.TEACHER, "teacher": PersonKind.TEACHER,
    "etudiant": PersonKind.STUDENT, "etudiante": PersonKind.STUDENT, "eleve": PersonKind.STUDENT,
    "student": PersonKind.STUDENT,
    "personnel": PersonKind.STAFF, "staff": PersonKind.STAFF, "administratif": PersonKind.STAFF,
}  # fmt: skip
# Unique among the rows an import creates (duplicates in the file are rejected before).
PERSON_KEY = ("kind", "external_id", "last_name", "first_name", "email")
LIMITS = {"last_name": 120, "first_name": 120, "email": 254, "cohort": 120, "external_id": 64}
GROUP_NAME_LIMIT = 120


def _column_names() -> dict[str, str]:
    return {
        "last_name": _("last name (nom)"),
        "first_name": _("first name (prénom)"),
        "kind": _("type"),
    }


@dataclass
class RowReport:
    """What happened to one line of the file."""

    line: int
    name: str
    status: str = "pending"  # created, updated, unchanged, rejected
    messages: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict, repr=False)
    cohort: str = ""
    groups: list[str] = field(default_factory=list)
    person_id: int | None = None


@dataclass
class ImportReport:
    """The result of reading (and maybe importing) a file: file errors, then one report per row."""

    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: list[RowReport] = field(default_factory=list)
    new_cohorts: list[str] = field(default_factory=list)
    new_groups: list[str] = field(default_factory=list)
    applied: bool = False
    encoding: str = ""
    delimiter: str = ""

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row.status == status)

    @property
    def rejected(self) -> list[RowReport]:
        return [row for row in self.rows if row.status == "rejected"]

    @property
    def valid_rows(self) -> list[RowReport]:
        return [row for row in self.rows if row.status != "rejected"]


class FileRefused(Exception):
    """The whole file is unusable; the message says why, in French."""


def decode(data: bytes) -> tuple[str, str]:
    """Return the file's text and encoding: UTF-8 (with or without BOM) or Windows-1252."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRefused(
            _("This is a spreadsheet, not a CSV file. Save it as CSV (semicolon separated) first.")
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise FileRefused(
            _("The file's encoding is not supported (UTF-16 or binary). Save it as CSV UTF-8.")
        )
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError as error:
        raise FileRefused(
            _(
                "The file's encoding is not recognised (byte %(position)s). "
                "Save it as CSV UTF-8 or Windows-1252.",
                position=error.start + 1,
            )
        ) from None


def sniff_delimiter(text: str) -> str:
    """Return ';' or ',' from the header line, or refuse another separator."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    semicolons, commas = header.count(";"), header.count(",")
    if semicolons == 0 and commas == 0:
        raise FileRefused(
            _(
                "Column separator not recognised: the header line must separate its columns "
                "with semicolons (;) or commas (,). It reads: « %(header)s ».",
                header=header[:200],
            )
        )
    return ";" if semicolons >= commas else ","


def _header_fields(header: list[str]) -> list[str | None]:
    fields = []
    for name in header:
        key = fold(name).replace(" ", "").replace("-", "").replace("_", "").replace("'", "")
        fields.append(COLUMNS.get(key))
    return fields


def read_rows(data: bytes, report: ImportReport) -> list[RowReport]:
    """Decode and parse the file, check each row; fill ``report`` (nothing is written)."""
    if not data.strip():
        raise FileRefused(_("The file is empty."))
    text, report.encoding = decode(data)
    report.delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=report.delimiter, strict=True)
    try:
        header = next(reader)
        fields = _header_fields(header)
        _check_header(header, fields, report)
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            rows.append(_check_row(reader.line_num, cells, fields, len(header)))
    except csv.Error as error:
        raise FileRefused(
            _(
                "The CSV file is malformed near line %(line)s (%(detail)s). Check the quotes.",
                line=reader.line_num,
                detail=str(error),
            )
        ) from None
    if not rows:
        raise FileRefused(_("The file has a header line but no person."))
    return rows


def _check_header(header: list[str], fields: list[str | None], report: ImportReport) -> None:
    present = [f for f in fields if f]
    twice = sorted({f for f in present if present.count(f) > 1})
    if twice:
        names = ", ".join(h for h, f in zip(header, fields, strict=True) if f in twice)
        raise FileRefused(_("These columns say the same thing twice: %(names)s.", names=names))
    missing = [_column_names()[f] for f in REQUIRED if f not in present]
    if missing:
        raise FileRefused(
            _(
                "Required columns are missing: %(missing)s. Columns found: %(found)s.",
                missing=", ".join(missing),
                found=", ".join(f"« {h.strip()[:60]} »" for h in header) or "—",
            )
        )
    ignored = [h.strip() for h, f in zip(header, fields, strict=True) if not f and h.strip()]
    if ignored:
        report.notes.append(_("Columns ignored: %(names)s.", names=", ".join(ignored)))


def _check_row(line: int, cells: list[str], fields: list[str | None], width: int) -> RowReport:
    raw = {f: cell.strip() for f, cell in zip(fields, cells, strict=False) if f}
    name = f"{raw.get('last_name', '').upper()} {raw.get('first_name', '')}".strip()
    row = RowReport(line=line, name=name[:250])
    problems: list[str] = []
    notes: list[str] = []
    if len(cells) > width:
        problems.append(
            _(
                "This line has %(cells)s columns instead of %(width)s "
                "(a separator inside a value without quotes?).",
                cells=len(cells),
                width=width,
            )
        )
    if any(ch in value for value in raw.values() for ch in "\r\n\x00\t"):
        problems.append(_("A value holds a line break or a control character."))
    if not raw.get("last_name"):
        problems.append(_("The last name is missing."))
    for key, limit in LIMITS.items():
        if len(raw.get(key, "")) > limit:
            problems.append(
                _("%(column)s is longer than %(limit)s characters.", column=key, limit=limit)
            )
    kind = KINDS.get(fold(raw.get("kind", "")).replace(" ", ""))
    if kind is None:
        problems.append(
            _(
                "Unknown type « %(value)s »: expected enseignant, étudiant or personnel.",
                value=raw.get("kind", "")[:40],
            )
        )
    groups = [g.strip() for g in raw.get("groups", "").split(",") if g.strip()]
    cohort = raw.get("cohort", "")
    if kind and kind != PersonKind.STUDENT and (cohort or groups):
        notes.append(_("Cohort and groups ignored: only students have them."))
        cohort, groups = "", []
    if groups and not cohort:
        problems.append(_("Groups are given without a cohort."))
    if any(len(g) > GROUP_NAME_LIMIT for g in groups):
        problems.append(_("A group name is longer than %(limit)s characters.", limit=120))
    email = raw.get("email") or None
    status = email_status_of(email)
    if status == "invalid":
        notes.append(_("Invalid e-mail address, kept as it is."))
    row.messages = problems + notes
    row.status = "rejected" if problems else "pending"
    row.values = {
        "kind": kind,
        "external_id": raw.get("external_id") or None,
        "last_name": raw.get("last_name", ""),
        "first_name": raw.get("first_name", ""),
        "email": email,
        "email_status": str(status),
    }
    row.cohort, row.groups = cohort, list(dict.fromkeys(groups))
    return row


def _identity(values: dict) -> tuple:
    if values["external_id"]:
        return ("id", values["kind"], values["external_id"])
    return _names_key(values["kind"], values["last_name"], values["first_name"], values["email"])


def _names_key(kind, last_name, first_name, email) -> tuple:
    return ("names", kind, fold(last_name), fold(first_name), (email or "").strip().lower())


def _reject_duplicates(rows: list[RowReport]) -> None:
    first_line: dict[tuple, int] = {}
    for row in rows:
        if row.status == "rejected":
            continue
        key = _identity(row.values)
        if key in first_line:
            row.status = "rejected"
            row.messages.append(_("Duplicate of line %(line)s.", line=first_line[key]))
        else:
            first_line[key] = row.line


class _Existing:
    """The people, cohorts and groups already in the database, loaded once."""

    def __init__(self):
        columns = (
            Person.id, Person.kind, Person.external_id, Person.last_name, Person.first_name,
            Person.email, Person.email_status, Person.cohort_id,
        )  # fmt: skip
        self.people = {row.id: row for row in db.session.execute(select(*columns))}
        self.by_id = {(p.kind, p.external_id): p.id for p in self.people.values() if p.external_id}
        self.by_names: dict[tuple, int] = {}
        for p in self.people.values():
            self.by_names.setdefault(_names_key(p.kind, p.last_name, p.first_name, p.email), p.id)
        self.groups_of: dict[int, set[int]] = defaultdict(set)
        for person_id, group_id in db.session.execute(select(person_group)):
            self.groups_of[person_id].add(group_id)
        self.cohorts = {fold(c.name): c for c in db.session.scalars(select(Cohort))}
        self.groups = {(g.cohort_id, fold(g.name)): g for g in db.session.scalars(select(Group))}

    def match(self, values: dict) -> int | None:
        if values["external_id"]:
            found = self.by_id.get((values["kind"], values["external_id"]))
            if found:
                return found
        found = self.by_names.get(
            _names_key(values["kind"], values["last_name"], values["first_name"], values["email"])
        )
        if found and values["external_id"] and self.people[found].external_id:
            return None  # same names, another id: another person
        return found


def _match_rows(rows: list[RowReport], existing: _Existing) -> None:
    matched_by: dict[int, int] = {}
    for row in rows:
        if row.status == "rejected":
            continue
        row.person_id = existing.match(row.values)
        if row.person_id is None:
            continue
        if row.person_id in matched_by:
            row.status = "rejected"
            row.messages.append(_("Duplicate of line %(line)s.", line=matched_by[row.person_id]))
        else:
            matched_by[row.person_id] = row.line


def analyse(data: bytes, max_bytes: int) -> tuple[ImportReport, _Existing | None]:
    """Read and check the file against the database, writing nothing."""
    report = ImportReport()
    if len(data) > max_bytes:
        report.errors.append(
            _(
                "The file is too large (%(size)s MB); the limit is %(limit)s MB. "
                "Split it into several files.",
                size=round(len(data) / 1_048_576, 1),
                limit=round(max_bytes / 1_048_576, 1),
            )
        )
        return report, None
    try:
        report.rows = read_rows(data, report)
    except FileRefused as refused:
        report.errors.append(str(refused))
        return report, None
    _reject_duplicates(report.rows)
    existing = _Existing()
    _match_rows(report.rows, existing)
    return report, existing


def import_people(
    data: bytes, *, valid_only: bool = False, max_bytes: int = 20 * 1024 * 1024, actor: str = "?"
) -> ImportReport:
    """Import the people of a CSV file; write only if no row is rejected or ``valid_only``."""
    report, existing = analyse(data, max_bytes)
    if report.errors or existing is None:
        log.info("%s: CSV import refused: %s", actor, report.errors)
        return report
    if report.rejected and not valid_only:
        _plan(report, existing, write=False)
        return report
    _plan(report, existing, write=True)
    report.applied = True
    log.info(
        "%s imported people: %s created, %s updated, %s unchanged, %s rejected",
        actor,
        report.count("created"),
        report.count("updated"),
        report.count("unchanged"),
        report.count("rejected"),
    )
    return report


def _plan(report: ImportReport, existing: _Existing, write: bool) -> None:
    """Resolve cohorts and groups, decide created/updated/unchanged, and write when asked."""
    cohort_ids, group_ids = _resolve_audience(report, existing, write)
    creates, updates, group_changes = [], [], {}
    for row in report.valid_rows:
        values = dict(row.values)
        cohort_key = fold(row.cohort)
        values["cohort_id"] = cohort_ids.get(cohort_key) if row.cohort else None
        groups = {group_ids.get((cohort_key, fold(g))) for g in row.groups}
        values.update(_keys(values))
        if row.person_id is None:
            row.status = "created"
            creates.append((row, values, groups))
            continue
        before = existing.people[row.person_id]
        changed = any(
            getattr(before, key) != values[key]
            for key in (
                "external_id",
                "last_name",
                "first_name",
                "email",
                "email_status",
                "cohort_id",
            )
            if not (key == "external_id" and values[key] is None)
        )
        if values["external_id"] is None:
            values.pop("external_id")
        same_groups = existing.groups_of.get(row.person_id, set()) == groups
        row.status = "updated" if changed or not same_groups else "unchanged"
        if changed:
            updates.append({"id": row.person_id, **values})
        if not same_groups:
            group_changes[row.person_id] = groups
    if write:
        _write(creates, updates, group_changes)


def _keys(values: dict) -> dict:
    return {
        "search_text": search_text_for(values["last_name"], values["first_name"], values["email"]),
        "last_name_key": fold(values["last_name"])[:120],
        "first_name_key": fold(values["first_name"])[:120],
    }


def _resolve_audience(report: ImportReport, existing: _Existing, write: bool):
    """Return {folded cohort: id} and {(folded cohort, folded group): id}, creating what is new.

    Without ``write`` the new ones get no id (and no object, so nothing reaches the session).
    """
    cohorts: dict[str, Cohort | None] = dict(existing.cohorts)
    names = {c.id: key for key, c in existing.cohorts.items()}
    groups: dict[tuple[str, str], Group | None] = {
        (names[cohort_id], name): g for (cohort_id, name), g in existing.groups.items()
    }
    for row in report.valid_rows:
        if not row.cohort:
            continue
        cohort_key = fold(row.cohort)
        if cohort_key not in cohorts:
            cohorts[cohort_key] = Cohort(name=row.cohort) if write else None
            report.new_cohorts.append(row.cohort)
            row.messages.append(_("New cohort « %(name)s ».", name=row.cohort))
            if write:
                db.session.add(cohorts[cohort_key])
        for name in row.groups:
            key = (cohort_key, fold(name))
            if key not in groups:
                groups[key] = Group(name=name, cohort=cohorts[cohort_key]) if write else None
                report.new_groups.append(f"{row.cohort} · {name}")
                row.messages.append(_("New group « %(name)s ».", name=name))
                if write:
                    db.session.add(groups[key])
    if write:
        db.session.flush()
    cohort_ids = {key: c.id for key, c in cohorts.items() if c is not None}
    group_ids = {key: g.id for key, g in groups.items() if g is not None}
    return cohort_ids, group_ids


def _write(creates, updates, group_changes) -> None:
    if creates:
        ids = insert_many(Person, [values for _row, values, _groups in creates], PERSON_KEY)
        for (row, _values, groups), person_id in zip(creates, ids, strict=True):
            row.person_id = person_id
            if groups - {None}:
                group_changes[person_id] = groups
    if updates:
        db.session.execute(update(Person), updates)
    if group_changes:
        changed = list(group_changes)
        for start in range(0, len(changed), 500):
            chunk = changed[start : start + 500]
            db.session.execute(delete(person_group).where(person_group.c.person_id.in_(chunk)))
        links = [
            {"person_id": pid, "group_id": gid}
            for pid, groups in group_changes.items()
            for gid in groups
            if gid is not None
        ]
        if links:
            db.session.execute(insert(person_group), links)
    db.session.flush()


STATUS_LABELS = {
    "created": lambda: _("created"),
    "updated": lambda: _("updated"),
    "unchanged": lambda: _("unchanged"),
    "rejected": lambda: _("rejected"),
}


def summary(report: ImportReport) -> str:
    """Return the one-line count of the report, in French."""
    return _(
        "%(created)s created, %(updated)s updated, %(unchanged)s unchanged, %(rejected)s rejected.",
        created=report.count("created"),
        updated=report.count("updated"),
        unchanged=report.count("unchanged"),
        rejected=report.count("rejected"),
    )


def rows_to_show(report: ImportReport, limit: int = 300) -> tuple[list[RowReport], int]:
    """Return the rows worth showing (every remark first, then the others up to ``limit``)."""
    remarked = [row for row in report.rows if row.messages]
    quiet = [row for row in report.rows if not row.messages]
    room = max(0, limit - len(remarked))
    return sorted(remarked + quiet[:room], key=lambda row: row.line), max(0, len(quiet) - room)


def report_lines(report: ImportReport) -> list[str]:
    """Return the report as text lines (for the command line)."""
    if report.errors:
        return [_("Error: %(message)s", message=e) for e in report.errors] + [
            _("Nothing was imported.")
        ]
    lines = [*report.notes, summary(report)]
    if report.new_cohorts:
        lines.append(_("New cohorts: %(names)s.", names=", ".join(report.new_cohorts)))
    if report.new_groups:
        lines.append(_("New groups: %(names)s.", names=", ".join(report.new_groups)))
    for row in report.rows:
        if row.status == "rejected" or row.messages:
            lines.append(
                _(
                    "Line %(line)s (%(name)s): %(status)s — %(reasons)s",
                    line=row.line,
                    name=row.name or "?",
                    status=STATUS_LABELS[row.status](),
                    reasons=" ".join(row.messages),
                )
            )
    if report.applied:
        lines.append(_("Import done."))
    else:
        lines.append(
            _(
                "Nothing was imported: correct the file, or import the valid rows only "
                "(--valid-only)."
            )
        )
    return lines
