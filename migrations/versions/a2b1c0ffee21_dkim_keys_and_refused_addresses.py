"""outbox: DKIM keys of the allowed domains; directory: addresses refused by the server

Revision ID: a2b1c0ffee21
Revises: f1a1c0ffee20
Create Date: 2026-12-02 10:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a2b1c0ffee21"
down_revision = "f1a1c0ffee20"
branch_labels = None
depends_on = None

STATUS_BEFORE = "email_status IN ('missing', 'valid', 'invalid')"
STATUS_AFTER = "email_status IN ('missing', 'valid', 'invalid', 'refused')"


def upgrade():
    op.create_table(
        "dkim_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("algorithm", sa.String(length=10), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.Column("checked_at", sa.DateTime(), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.CheckConstraint("algorithm IN ('rsa', 'ed25519')", name=op.f("ck_dkim_key_algorithm")),
        sa.CheckConstraint("state IN ('new', 'active', 'retired')", name=op.f("ck_dkim_key_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dkim_key")),
        sa.UniqueConstraint("domain", "selector", name="uq_dkim_key_domain_selector"),
    )
    op.create_index(op.f("ix_dkim_key_domain"), "dkim_key", ["domain"], unique=False)
    with op.batch_alter_table("person") as batch_op:
        batch_op.add_column(sa.Column("email_refused_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("email_refused_reply", sa.Text(), nullable=True))
        batch_op.drop_constraint("email_status", type_="check")
        batch_op.create_check_constraint("email_status", STATUS_AFTER)


def downgrade():
    op.execute("UPDATE person SET email_status = 'valid' WHERE email_status = 'refused'")
    with op.batch_alter_table("person") as batch_op:
        batch_op.drop_constraint("email_status", type_="check")
        batch_op.create_check_constraint("email_status", STATUS_BEFORE)
        batch_op.drop_column("email_refused_reply")
        batch_op.drop_column("email_refused_at")
    op.drop_index(op.f("ix_dkim_key_domain"), table_name="dkim_key")
    op.drop_table("dkim_key")
