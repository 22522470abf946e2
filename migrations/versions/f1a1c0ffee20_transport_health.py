"""outbox: a transport's health (failing since, last failure, next probe) and e-mails waiting for it

Revision ID: f1a1c0ffee20
Revises: d1a1c0ffee18
Create Date: 2026-12-02 07:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "f1a1c0ffee20"
down_revision = "d1a1c0ffee18"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("transport") as batch_op:
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_failure", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("next_probe_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("outbound_email") as batch_op:
        batch_op.add_column(
            sa.Column(
                "waits_for_transport", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade():
    with op.batch_alter_table("outbound_email") as batch_op:
        batch_op.drop_column("waits_for_transport")
    with op.batch_alter_table("transport") as batch_op:
        batch_op.drop_column("next_probe_at")
        batch_op.drop_column("last_failure")
        batch_op.drop_column("failing_since")
