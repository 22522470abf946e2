"""Commands of ``flask --app app``: db (Flask-Migrate's), setup, create-admin, load-demo, doctor,
copy-database (features add their own).

Every process builds the app, and with it these commands; what only a command needs (Alembic,
the demo school, the checks, the copy) is imported when that command runs, so that a page or
worker process does not pay for it at start.
"""

from __future__ import annotations

from functools import cached_property

import click
from flask import Flask, current_app
from sqlalchemy import select

from hpmail.auth.models import Role, User
from hpmail.auth.service import PASSWORD_MIN_LENGTH, create_user
from hpmail.extensions import db


class MigrationCommands(click.Group):
    """``flask db …``: Flask-Migrate's group of commands, imported when it is run.

    Listed under its own help; parsing and running are its own (``make_context`` hands them the
    group Flask-Migrate made), so that ``flask db upgrade`` behaves as if it were added itself.
    """

    def __init__(self) -> None:
        super().__init__("db", help="Perform database migrations.")

    @cached_property
    def commands_of_flask_migrate(self) -> click.Group:
        from flask_migrate.cli import db as group

        return group

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        return self.commands_of_flask_migrate.make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self.commands_of_flask_migrate.list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands_of_flask_migrate.get_command(ctx, name)


def init_app(app: Flask) -> None:
    app.cli.add_command(MigrationCommands())
    app.cli.add_command(setup)
    app.cli.add_command(create_admin)
    app.cli.add_command(load_demo)
    app.cli.add_command(doctor_command)
    app.cli.add_command(copy_database_command)


@click.command("setup")
def setup() -> None:
    """Apply the migrations, then load the demo school the first time (unless HPMAIL_DEMO=0)."""
    from flask_migrate import upgrade

    from hpmail import demo

    upgrade()
    if not current_app.config["DEMO"]:
        return
    if db.session.scalar(select(User.id).limit(1)) is None:
        demo.load(scale=1)
        db.session.commit()
        click.echo("École de démonstration chargée.")
    click.echo(demo.sign_in_help())


@click.command("create-admin")
@click.option("--login", prompt=True)
@click.option("--name", "display_name", prompt="Nom affiché")
@click.option("--email", default=None)
@click.password_option()
def create_admin(login: str, display_name: str, email: str | None, password: str) -> None:
    """Create an administrator (the first sign-in of a real installation)."""
    if db.session.scalar(select(User).where(User.login == login.strip().lower())):
        raise click.ClickException(f"L'identifiant « {login} » existe déjà.")
    if len(password) < PASSWORD_MIN_LENGTH:
        raise click.ClickException(
            f"Le mot de passe doit compter au moins {PASSWORD_MIN_LENGTH} caractères."
        )
    create_user(login, display_name, password, Role.ADMIN, email=email)
    db.session.commit()
    click.echo(f"Administrateur « {login} » créé.")


@click.command("load-demo")
@click.option("--scale", type=int, default=1, help="1: ~1,500 students; 13: ~20,000 students.")
def load_demo(scale: int) -> None:
    """Load the demo school into an empty database (for trying hpmail, or for benchmarks)."""
    from hpmail import demo

    if db.session.scalar(select(User.id).limit(1)) is not None:
        raise click.ClickException(
            "La base n'est pas vide : l'école de démonstration n'est pas chargée."
        )
    demo.load(scale=scale)
    db.session.commit()
    click.echo(demo.sign_in_help())


@click.command("doctor")
def doctor_command() -> None:
    """Check this deployment (database, queue, workers, SMTP, keys, rights, outbox).

    One line a check: OK, ATTENTION or ÉCHEC. Exit code 0 when all are OK, 1 on a warning, 2 on a
    failure, for monitoring.
    """
    from hpmail import doctor

    findings = doctor.run_checks()
    for finding in findings:
        click.echo(finding.line())
    raise SystemExit(doctor.worst(findings))


@click.command("copy-database")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="The empty PostgreSQL database: postgresql+psycopg://user@host/name "
    "(the password from ~/.pgpass or PGPASSWORD rather than the command line).",
)
def copy_database_command(target: str) -> None:
    """Copy this installation's SQLite database into an empty PostgreSQL database, verified.

    Exit codes: 0 copied and verified, 1 failed or different (the target kept nothing),
    2 refused (target or source), 3 the target is not empty.
    """
    from hpmail import copy_database

    try:
        url = copy_database.postgresql_url(target)
        click.echo(f"Copie de la base vers {copy_database.shown(url)}…")
        copy = copy_database.copy_database(
            db.engine,
            target,
            progress=lambda table, rows: click.echo(f"  {table} : {_rows(rows)}"),
        )
    except copy_database.CopyFailed as failure:
        for line in copy_database.report_lines(failure.checks):
            click.echo(line)
        _stop(str(failure), failure.exit_code)
    except copy_database.CopyRefused as refusal:
        _stop(str(refusal), refusal.exit_code)
    for line in copy_database.report_lines(copy.checks):
        click.echo(line)
    click.echo(
        f"Copie vérifiée : {len(copy.checks)} tables, {_rows(copy.rows)}, schéma à la révision "
        f"{copy.revision}. Donnez cette base aux processus web et worker (DATABASE_URL)."
    )


def _rows(count: int) -> str:
    return f"{count} ligne" if count < 2 else f"{count} lignes"


def _stop(message: str, exit_code: int) -> None:
    error = click.ClickException(message)
    error.exit_code = exit_code
    raise error
