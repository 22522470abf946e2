"""hpmail: the e-mail module of a school's timetabling intranet."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from hpmail import config as configuration
from hpmail import queue
from hpmail.extensions import Migrations, babel, csrf, db, login_manager

BLUEPRINTS = (
    "hpmail.auth.views",
    "hpmail.directory.views",
    "hpmail.delivery.views",
    "hpmail.accounts.views",
    "hpmail.compose.views",
    "hpmail.documents.views",
    "hpmail.letters.views",
    "hpmail.archive.views",
)

TRANSLATION_DOMAINS = (
    "web",
    "auth",
    "directory",
    "delivery",
    "oauth",
    "accounts",
    "compose",
    "documents",
    "letters",
    "archive",
)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the web application (also used by the worker and the CLI)."""
    instance = Path((test_config or {}).get("INSTANCE_PATH") or configuration.instance_path())
    app = Flask(
        "hpmail",
        instance_path=str(instance),
        instance_relative_config=True,
        template_folder=str(configuration.PROJECT_ROOT / "templates"),
        static_folder=str(configuration.PROJECT_ROOT / "static"),
    )
    configure(app, test_config)
    configure_extensions(app)
    configure_blueprints(app)
    configure_sender_checks(app)
    configure_mailbox_listeners(app)
    configure_job_kinds(app)
    configure_cli(app)
    return app


def configure(app: Flask, test_config: dict | None) -> None:
    instance = Path(app.instance_path)
    configuration.private_folder(instance)
    app.config.from_object(configuration.Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(configuration.from_environment())
    if test_config:
        app.config.update(test_config)
    configuration.finish(app.config, instance)
    if app.config["PROXY_COUNT"]:
        proxies = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic, imported once logging is set up (when a command migrates: see Migrations), would
    # list at INFO each plugin it sets up.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets the worker write while pages read; the busy timeout waits out short locks."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        from flask import current_app

        try:
            timeout = current_app.config["SQLITE_BUSY_TIMEOUT_MS"]
        except RuntimeError:
            timeout = configuration.Defaults.SQLITE_BUSY_TIMEOUT_MS
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def select_locale() -> str:
    return request.accept_languages.best_match(("fr", "en"), default="fr") if request else "fr"


def configure_extensions(app: Flask) -> None:
    db.init_app(app)
    Migrations(db, str(configuration.PROJECT_ROOT / "migrations")).init_app(app)
    csrf.init_app(app)
    # One catalogue (gettext domain) per feature, so that each feature keeps its own French text.
    translations = str(Path(__file__).parent / "translations")
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_domain=";".join(TRANSLATION_DOMAINS),
        default_translation_directories=";".join([translations] * len(TRANSLATION_DOMAINS)),
    )
    login_manager.init_app(app)
    queue.init_app(app)
    from hpmail.core import web

    web.init_app(app)


def configure_blueprints(app: Flask) -> None:
    from importlib import import_module

    for name in BLUEPRINTS:
        module = import_module(name)
        app.register_blueprint(module.bp)
        if hasattr(module, "init_app"):
            module.init_app(app)


def configure_sender_checks(app: Flask) -> None:
    """Let the worker check, before each send, that the author may still send as the account."""
    from hpmail.accounts.service import sender_check
    from hpmail.outbox.api import register_sender_check

    register_sender_check(app, sender_check)


def configure_mailbox_listeners(app: Flask) -> None:
    """Let the worker mark in the directory the addresses whose mailbox a server says is unknown."""
    from hpmail.directory.refusals import mark_refused
    from hpmail.outbox.api import register_mailbox_listener

    register_mailbox_listener(app, mark_refused)


def configure_job_kinds(app: Flask) -> None:
    """Let print jobs draw and mail form letters (« Envoyer un courrier »), in pages and worker."""
    from hpmail.documents.kinds import register_job_kind
    from hpmail.documents.layout import DocumentKind
    from hpmail.letters.courrier import LETTER_JOBS

    register_job_kind(app, DocumentKind.LETTER, LETTER_JOBS)


def configure_cli(app: Flask) -> None:
    from hpmail import cli

    cli.init_app(app)
