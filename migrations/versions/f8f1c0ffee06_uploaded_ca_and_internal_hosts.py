"""uploaded CA certificates instead of server paths; users' servers kept off internal addresses

Revision ID: f8f1c0ffee06
Revises: 7f51dc3c2496
Create Date: 2026-12-02 00:50:00.000000

"""

import ssl

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f8f1c0ffee06"
down_revision = "7f51dc3c2496"
branch_labels = None
depends_on = None

USER_TIMEOUT_CAP = 60


def _pem_of(path: str) -> str | None:
    """The certificates of a CA file named before this revision, if it still reads as PEM."""
    try:
        with open(path, encoding="ascii") as source:
            text = source.read()
        ssl.create_default_context(cadata=text)
    except (OSError, UnicodeError, ssl.SSLError, ValueError):
        return None
    return text


def _drop_column(table: str, column: str) -> None:
    # SQLite (3.35+) drops a column in place: a batch rebuild would drop the table, which the
    # foreign keys pointing at it (enforced by hpmail) refuse.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def upgrade():
    op.add_column(
        "server_settings",
        sa.Column("allow_internal_hosts", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("transport", sa.Column("ca_certificates", sa.Text(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, ca_file FROM transport WHERE ca_file IS NOT NULL AND ca_file != ''")
    ).all()
    for transport_id, path in rows:
        connection.execute(
            sa.text("UPDATE transport SET ca_certificates = :pem WHERE id = :id"),
            {"pem": _pem_of(path), "id": transport_id},
        )
    _drop_column("transport", "ca_file")

    # Users' own servers: the test-send no longer waits longer than this for them.
    connection.execute(
        sa.text(
            "UPDATE transport SET timeout_seconds = :cap WHERE timeout_seconds > :cap "
            "AND id IN (SELECT transport_id FROM user_transport WHERE transport_id IS NOT NULL)"
        ),
        {"cap": USER_TIMEOUT_CAP},
    )


def downgrade():
    op.add_column("transport", sa.Column("ca_file", sa.String(length=500), nullable=True))
    _drop_column("transport", "ca_certificates")
    _drop_column("server_settings", "allow_internal_hosts")
