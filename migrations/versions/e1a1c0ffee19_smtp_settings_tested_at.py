"""outbox: when the server's SMTP settings last passed the test-send (flask doctor reads it)

Revision ID: e1a1c0ffee19
Revises: b1a1c0ffee16
Create Date: 2026-12-02 07:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "e1a1c0ffee19"
down_revision = "b1a1c0ffee16"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("server_settings") as batch_op:
        batch_op.add_column(sa.Column("smtp_tested_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("server_settings") as batch_op:
        batch_op.drop_column("smtp_tested_at")
