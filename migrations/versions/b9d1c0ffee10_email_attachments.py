"""files of one e-mail (a recipient's own document), and when each stored file was last stored

Revision ID: b9d1c0ffee10
Revises: a8a1c0ffee01
Create Date: 2026-12-02 03:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b9d1c0ffee10"
down_revision = "a8a1c0ffee01"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "email_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("attachment_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("content_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachment.id"],
            name=op.f("fk_email_attachment_attachment_id_attachment"),
        ),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["outbound_email.id"],
            name=op.f("fk_email_attachment_email_id_outbound_email"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_attachment")),
    )
    with op.batch_alter_table("email_attachment") as batch:
        batch.create_index(batch.f("ix_email_attachment_attachment_id"), ["attachment_id"])
        batch.create_index(batch.f("ix_email_attachment_email_id"), ["email_id"])

    # A plain ADD COLUMN: rebuilding ``attachment`` (batch mode) would drop a table that other
    # rows point at, which SQLite refuses while foreign keys are enforced.
    op.add_column("attachment", sa.Column("stored_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE attachment SET stored_at = created_at")
    op.create_index(op.f("ix_attachment_stored_at"), "attachment", ["stored_at"])


def downgrade():
    op.drop_index(op.f("ix_attachment_stored_at"), table_name="attachment")
    op.drop_column("attachment", "stored_at")  # SQLite 3.35+ drops a column in place
    with op.batch_alter_table("email_attachment") as batch:
        batch.drop_index(batch.f("ix_email_attachment_email_id"))
        batch.drop_index(batch.f("ix_email_attachment_attachment_id"))
    op.drop_table("email_attachment")
