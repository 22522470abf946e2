"""documents: print jobs of letters (Envoyer un courrier)

Revision ID: a0e1c0ffee15
Revises: f9d1c0ffee14
Create Date: 2026-12-02 04:50:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a0e1c0ffee15"
down_revision = "f9d1c0ffee14"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("document_job") as batch_op:
        batch_op.add_column(sa.Column("letter_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_document_job_letter_id_letter_template"),
            "letter_template",
            ["letter_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(batch_op.f("ix_document_job_letter_id"), ["letter_id"], unique=False)
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", "kind IN ('timetable', 'summary', 'letter')")
    with op.batch_alter_table("document_job_item") as batch_op:
        batch_op.add_column(sa.Column("records", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("body_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_document_job_item_body_id_attachment"), "attachment", ["body_id"], ["id"]
        )


def downgrade():
    with op.batch_alter_table("document_job_item") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_document_job_item_body_id_attachment"), type_="foreignkey"
        )
        batch_op.drop_column("body_id")
        batch_op.drop_column("records")
    op.execute("DELETE FROM document_job WHERE kind = 'letter'")
    with op.batch_alter_table("document_job") as batch_op:
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", "kind IN ('timetable', 'summary')")
        batch_op.drop_index(batch_op.f("ix_document_job_letter_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_document_job_letter_id_letter_template"), type_="foreignkey"
        )
        batch_op.drop_column("letter_id")
