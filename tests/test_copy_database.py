"""Moving a school: ``flask copy-database`` copies a SQLite installation into an empty PostgreSQL.

The source is a real SQLite installation made by ``flask setup``; the target a database made on
the test server for the test. The e-mails go to a real aiosmtpd server, and after the move a real
``huey_consumer`` on the PostgreSQL copy delivers what was pending, once.
"""

from __future__ import annotations

import collections
import shutil
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from hpmail import copy_database, create_app
from hpmail.accounts.models import Account
from hpmail.accounts.service import sender_for
from hpmail.auth.models import User
from hpmail.auth.service import create_user
from hpmail.directory.models import Person
from hpmail.documents.models import DocumentJob, DocumentJobItem
from hpmail.extensions import db
from hpmail.outbox.api import Address, AttachmentSpec, EmailSpec, queue_and_dispatch
from hpmail.outbox.attachments import store_attachment
from hpmail.outbox.models import EmailState, Mailing, OutboundEmail, WorkerProcess
from hpmail.outbox.send import deliver
from hpmail.outbox.settings import server_settings
from hpmail.outbox.tasks import sweep
from tests.conftest import FAST_HASH
from tests.fixtures import backend
from tests.fixtures.worker import WORKER_SETTINGS, Worker, wait_until

SCHOOL_ADDRESS = "secretariat@lycee-demo.fr"  # a demo school account the secretariat sends from
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def app_of(instance: Path, demo: bool = False, database_url: str = ""):
    """Return the app of an installation in ``instance`` (the queue in memory).

    Its database is the SQLite file in ``instance``, or ``database_url``.
    """
    return create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(instance),
            "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{instance / 'hpmail.sqlite3'}",
            "SECRET_KEY": "test-secret-key",
            "PASSWORD_HASH_METHOD": FAST_HASH,
            "DEMO": demo,
            "QUEUE_URL": "memory",
            "HUEY_IMMEDIATE": False,
            "SERVER_NAME": None,
        }
    )


@pytest.fixture(scope="module")
def installations(tmp_path_factory):
    """Return ``made(demo)``: the instance folder of an installation made once by ``flask setup``
    (with the demo school, or with one administrator), for tests to copy."""
    made: dict[bool, Path] = {}

    def make(demo: bool) -> Path:
        if demo not in made:
            instance = tmp_path_factory.mktemp("demo" if demo else "school") / "instance"
            app = app_of(instance, demo)
            with app.app_context():
                result = app.test_cli_runner().invoke(args=["setup"])
                assert result.exit_code == 0, result.output
                if not demo:
                    create_user("admin", "Agnès Martin", "correct horse battery", "admin")
                    db.session.commit()
                db.engine.dispose()
            made[demo] = instance
        return made[demo]

    return make


@pytest.fixture
def installation(installations, tmp_path):
    """Return ``installation(demo=False)``: the app of this test's own copy of an installation."""

    def make(demo: bool = False):
        instance = tmp_path / "instance"
        shutil.copytree(installations(demo), instance)
        return app_of(instance, demo)

    return make


@pytest.fixture
def target():
    """An empty PostgreSQL database on the test server, dropped after the test.

    Made as on a French server: text sorts by the French rules (« é » among the « e », case
    ignored first), not byte by byte as in SQLite.
    """
    name = backend.new_database_name("copy")
    engine = backend.server_engine()
    with engine.connect() as connection:
        connection.execute(
            text(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
                " LOCALE_PROVIDER icu ICU_LOCALE 'fr-FR' LOCALE 'C.UTF-8'"
            )
        )
    engine.dispose()
    yield backend.database_url(name)
    backend.drop_database(name)


def copy(app, target: str):
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["copy-database", "--to", target])
        db.engine.dispose()
    return result


def tables_of(url: str) -> dict[str, list[tuple]]:
    """Return every table of a database with its rows, ordered (small databases only)."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        names = connection.dialect.get_table_names(connection)
        rows = {
            name: sorted(map(tuple, connection.execute(text(f'SELECT * FROM "{name}"'))))  # noqa: S608
            for name in names
        }
    engine.dispose()
    return rows


def checksums_of(url: str) -> dict[str, tuple[int, str]]:
    """Return each table of the models' rows and checksum in the database at ``url``."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        sums = {t.name: copy_database.checksum(connection, t) for t in db.metadata.sorted_tables}
    engine.dispose()
    return sums


def mailing(subject: str, people: list[Person], files=()) -> Mailing:
    """Queue a mailing from the secretariat's school account, as the composer does, and send it."""
    author = db.session.scalar(select(User).where(User.login == "secretariat"))
    account = db.session.scalar(
        select(Account).where(Account.address == "secretariat@lycee-demo.fr")
    )
    queued, _delivery = queue_and_dispatch(
        author_id=author.id,
        sender=sender_for(author, account.id),
        subject=subject,
        text_body="Bonjour,\nla réunion de rentrée aura lieu lundi.",
        emails=[EmailSpec(to=[Address(p.email, p.first_name, p.id)]) for p in people],
        attachments=files,
    )
    return queued


def printed(person: Person, pdf) -> DocumentJob:
    """Record a finished print job of one person's timetable (as the worker leaves it)."""
    author = db.session.scalar(select(User).where(User.login == "secretariat"))
    job = DocumentJob(
        user_id=author.id,
        kind="timetable",
        output="pdf",
        period_start=datetime(2026, 11, 30),
        period_end=datetime(2026, 12, 5),
        state="done",
        output_file_id=pdf.id,
        output_filename="emplois-du-temps.zip",
        finished_at=datetime(2026, 12, 1, 8, 30, 15, 123456),
    )
    job.items = [
        DocumentJobItem(
            position=0, owner_id=person.id, name=person.last_name, state="ready", pdf_id=pdf.id
        )
    ]
    db.session.add(job)
    db.session.commit()
    return job


def message_ids(mailing_id: int) -> set[str]:
    return set(
        db.session.scalars(
            select(OutboundEmail.message_id).where(OutboundEmail.mailing_id == mailing_id)
        )
    )


def states_of_emails(mailing_id: int | None = None) -> dict[str, str]:
    """Return each e-mail's state by its Message-ID (of one mailing, or of all), as committed."""
    db.session.rollback()
    query = select(OutboundEmail.message_id, OutboundEmail.state)
    if mailing_id is not None:
        query = query.where(OutboundEmail.mailing_id == mailing_id)
    return {message_id: state for message_id, state in db.session.execute(query)}


@backend.needs_postgres
@pytest.mark.worker
def test_a_running_school_moves_to_postgresql_and_only_its_pending_mailing_is_sent_after(
    installation, target, smtp_server, launcher
):
    school = installation(demo=True)
    with school.app_context():
        server_settings().transport.port = smtp_server.port  # the demo mailbox: this test's
        db.session.commit()
        teachers = db.session.scalars(
            select(Person).where(Person.kind == "teacher", Person.email_status == "valid").limit(3)
        ).all()
        students = db.session.scalars(
            select(Person).where(Person.kind == "student", Person.email_status == "valid").limit(4)
        ).all()
        first_student = students[0].id
        pdf = AttachmentSpec(store_attachment(PDF, "application/pdf"), "circulaire.pdf")
        sent = mailing("Réunion de rentrée", teachers, files=[pdf])
        deliver(sorted(e.id for e in sent.emails), final=True)  # as the old machine's worker did
        pending = mailing("Conseil de classe", students)  # its worker was stopped meanwhile
        printed(teachers[0], pdf.attachment)
        school.test_cli_runner().invoke(args=["archive-reindex"])
        pending_id = pending.id
        sent_ids, pending_ids = message_ids(sent.id), message_ids(pending_id)
        states = dict(
            db.session.execute(select(OutboundEmail.message_id, OutboundEmail.state)).all()
        )
        db.engine.dispose()
    assert len(smtp_server.received) == 3
    assert set(states.values()) == {EmailState.SENT, EmailState.QUEUED}

    result = copy(school, target)

    assert result.exit_code == 0, result.output
    assert f"Copie vérifiée : {len(db.metadata.tables)} tables" in result.output
    report = [line.split() for line in result.output.splitlines() if line.endswith(("oui", "NON"))]
    assert len(report) == len(db.metadata.tables) and {row[-1] for row in report} == {"oui"}
    source = school.config["SQLALCHEMY_DATABASE_URI"]
    assert checksums_of(target) == checksums_of(source)
    copied, original = tables_of(target), tables_of(source)
    assert copied["alembic_version"] == original["alembic_version"] != []
    for name in (
        "person",
        "outbound_email",
        "email_recipient",
        "attachment",
        "mailing_attachment",
        "archive_word",
        "letter_template",
        "document_job",
        "document_job_item",
        "account_member",
    ):
        assert len(copied[name]) == len(original[name]) > 0

    # A lease long enough that a busy machine's slow send is never taken again by the sweeps below.
    delivery = {**WORKER_SETTINGS, "DELIVERY_LEASE_SECONDS": 120}
    moved = create_app(
        {
            **delivery,
            "TESTING": True,
            "INSTANCE_PATH": school.instance_path,
            "SQLALCHEMY_DATABASE_URI": target,
            "SECRET_KEY": "test-secret-key",
            "DEMO": False,
        }
    )
    settings = {**delivery, "SQLALCHEMY_DATABASE_URI": target}
    worker = Worker(launcher, moved.instance_path, settings).start()
    try:
        worker.wait_ready()
        with moved.app_context():
            assert states_of_emails() == states
            deadline = time.monotonic() + 40
            while len(smtp_server.received) < 7 and time.monotonic() < deadline:
                db.session.rollback()
                sweep()  # as the worker's periodic sweeper does: the old queue did not move
                time.sleep(0.2)
            wait_until(
                lambda: set(states_of_emails(pending_id).values()) == {EmailState.SENT},
                message="the pending mailing was not sent from the copy",
            )
            # Later sweeps find nothing more to send: what was sent stays sent, once.
            for _ in range(3):
                assert sweep() == 0
                time.sleep(0.2)
            received = collections.Counter(r.message["Message-ID"] for r in smtp_server.received)
            assert set(received) == sent_ids | pending_ids
            assert set(received.values()) == {1}

            # The new installation goes on numbering where the old one stopped.
            after = mailing("Sortie au musée", [db.session.get(Person, first_student)])
            assert after.id == pending_id + 1
            wait_until(lambda: len(smtp_server.received) == 8, message="the new e-mail was lost")
            db.engine.dispose()
    finally:
        worker.stop()


@backend.needs_postgres
def test_a_mailing_queued_during_the_copy_is_left_wholly_out_of_it(
    installation, target, smtp_server
):
    school = installation(demo=True)
    with school.app_context():
        server_settings().transport.port = smtp_server.port  # the demo mailbox: this test's
        db.session.commit()
        students = db.session.scalars(
            select(Person).where(Person.kind == "student", Person.email_status == "valid").limit(5)
        ).all()
        first = mailing("Conseil de classe", students).id
        queued_meanwhile = []

        def queue_one_when_the_mailings_are_copied(table: str, rows: int) -> None:
            if table == "mailing":
                queued_meanwhile.append(mailing("Sortie au musée", students).id)
                db.session.commit()

        done = copy_database.copy_database(
            db.engine, target, progress=queue_one_when_the_mailings_are_copied
        )
        assert queued_meanwhile and all(check.ok for check in done.checks)
        db.engine.dispose()

    copied, original = tables_of(target), tables_of(school.config["SQLALCHEMY_DATABASE_URI"])
    assert len(original["mailing"]) == 2 and len(original["outbound_email"]) == 10
    assert [row[0] for row in copied["mailing"]] == [first]
    assert len(copied["outbound_email"]) == len(copied["email_recipient"]) == 5


@backend.needs_postgres
@pytest.mark.parametrize("filled", ["another application's table", "a view", "an earlier copy"])
def test_a_target_that_is_not_empty_is_refused_and_left_as_it_was(installation, target, filled):
    school = installation()
    if filled == "an earlier copy":
        assert copy(school, target).exit_code == 0
        with school.app_context():
            create_user("prof", "Julien Petit", "correct horse battery", "teacher")
            db.session.commit()
            db.engine.dispose()
    else:
        engine = create_engine(target, poolclass=NullPool)
        with engine.begin() as connection:
            if filled == "a view":
                connection.execute(text("CREATE VIEW notes AS SELECT 1 AS id"))
            else:
                connection.execute(text("CREATE TABLE notes (id integer, words text)"))
                connection.execute(text("INSERT INTO notes VALUES (1, 'conseil de classe')"))
        engine.dispose()
    before = tables_of(target)

    result = copy(school, target)

    assert result.exit_code == copy_database.EXIT_NOT_EMPTY == 3
    assert "La base cible n'est pas vide" in result.output
    assert ("notes" if filled != "an earlier copy" else "user") in result.output
    assert tables_of(target) == before


@backend.needs_postgres
def test_a_target_that_changes_rows_as_they_are_written_is_caught_and_keeps_nothing(
    installation, target
):
    school = installation()
    migrated = app_of(Path(school.instance_path), database_url=target)
    with migrated.app_context():  # an admin ran flask db upgrade there: empty tables are fine
        assert migrated.test_cli_runner().invoke(args=["db", "upgrade"]).exit_code == 0
        db.engine.dispose()
    engine = create_engine(target, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN NEW.display_name := upper(NEW.display_name); RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                'CREATE TRIGGER shout BEFORE INSERT ON "user" FOR EACH ROW EXECUTE FUNCTION shout()'
            )
        )
    engine.dispose()
    before = tables_of(target)

    result = copy(school, target)

    assert result.exit_code == copy_database.EXIT_DIFFERENT == 1, result.output
    assert "Les deux bases diffèrent" in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.endswith("NON")}
    assert list(lines) == ["user"] and "≠" in lines["user"]
    assert tables_of(target) == before
    assert before["user"] == []


@backend.needs_postgres
def test_a_row_postgresql_refuses_stops_the_copy_and_the_target_keeps_nothing(installation, target):
    school = installation()
    with school.app_context():
        db.session.execute(
            text("UPDATE user SET display_name = :long WHERE login = 'admin'"), {"long": "A" * 500}
        )
        db.session.commit()  # SQLite keeps what PostgreSQL's VARCHAR(200) refuses
        db.engine.dispose()

    result = copy(school, target)

    assert result.exit_code == 1
    assert "La copie de la table « user » a échoué" in result.output
    assert "la base cible n'a rien gardé" in result.output
    assert tables_of(target) == {}  # not even the schema: one transaction


@backend.needs_postgres
def test_a_schema_the_server_cannot_create_stops_the_copy_with_its_words(installation, target):
    school = installation()
    engine = create_engine(target, poolclass=NullPool)
    with engine.begin() as connection:  # not a table: the emptiness check lets it through
        connection.execute(text("CREATE TYPE attachment AS (sha256 text)"))
    engine.dispose()

    result = copy(school, target)

    assert result.exit_code == 1
    assert "La création du schéma dans la base cible a échoué" in result.output
    assert 'relation "attachment" already exists' in result.output
    assert "Traceback" not in result.output
    assert tables_of(target) == {}


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{tmp}/copie.sqlite3",
        "mysql+pymysql://root@127.0.0.1/hpmail",
        "postgresql+psycopg2://hpmail@127.0.0.1/hpmail",
        "postgresql+psycopg://hpmail@127.0.0.1:5432",
        "pas une adresse",
        "",
    ],
)
def test_a_target_that_is_not_a_postgresql_database_is_refused(installation, tmp_path, url):
    school = installation()
    result = copy(school, url.format(tmp=tmp_path))
    assert result.exit_code == copy_database.EXIT_REFUSED == 2, result.output
    assert "PostgreSQL" in result.output or "n'est pas l'adresse d'une base" in result.output
    assert not (tmp_path / "copie.sqlite3").exists()


def test_an_unreachable_target_is_refused_without_showing_its_password(installation):
    school = installation()
    result = copy(school, "postgresql+psycopg://hpmail:s3cret-mot@127.0.0.1:1/hpmail")
    assert result.exit_code == 2, result.output
    assert "La base cible postgresql+psycopg://hpmail:***@127.0.0.1:1/hpmail est injoignable" in (
        result.output
    )
    assert "s3cret" not in result.output


def test_a_source_not_migrated_to_this_version_is_refused(installation):
    school = installation()
    with school.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = 'a0e1c0ffee15'"))
        db.session.commit()
        db.engine.dispose()
    result = copy(school, "postgresql+psycopg://hpmail@127.0.0.1:1/hpmail")
    assert result.exit_code == 2
    assert "La base source n'est pas à jour (révision a0e1c0ffee15" in result.output
    assert "flask --app app db upgrade" in result.output


def test_an_installation_already_on_postgresql_is_refused(tmp_path):
    app = app_of(
        tmp_path / "instance", database_url="postgresql+psycopg://hpmail@127.0.0.1:1/hpmail"
    )
    result = copy(app, "postgresql+psycopg://hpmail@127.0.0.1:1/autre")
    assert result.exit_code == 2
    assert "copie une installation SQLite" in result.output and "pg_dump" in result.output


@backend.needs_postgres
def test_rows_keyed_by_text_are_compared_in_the_same_order_on_a_french_server(installation, target):
    school = installation()
    ids = ["b-serveur:12:x", "A-serveur:7:y", "école:3:z", "Zeta:9:w"]
    with school.app_context():
        db.session.add_all(WorkerProcess(id=i, host=i.split(":")[0], pid=1) for i in ids)
        db.session.commit()
        db.engine.dispose()

    result = copy(school, target)

    assert result.exit_code == 0, result.output
    engine = create_engine(target, poolclass=NullPool)
    with engine.connect() as connection:
        french = list(connection.scalars(text("SELECT id FROM worker_process ORDER BY id")))
    engine.dispose()
    assert french != sorted(ids)  # the server's own order is not SQLite's: the sums still agree
    assert sorted(french) == sorted(ids)
