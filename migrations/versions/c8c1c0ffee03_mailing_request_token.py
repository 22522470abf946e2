"""mailing request token: a replayed composer form never queues twice

Revision ID: c8c1c0ffee03
Revises: 7f51dc3c2496
Create Date: 2026-12-02 00:50:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c8c1c0ffee03"
down_revision = "f8f1c0ffee06"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("mailing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_token", sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_mailing_request_token"), ["request_token"])


def downgrade():
    with op.batch_alter_table("mailing", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_mailing_request_token"), type_="unique")
        batch_op.drop_column("request_token")
