"""letters: letter templates (lettres types)

Revision ID: f9d1c0ffee14
Revises: e9d1c0ffee13
Create Date: 2026-12-02 04:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "f9d1c0ffee14"
down_revision = "e9d1c0ffee13"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "letter_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column(
            "created_by_id",
            sa.Integer(),
            sa.ForeignKey("user.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column(
            "updated_by_id",
            sa.Integer(),
            sa.ForeignKey("user.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.CheckConstraint(
            "category IN ('students', 'teachers', 'staff', 'absences', 'internships')",
            name="category",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("letter_template") as batch:
        batch.create_index("ix_letter_template_category_title", ["category", "title"])
        batch.create_index("ix_letter_template_created_by_id", ["created_by_id"])
        batch.create_index("ix_letter_template_updated_by_id", ["updated_by_id"])


def downgrade():
    op.drop_table("letter_template")
