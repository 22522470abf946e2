"""CSV import of people: match the checked rows with the directory and write them in one go.

A file with rejected rows writes nothing unless the admin asks for the valid rows only; the caller
commits once, so a file is never half-imported.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import delete, insert, select, update

from hpmail.core.text import fold
from hpmail.directory.csv_file import PEOPLE, FileRefused, Layout, RowReport, read_rows
from hpmail.directory.models import (
    Cohort,
    EmailStatus,
    Group,
    Person,
    insert_many,
    person_group,
)
from hpmail.directory.refusals import kept_mark
from hpmail.directory.text import search_text_for
from hpmail.extensions import db

log = logging.getLogger(__name__)

# Unique among the rows an import creates (duplicates in the file are rejected before).
PERSON_KEY = ("kind", "external_id", "last_name", "first_name", "email")


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


def read_report(data: bytes, max_bytes: int, layout: Layout) -> ImportReport:
    """Read a file of ``layout`` into a report: its rows, or why the whole file is refused."""
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
        return report
    try:
        csv_file = read_rows(data, layout)
    except FileRefused as refused:
        report.errors.append(str(refused))
        return report
    report.rows, report.notes = csv_file.rows, csv_file.notes
    report.encoding, report.delimiter = csv_file.encoding, csv_file.delimiter
    return report


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
    report = read_report(data, max_bytes, PEOPLE)
    if report.errors:
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
        if kept_mark(before.email_status, before.email, values["email"]):
            values["email_status"] = EmailStatus.REFUSED  # the same mailbox: still unknown
            row.messages.append(_("Address refused by the server: it stays marked as such."))
        elif before.email_status == EmailStatus.REFUSED:
            values.update(email_refused_at=None, email_refused_reply=None)  # a new address
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
    """Return the one-line count of the report, in the reader's language."""
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
