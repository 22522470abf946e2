"""The Alembic migrations build exactly the schema the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import func, select, text

from hpmail.auth.models import User
from hpmail.core.database import schema_objects_of
from hpmail.directory.models import Person
from hpmail.extensions import db
from tests.fixtures import backend
from tests.fixtures.migrations import app_on_an_empty_database


@pytest.fixture
def empty_app(tmp_path):
    with app_on_an_empty_database(tmp_path) as app:
        yield app


def schema_differences() -> list:
    """Return what Alembic finds different between the app's database and the models."""
    with db.engine.connect() as connection:
        opts = {"compare_type": True, "include_object": schema_objects_of(connection.dialect.name)}
        context = MigrationContext.configure(connection, opts=opts)
        return compare_metadata(context, db.metadata)


def test_migrations_build_the_schema_of_the_models(empty_app):
    upgrade()
    differences = schema_differences()
    assert differences == [], f"models and migrations differ: {differences}"


@backend.needs_postgres
def test_migrations_build_the_schema_of_the_models_on_postgresql(tmp_path):
    """PostgreSQL's schema has more than SQLite's (the trigram index and its extension)."""
    name = backend.new_database_name("migrations")
    url = backend.create_database(name)
    try:
        with app_on_an_empty_database(tmp_path, url):
            upgrade()
            differences = schema_differences()
            indexes = {i["name"] for i in db.inspect(db.engine).get_indexes("person")}
    finally:
        backend.drop_database(name)
    assert differences == [], f"models and migrations differ: {differences}"
    assert "ix_person_search_trgm" in indexes


def test_setup_command_migrates_and_loads_nothing_without_demo(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["setup"])
    assert result.exit_code == 0, result.output
    assert "user" in db.inspect(db.engine).get_table_names()


def test_setup_in_demo_mode_loads_the_demo_school_once(empty_app):
    empty_app.config["DEMO"] = True
    runner = empty_app.test_cli_runner()
    first = runner.invoke(args=["setup"])
    assert first.exit_code == 0, first.output
    assert "École de démonstration chargée." in first.output
    assert "secretariat" in first.output and "demo-hpmail" in first.output
    people = db.session.scalar(select(func.count()).select_from(Person))
    assert people > 1000

    again = runner.invoke(args=["setup"])
    assert again.exit_code == 0, again.output
    assert "chargée" not in again.output
    assert db.session.scalar(select(func.count()).select_from(Person)) == people
    assert db.session.scalar(select(func.count()).select_from(User)) == 3


def test_a_ca_file_named_before_is_kept_by_its_content_and_users_timeouts_are_capped(
    empty_app, tmp_path, test_ca
):
    upgrade(revision="7f51dc3c2496")
    missing = str(tmp_path / "gone.pem")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO transport (id, host, port, security, username, timeout_seconds,"
                " ca_file) VALUES (1, 'a', 587, 'starttls', '', 600, :ca),"
                " (2, 'b', 587, 'starttls', '', 600, :missing)"
            ),
            {"ca": test_ca.ca_file, "missing": missing},
        )
        connection.execute(
            text(
                "INSERT INTO user (id, login, display_name, role, active, password_hash,"
                " session_token, created_at)"
                " VALUES (1, 'prof', 'Prof', 'teacher', 1, 'x', 't', '2026-01-01')"
            )
        )
        connection.execute(text("INSERT INTO user_transport (user_id, transport_id) VALUES (1, 2)"))
    upgrade(revision="f8f1c0ffee06")
    with db.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, ca_certificates, timeout_seconds FROM transport ORDER BY id")
        ).all()
    assert rows == [(1, test_ca.cert_pem.decode(), 600), (2, None, 60)]


def test_files_already_in_use_are_kept_and_get_their_stored_time_when_upgraded(empty_app):
    upgrade(revision="a8a1c0ffee01")
    with db.engine.begin() as connection:
        for statement in (
            "INSERT INTO attachment (id, sha256, size, content_type, created_at)"
            " VALUES (1, 'ab', 3, 'application/pdf', '2026-01-01 00:00:00')",
            "INSERT INTO transport (id, host, port, security, username, timeout_seconds)"
            " VALUES (1, 'smtp', 25, 'none', '', 30)",
            "INSERT INTO mailing (id, kind, subject, text_body, sender_name, sender_address,"
            " hide_recipients, created_at, transport_id)"
            " VALUES (1, 'email', 'Sujet', 'Bonjour', '', 'a@lycee.fr', 0, '2026-01-01', 1)",
            "INSERT INTO mailing_attachment (mailing_id, attachment_id, filename, content_type)"
            " VALUES (1, 1, 'circulaire.pdf', 'application/pdf')",
        ):
            connection.execute(text(statement))
    upgrade()
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT id, stored_at FROM attachment")).all() == [
            (1, "2026-01-01 00:00:00")
        ]
        assert connection.execute(text("SELECT count(*) FROM mailing_attachment")).scalar() == 1


def test_a_rebuilt_person_table_keeps_the_rows_that_point_at_it(empty_app):
    """Changing the person's CHECK copies the table on SQLite: no cascade may run meanwhile."""
    upgrade(revision="f1a1c0ffee20")
    with db.engine.begin() as connection:
        for statement in (
            "INSERT INTO cohort (id, name) VALUES (1, '2nde A')",
            "INSERT INTO \"group\" (id, cohort_id, name) VALUES (1, 1, 'G1')",
            "INSERT INTO person (id, kind, last_name, first_name, email, email_status, cohort_id,"
            " search_text, last_name_key, first_name_key)"
            " VALUES (1, 'student', 'Durand', 'Léa', 'lea@lycee.fr', 'valid', 1, '', '', '')",
            "INSERT INTO person_group (person_id, group_id) VALUES (1, 1)",
        ):
            connection.execute(text(statement))
    upgrade()
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT person_id, group_id FROM person_group")).all() == [
            (1, 1)
        ]
        assert connection.execute(text("SELECT email_status FROM person")).scalar() == "valid"
        connection.execute(text("UPDATE person SET email_status = 'refused'"))
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
