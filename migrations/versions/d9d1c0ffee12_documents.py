"""documents: the school's letterhead, print jobs and their items

Revision ID: d9d1c0ffee12
Revises: b9d1c0ffee10
Create Date: 2026-12-02 03:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d9d1c0ffee12"
down_revision = "b9d1c0ffee10"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "letterhead",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("town", sa.String(length=120), nullable=False),
        sa.Column("logo_id", sa.Integer(), sa.ForeignKey("attachment.id"), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "document_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("request_token", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("output", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
        sa.Column("period_end", sa.DateTime(), nullable=False),
        sa.Column("layout", sa.Text(), nullable=False),
        sa.Column("attach_pdf", sa.Boolean(), nullable=False),
        sa.Column("inline_png", sa.Boolean(), nullable=False),
        sa.Column("print_copy", sa.String(length=15), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("mail", sa.Text(), nullable=True),
        sa.Column(
            "mailing_id",
            sa.Integer(),
            sa.ForeignKey("mailing.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("output_file_id", sa.Integer(), sa.ForeignKey("attachment.id"), nullable=True),
        sa.Column("output_filename", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('waiting', 'rendering', 'done', 'failed', 'cancelled')", name="state"
        ),
        sa.CheckConstraint("kind IN ('timetable', 'summary')", name="kind"),
        sa.CheckConstraint("output IN ('printer', 'pdf', 'email')", name="output"),
        sa.CheckConstraint("print_copy IN ('none', 'all', 'without_email')", name="print_copy"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_token"),
    )
    op.create_index("ix_document_job_user_id", "document_job", ["user_id"])
    op.create_index("ix_document_job_state", "document_job", ["state"])
    op.create_index("ix_document_job_mailing_id", "document_job", ["mailing_id"])
    op.create_index("ix_document_job_created_at", "document_job", ["created_at"])
    op.create_index("ix_document_job_state_lease", "document_job", ["state", "lease_until"])
    op.create_table(
        "document_job_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "job_id",
            sa.Integer(),
            sa.ForeignKey("document_job.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("owner_kind", sa.String(length=10), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("pdf_id", sa.Integer(), sa.ForeignKey("attachment.id"), nullable=True),
        sa.Column("png_id", sa.Integer(), sa.ForeignKey("attachment.id"), nullable=True),
        sa.Column(
            "email_id",
            sa.Integer(),
            sa.ForeignKey("outbound_email.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.CheckConstraint("state IN ('pending', 'ready', 'failed')", name="state"),
        sa.CheckConstraint("owner_kind IN ('person', 'cohort', 'group')", name="owner_kind"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_document_job_item_job_state", "document_job_item", ["job_id", "state"])
    op.create_index("ix_document_job_item_email_id", "document_job_item", ["email_id"])


def downgrade():
    op.drop_table("document_job_item")
    op.drop_table("document_job")
    op.drop_table("letterhead")
