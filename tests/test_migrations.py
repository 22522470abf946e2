"""The Alembic migrations build exactly the schema the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import func, select

from hpmail import create_app
from hpmail.auth.models import User
from hpmail.directory.models import Person
from hpmail.extensions import db


@pytest.fixture
def empty_app(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DEMO": False,
            "QUEUE_URL": "memory",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrated.sqlite3'}",
        }
    )
    with app.app_context():
        yield app
        db.engine.dispose()


def test_migrations_build_the_schema_of_the_models(empty_app):
    upgrade()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], f"models and migrations differ: {differences}"


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
