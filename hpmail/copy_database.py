"""Moving a school: copy the configured SQLite database into an empty PostgreSQL database.

The source is read in one read transaction, a consistent snapshot of a running installation (a
mailing queued meanwhile is wholly in the copy or wholly out). The target gets its schema from the
migrations, then every table of the models in dependency order, a batch at a time, its sequences
moved past the copied ids, and a row count and a checksum per table compared with the source. All
of it is one transaction in the target, committed only when every table matches: a refused,
failed or different copy leaves the target as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from alembic import command
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    Table,
    create_engine,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from hpmail.core.text import one_line
from hpmail.extensions import db

BATCH_ROWS = 2_000  # rows read, written and hashed at a time: the memory used stays bounded
CONNECT_TIMEOUT_SECONDS = 10
ALEMBIC_TABLE = "alembic_version"
POSTGRESQL_DRIVERS = ("postgresql", "postgresql+psycopg")

# Exit codes of ``flask copy-database``, for scripts.
EXIT_DIFFERENT = 1  # the copy failed or the two databases differ: the target kept nothing
EXIT_REFUSED = 2  # the copy could not start (target, source): nothing was written
EXIT_NOT_EMPTY = 3  # the target already holds data: nothing was written


class CopyRefused(Exception):
    """The copy cannot start; nothing was written. The message is French, for the admin."""

    exit_code = EXIT_REFUSED


class TargetNotEmpty(CopyRefused):
    """The target database already holds tables or rows: a copy never writes over data."""

    exit_code = EXIT_NOT_EMPTY


class CopyFailed(Exception):
    """The copy stopped, or the target differs from the source: its transaction rolled back."""

    exit_code = EXIT_DIFFERENT

    def __init__(self, message: str, checks: list[TableCheck] | None = None) -> None:
        super().__init__(message)
        self.checks = checks or []


@dataclass(frozen=True)
class TableCheck:
    """One table's rows and checksum in the source (its snapshot) and in the target."""

    table: str
    source_rows: int
    source_checksum: str
    target_rows: int
    target_checksum: str

    @property
    def ok(self) -> bool:
        return (self.source_rows, self.source_checksum) == (self.target_rows, self.target_checksum)


@dataclass(frozen=True)
class Copy:
    """What a finished copy did: the schema's revision and every table's check."""

    revision: str
    checks: list[TableCheck]

    @property
    def rows(self) -> int:
        return sum(check.source_rows for check in self.checks)


def postgresql_url(target: str) -> URL:
    """Return the target as a PostgreSQL URL for psycopg, or refuse any other database.

    ``postgresql://`` is read as ``postgresql+psycopg://`` (the driver ``.[postgres]`` installs).
    """
    try:
        url = make_url(target.strip())
    except ArgumentError:
        raise CopyRefused(
            f"« {target} » n'est pas l'adresse d'une base de données : donnez-la sous la forme "
            "postgresql+psycopg://utilisateur@serveur/base."
        ) from None
    if url.drivername not in POSTGRESQL_DRIVERS or not url.database:
        raise CopyRefused(
            f"La base cible doit être une base PostgreSQL nommée (postgresql+psycopg://"
            f"utilisateur@serveur/base), pas « {shown(url)} ». Pour copier une base SQLite, "
            "utilisez sqlite3 .backup."
        )
    return url.set(drivername="postgresql+psycopg")


def shown(url: URL) -> str:
    """Return the URL as it may be printed: never its password."""
    return url.render_as_string(hide_password=True)


def copy_database(
    source: Engine, target: str, progress: Callable[[str, int], None] | None = None
) -> Copy:
    """Copy every table of the source into the empty PostgreSQL database ``target``, verified.

    ``progress(table, rows)`` is called after each table is copied. Raise ``CopyRefused`` (or
    ``TargetNotEmpty``) before writing anything, ``CopyFailed`` when the target's transaction was
    rolled back (an error, or a table that differs).
    """
    url = postgresql_url(target)
    if source.dialect.name != "sqlite":
        raise CopyRefused(
            "copy-database copie une installation SQLite ; la base configurée est "
            f"{source.dialect.name} (pour une base PostgreSQL, utilisez pg_dump)."
        )
    tables = db.metadata.sorted_tables
    with _snapshot(source) as reading:
        revision = _checked_source(reading, tables)
        engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "application_name": "hpmail copy-database",
            },
        )
        try:
            try:
                writing = engine.connect()
            except OperationalError as error:
                raise CopyRefused(
                    f"La base cible {shown(url)} est injoignable : {_reason(error)}"
                ) from None
            with writing, writing.begin():
                _check_empty(writing, tables)
                return _copy(reading, writing, tables, revision, progress)
        finally:
            engine.dispose()


@contextmanager
def _snapshot(source: Engine) -> Iterator[Connection]:
    """Yield a read transaction on the SQLite source: every table is read as it was at its start.

    pysqlite opens no transaction for SELECTs by itself, so each would see the database as it is
    at that moment: BEGIN is sent by hand, with the driver's own transactions turned off.
    """
    with source.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("BEGIN")
        try:
            yield connection
        finally:
            connection.exec_driver_sql("ROLLBACK")


def _checked_source(reading: Connection, tables: list[Table]) -> str:
    """Return the source's schema revision (reading it starts the snapshot); refuse an odd one."""
    head = _migration_head()
    revision = None
    if inspect(reading).has_table(ALEMBIC_TABLE):
        revision = reading.scalar(text(f"SELECT version_num FROM {ALEMBIC_TABLE}"))  # noqa: S608
    if revision != head:
        raise CopyRefused(
            f"La base source n'est pas à jour (révision {revision or 'aucune'}, attendue {head}) : "
            "lancez d'abord flask --app app db upgrade."
        )
    unknown = set(inspect(reading).get_table_names()) - {t.name for t in tables} - {ALEMBIC_TABLE}
    if unknown:
        raise CopyRefused(
            "La base source contient des tables que hpmail ne connaît pas "
            f"({_listed(sorted(unknown))}) : elles ne seraient pas copiées."
        )
    return revision


def _migration_head() -> str:
    script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    return script.get_current_head()


def _check_empty(writing: Connection, tables: list[Table]) -> None:
    """Refuse a target holding another application's tables or views, or rows in any of ours.

    Our tables without rows are accepted (``flask db upgrade`` run there first), and so is an
    ``alembic_version`` table: the migrations then take the schema on from its revision.
    """
    inspector = inspect(writing)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    ours = {table.name: table for table in tables}
    foreign = sorted(present - set(ours) - {ALEMBIC_TABLE})
    if foreign:
        raise TargetNotEmpty(
            f"La base cible n'est pas vide : elle contient {_listed(foreign)}. "
            "copy-database n'écrit que dans une base vide : créez-en une (createdb)."
        )
    filled = [
        name
        for name in sorted(present & set(ours))
        if writing.scalar(select(select(ours[name]).limit(1).exists()))
    ]
    if filled:
        raise TargetNotEmpty(
            "La base cible n'est pas vide : des lignes sont déjà dans les tables "
            f"{_listed(filled)}. copy-database n'écrit jamais sur des données : créez une base "
            "vide (createdb)."
        )


def _listed(names: list[str], shown: int = 8) -> str:
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} et {len(names) - shown} autres"


def _copy(
    reading: Connection,
    writing: Connection,
    tables: list[Table],
    revision: str,
    progress: Callable[[str, int], None] | None,
) -> Copy:
    with _step("La création du schéma dans la base cible"):
        _migrate(writing)
        target_revision = writing.scalar(text(f"SELECT version_num FROM {ALEMBIC_TABLE}"))  # noqa: S608
    if target_revision != revision:
        raise CopyFailed(
            f"La base cible est à la révision {target_revision}, la source à {revision} : "
            "la base cible n'a rien gardé."
        )
    copied = {}
    for table in tables:
        with _step(f"La copie de la table « {table.name} »"):
            copied[table.name] = checksum(reading, table, copy_to=writing)
        if progress:
            progress(table.name, copied[table.name][0])
    with _step("La mise à jour des séquences"):
        for table in tables:
            _move_sequence(writing, table)
    with _step("La vérification"):
        checks = [TableCheck(t.name, *copied[t.name], *checksum(writing, t)) for t in tables]
    if not all(check.ok for check in checks):
        raise CopyFailed(
            "Les deux bases diffèrent : la copie est annulée, la base cible n'a rien gardé.",
            checks,
        )
    return Copy(revision, checks)


@contextmanager
def _step(what: str) -> Iterator[None]:
    """Turn a database error into ``CopyFailed`` saying which step failed and the server's words."""
    try:
        yield
    except DBAPIError as error:
        raise CopyFailed(
            f"{what} a échoué : {_reason(error)} — la base cible n'a rien gardé."
        ) from error


def _migrate(writing: Connection) -> None:
    """Create the schema in the target with the migrations, in the copy's transaction."""
    config = current_app.extensions["migrate"].migrate.get_config()
    config.attributes["connection"] = writing
    command.upgrade(config, "head")


def checksum(
    connection: Connection, table: Table, copy_to: Connection | None = None
) -> tuple[int, str]:
    """Return the rows of a table and a SHA-256 of them, the same on SQLite and PostgreSQL.

    With ``copy_to``, each batch read is also written there: the copy's checksum is the source's.
    """
    rows, digest = 0, hashlib.sha256()
    for batch in _ordered_rows(connection, table).partitions(BATCH_ROWS):
        for row in batch:
            digest.update(_line(row))
        if copy_to is not None:
            copy_to.execute(insert(table), [row._asdict() for row in batch])
        rows += len(batch)
    return rows, digest.hexdigest()


def _ordered_rows(connection: Connection, table: Table):
    """Stream the rows by primary key, text keys in byte order on both back ends.

    PostgreSQL sorts text by the database's locale (« é » among the « e » in fr_FR), SQLite by
    bytes: the "C" collation makes PostgreSQL sort the way SQLite does.
    """
    order = []
    for column in table.primary_key.columns:
        if isinstance(column.type, String) and connection.dialect.name == "postgresql":
            order.append(column.collate("C"))
        else:
            order.append(column)
    query = select(table).order_by(*order).execution_options(yield_per=BATCH_ROWS)
    return connection.execute(query)


def _line(row) -> bytes:
    """Return a row as one line of JSON, each value written the same way from either back end."""
    values = [_plain(value) for value in row]
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _plain(value):
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.date | dt.time):  # datetimes too: naive UTC in every table
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value.normalize())
    return str(value)


def _move_sequence(writing: Connection, table: Table) -> None:
    """Make the table's id sequence give max(id) + 1 next, as if the rows were inserted here."""
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or not isinstance(keys[0].type, Integer):
        return
    quoted = writing.dialect.identifier_preparer.format_table(table)
    sequence = writing.scalar(select(func.pg_get_serial_sequence(quoted, keys[0].name)))
    if sequence is None:
        return
    last = writing.scalar(select(func.max(keys[0]))) or 0
    writing.execute(
        text("SELECT setval(CAST(:sequence AS regclass), :next, false)"),
        {"sequence": sequence, "next": last + 1},
    )


def _reason(error: DBAPIError) -> str:
    """Return the server's words, on one line."""
    return one_line(str(error.orig)) if error.orig is not None else one_line(str(error))


def report_lines(checks: list[TableCheck]) -> Iterator[str]:
    """Yield the verification as a table in French: table, lignes, somme de contrôle, OK."""
    width = max([len("table"), *(len(check.table) for check in checks)])
    yield f"{'table':<{width}}  {'lignes':>9}  {'somme de contrôle':<33}  OK"
    for check in checks:
        rows = f"{check.source_rows}"
        digest = check.source_checksum[:16]
        if check.source_rows != check.target_rows:
            rows = f"{check.source_rows}≠{check.target_rows}"
        if check.source_checksum != check.target_checksum:
            digest = f"{check.source_checksum[:16]}≠{check.target_checksum[:16]}"
        yield f"{check.table:<{width}}  {rows:>9}  {digest:<33}  {'oui' if check.ok else 'NON'}"
