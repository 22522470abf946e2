"""the directory's absences and internships, and selections of them

Revision ID: e9d1c0ffee13
Revises: d9d1c0ffee12
Create Date: 2026-12-02 03:49:42.223399

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e9d1c0ffee13"
down_revision = "d9d1c0ffee12"
branch_labels = None
depends_on = None

PEOPLE_KINDS = "kind IS NULL OR kind IN ('teacher', 'student', 'staff')"
SELECTION_KINDS = "kind IS NULL OR kind IN ('teacher', 'student', 'staff', 'absence', 'internship')"


def upgrade():
    op.create_table(
        "absence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("course_label", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("justified", sa.Boolean(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("start_time < end_time", name=op.f("ck_absence_absence_order")),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
            name=op.f("fk_absence_course_id_course"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_absence_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_absence")),
        sa.UniqueConstraint("external_id", name=op.f("uq_absence_external_id")),
    )
    with op.batch_alter_table("absence", schema=None) as batch_op:
        batch_op.create_index(
            "ix_absence_course_day", ["course_label", "day", "start_time", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_absence_course_id"), ["course_id"], unique=False)
        batch_op.create_index("ix_absence_day", ["day", "start_time", "id"], unique=False)
        batch_op.create_index(
            "ix_absence_justified_day", ["justified", "day", "start_time", "id"], unique=False
        )
        batch_op.create_index(
            "ix_absence_minutes_day", ["minutes", "day", "start_time", "id"], unique=False
        )
        batch_op.create_index(
            "ix_absence_person_day", ["person_id", "day", "start_time"], unique=False
        )

    op.create_table(
        "internship",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("company_key", sa.String(length=200), nullable=False),
        sa.Column("company_address", sa.String(length=500), nullable=False),
        sa.Column("tutor_name", sa.String(length=200), nullable=False),
        sa.Column("tutor_email", sa.String(length=254), nullable=True),
        sa.Column("tutor_email_status", sa.String(length=10), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "tutor_email_status IN ('missing', 'valid', 'invalid')",
            name=op.f("ck_internship_tutor_email_status"),
        ),
        sa.CheckConstraint("start_date <= end_date", name=op.f("ck_internship_internship_order")),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_internship_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_internship")),
        sa.UniqueConstraint("external_id", name=op.f("uq_internship_external_id")),
    )
    with op.batch_alter_table("internship", schema=None) as batch_op:
        batch_op.create_index(
            "ix_internship_company", ["company_key", "start_date", "id"], unique=False
        )
        batch_op.create_index("ix_internship_end", ["end_date", "start_date", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_internship_person_id"), ["person_id"], unique=False)
        batch_op.create_index("ix_internship_start", ["start_date", "end_date", "id"], unique=False)

    op.create_table(
        "selection_absence",
        sa.Column("selection_id", sa.Integer(), nullable=False),
        sa.Column("absence_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["absence_id"],
            ["absence.id"],
            name=op.f("fk_selection_absence_absence_id_absence"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["selection_id"],
            ["selection.id"],
            name=op.f("fk_selection_absence_selection_id_selection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("selection_id", "absence_id", name=op.f("pk_selection_absence")),
    )
    with op.batch_alter_table("selection_absence", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_selection_absence_absence_id"), ["absence_id"], unique=False
        )

    op.create_table(
        "selection_internship",
        sa.Column("selection_id", sa.Integer(), nullable=False),
        sa.Column("internship_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["internship_id"],
            ["internship.id"],
            name=op.f("fk_selection_internship_internship_id_internship"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["selection_id"],
            ["selection.id"],
            name=op.f("fk_selection_internship_selection_id_selection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "selection_id", "internship_id", name=op.f("pk_selection_internship")
        ),
    )
    with op.batch_alter_table("selection_internship", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_selection_internship_internship_id"), ["internship_id"], unique=False
        )

    with op.batch_alter_table("selection", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_selection_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_selection_kind"), SELECTION_KINDS)


def downgrade():
    op.execute("DELETE FROM selection WHERE kind IN ('absence', 'internship')")
    with op.batch_alter_table("selection", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_selection_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_selection_kind"), PEOPLE_KINDS)
    with op.batch_alter_table("selection_internship", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_selection_internship_internship_id"))

    op.drop_table("selection_internship")
    with op.batch_alter_table("selection_absence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_selection_absence_absence_id"))

    op.drop_table("selection_absence")
    with op.batch_alter_table("internship", schema=None) as batch_op:
        batch_op.drop_index("ix_internship_start")
        batch_op.drop_index(batch_op.f("ix_internship_person_id"))
        batch_op.drop_index("ix_internship_end")
        batch_op.drop_index("ix_internship_company")

    op.drop_table("internship")
    with op.batch_alter_table("absence", schema=None) as batch_op:
        batch_op.drop_index("ix_absence_person_day")
        batch_op.drop_index("ix_absence_minutes_day")
        batch_op.drop_index("ix_absence_justified_day")
        batch_op.drop_index("ix_absence_day")
        batch_op.drop_index(batch_op.f("ix_absence_course_id"))
        batch_op.drop_index("ix_absence_course_day")

    op.drop_table("absence")
