"""each use of a stored file (a mailing's, a template's) keeps its own content type

Revision ID: a8a1c0ffee01
Revises: 7f51dc3c2496
Create Date: 2026-12-02 00:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a8a1c0ffee01"
down_revision = "e8e1c0ffee05"
branch_labels = None
depends_on = None

TABLES = ("mailing_attachment", "compose_template_attachment")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("content_type", sa.String(length=200), nullable=True))
        op.execute(
            f"UPDATE {table} SET content_type = (SELECT attachment.content_type FROM attachment "
            f"WHERE attachment.id = {table}.attachment_id)"
        )
        op.execute(
            f"UPDATE {table} SET content_type = 'application/octet-stream' "
            "WHERE content_type IS NULL"
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("content_type", existing_type=sa.String(length=200), nullable=False)


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("content_type")
