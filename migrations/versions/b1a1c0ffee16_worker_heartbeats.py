"""outbox: worker heartbeats and the worker holding each claimed e-mail

Revision ID: b1a1c0ffee16
Revises: a0e1c0ffee15
Create Date: 2026-12-02 06:50:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b1a1c0ffee16"
down_revision = "a0e1c0ffee15"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "worker_process",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("stopping", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_process")),
    )
    with op.batch_alter_table("worker_process") as batch_op:
        batch_op.create_index(batch_op.f("ix_worker_process_seen_at"), ["seen_at"], unique=False)
    with op.batch_alter_table("outbound_email") as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=120), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbound_email_claimed_by"), ["claimed_by"])


def downgrade():
    with op.batch_alter_table("outbound_email") as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_email_claimed_by"))
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("worker_process") as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_process_seen_at"))
    op.drop_table("worker_process")
