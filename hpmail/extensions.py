"""Flask extensions, made once here and bound to the app in ``create_app``."""

from functools import cached_property

from flask import Flask
from flask_babel import Babel
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints so that Alembic can alter SQLite tables in batch mode.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Migrations:
    """Flask-Migrate's binding (``app.extensions["migrate"]``), which imports Alembic when used.

    Flask-Migrate imports Alembic (~100 ms) as soon as it is imported, yet neither a page nor a
    worker migrates: only ``flask db …``, ``flask setup``, ``copy-database`` and ``doctor`` do.
    This holds what Flask-Migrate, its commands and ``migrations/env.py`` read there (``db``,
    ``directory``, ``configure_args``, ``migrate``), and makes its ``Migrate`` on first use. The
    ``flask db`` commands are added by ``hpmail.cli``, which imports them when one runs.
    """

    def __init__(self, database: SQLAlchemy, directory: str) -> None:
        self.db = database
        self.directory = directory
        # Batch mode lets Alembic alter SQLite tables (see NAMING_CONVENTION); types are compared.
        self.configure_args = {"render_as_batch": True, "compare_type": True}

    def init_app(self, app: Flask) -> None:
        app.extensions["migrate"] = self

    @property
    def metadata(self) -> MetaData:
        return self.db.metadata

    @cached_property
    def migrate(self):
        from flask_migrate import Migrate

        return Migrate(db=self.db, directory=self.directory, **self.configure_args)


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
