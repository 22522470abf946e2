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


def upgrade():
    with op.batch_alter_table("server_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "allow_internal_hosts", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("server_settings", schema=None) as batch_op:
        batch_op.alter_column("allow_internal_hosts", server_default=None)

    with op.batch_alter_table("transport", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ca_certificates", sa.Text(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, ca_file FROM transport WHERE ca_file IS NOT NULL AND ca_file != ''")
    ).all()
    for transport_id, path in rows:
        connection.execute(
            sa.text("UPDATE transport SET ca_certificates = :pem WHERE id = :id"),
            {"pem": _pem_of(path), "id": transport_id},
        )
    with op.batch_alter_table("transport", schema=None) as batch_op:
        batch_op.drop_column("ca_file")

    # Users' own servers: the test-send no longer waits longer than this for them.
    connection.execute(
        sa.text(
            "UPDATE transport SET timeout_seconds = :cap WHERE timeout_seconds > :cap "
            "AND id IN (SELECT transport_id FROM user_transport WHERE transport_id IS NOT NULL)"
        ),
        {"cap": USER_TIMEOUT_CAP},
    )


def downgrade():
    with op.batch_alter_table("transport", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ca_file", sa.String(length=500), nullable=True))
        batch_op.drop_column("ca_certificates")
    with op.batch_alter_table("server_settings", schema=None) as batch_op:
        batch_op.drop_column("allow_internal_hosts")
