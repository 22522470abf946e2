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

    with op.batch_alter_table("attachment") as batch:
        batch.add_column(sa.Column("stored_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE attachment SET stored_at = created_at")
    with op.batch_alter_table("attachment") as batch:
        batch.alter_column("stored_at", existing_type=sa.DateTime(), nullable=False)
        batch.create_index(batch.f("ix_attachment_stored_at"), ["stored_at"])


def downgrade():
    with op.batch_alter_table("attachment") as batch:
        batch.drop_index(batch.f("ix_attachment_stored_at"))
        batch.drop_column("stored_at")
    with op.batch_alter_table("email_attachment") as batch:
        batch.drop_index(batch.f("ix_email_attachment_email_id"))
        batch.drop_index(batch.f("ix_email_attachment_attachment_id"))
    op.drop_table("email_attachment")
