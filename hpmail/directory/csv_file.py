"""Reading a CSV file: encoding, separator, French or English columns, each row checked.

One reader for every kind of file (people, absences, internships); a ``Layout`` says what columns a
kind has and checks its rows. Nothing here touches the database; the importers match and write
what these functions accept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from flask_babel import gettext as _

from hpmail.core.forms import InputRefused
from hpmail.core.text import fold, without_unsafe_characters
from hpmail.directory.emails import email_status_of
from hpmail.directory.models import PersonKind

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
LIMITS = {"last_name": 120, "first_name": 120, "email": 254, "cohort": 120, "external_id": 64}
GROUP_NAME_LIMIT = 120


def _column_names() -> dict[str, str]:
    return {
        "last_name": _("last name (nom)"),
        "first_name": _("first name (prénom)"),
        "kind": _("type"),
        "email": _("e-mail (column)"),
        "cohort": _("cohort (promotion)"),
        "external_id": _("id (identifiant)"),
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
    # The absence or internship this row updates, when it is already known.
    record_id: int | None = None


@dataclass(frozen=True)
class Layout:
    """What a kind of file holds: its columns, which are required, and the check of one row.

    ``headers`` maps a folded header to a field; ``names`` gives each field's name in the reader's
    language; ``check(raw, row, problems, notes)`` fills ``row.name`` and ``row.values`` from the
    cleaned cells and adds what is wrong; ``nothing`` is the message of a file without rows.
    """

    headers: dict[str, str]
    required: tuple[str, ...]
    limits: dict[str, int]
    names: Callable[[], dict[str, str]]
    check: Callable[[dict, RowReport, list, list], None]
    nothing: Callable[[], str]


@dataclass
class CsvFile:
    """The rows of a file, with what was learnt reading it."""

    rows: list[RowReport]
    encoding: str
    delimiter: str
    notes: list[str] = field(default_factory=list)


class FileRefused(InputRefused):
    """The whole file is unusable; the message says why."""


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


def _header_fields(header: list[str], layout: Layout) -> list[str | None]:
    fields = []
    for name in header:
        key = fold(name).replace(" ", "").replace("-", "").replace("_", "").replace("'", "")
        fields.append(layout.headers.get(key))
    return fields


def read_rows(data: bytes, layout: Layout | None = None) -> CsvFile:
    """Decode and parse the file and check each row (people by default), or raise FileRefused."""
    layout = layout or PEOPLE
    if not data.strip():
        raise FileRefused(_("The file is empty."))
    text, encoding = decode(data)
    delimiter = sniff_delimiter(text)
    notes: list[str] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        fields = _header_fields(header, layout)
        _check_header(header, fields, notes, layout)
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            rows.append(_check_row(reader.line_num, cells, fields, len(header), layout))
    except csv.Error as error:
        raise FileRefused(
            _(
                "The CSV file is malformed near line %(line)s (%(detail)s). Check the quotes.",
                line=reader.line_num,
                detail=str(error),
            )
        ) from None
    if not rows:
        raise FileRefused(layout.nothing())
    return CsvFile(rows, encoding, delimiter, notes)


def _check_header(
    header: list[str], fields: list[str | None], notes: list[str], layout: Layout
) -> None:
    present = [f for f in fields if f]
    twice = sorted({f for f in present if present.count(f) > 1})
    if twice:
        names = ", ".join(h for h, f in zip(header, fields, strict=True) if f in twice)
        raise FileRefused(_("These columns say the same thing twice: %(names)s.", names=names))
    missing = [layout.names()[f] for f in layout.required if f not in present]
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
        notes.append(_("Columns ignored: %(names)s.", names=", ".join(ignored)))


def _check_row(
    line: int, cells: list[str], fields: list[str | None], width: int, layout: Layout
) -> RowReport:
    raw = {f: cell.strip() for f, cell in zip(fields, cells, strict=False) if f}
    # A line break or control character would end an e-mail header holding the value: removed,
    # and the row says so.
    cleaned = {f: without_unsafe_characters(value).strip() for f, value in raw.items()}
    had_unsafe = cleaned != raw
    raw = cleaned
    row = RowReport(line=line, name="")
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
    if had_unsafe:
        notes.append(_("A line break or a control character was removed from this line."))
    for key, limit in layout.limits.items():
        if len(raw.get(key, "")) > limit:
            problems.append(
                _(
                    "%(column)s is longer than %(limit)s characters.",
                    column=layout.names()[key],
                    limit=limit,
                )
            )
    layout.check(raw, row, problems, notes)
    row.messages = problems + notes
    row.status = "rejected" if problems else "pending"
    return row


def _check_person(raw: dict, row: RowReport, problems: list, notes: list) -> None:
    name = f"{raw.get('last_name', '').upper()} {raw.get('first_name', '')}".strip()
    row.name = name[:250]
    if not raw.get("last_name"):
        problems.insert(0, _("The last name is missing."))
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
        problems.append(
            _("A group name is longer than %(limit)s characters.", limit=GROUP_NAME_LIMIT)
        )
    email = raw.get("email") or None
    status = email_status_of(email)
    if status == "invalid":
        notes.append(_("Invalid e-mail address, kept as it is."))
    row.values = {
        "kind": kind,
        "external_id": raw.get("external_id") or None,
        "last_name": raw.get("last_name", ""),
        "first_name": raw.get("first_name", ""),
        "email": email,
        "email_status": str(status),
    }
    row.cohort, row.groups = cohort, list(dict.fromkeys(groups))


PEOPLE = Layout(
    headers=COLUMNS,
    required=REQUIRED,
    limits=LIMITS,
    names=_column_names,
    check=_check_person,
    nothing=lambda: _("The file has a header line but no person."),
)
