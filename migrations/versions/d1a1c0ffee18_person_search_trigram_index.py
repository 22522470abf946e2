"""directory: on PostgreSQL, a trigram index for the people's text filter

Revision ID: d1a1c0ffee18
Revises: e2a1c0ffee20
Create Date: 2026-12-02 07:00:00

"""

from alembic import op

revision = "d1a1c0ffee18"
down_revision = "e2a1c0ffee20"
branch_labels = None
depends_on = None


def upgrade():
    # SQLite keeps its schema: the filter scans ``ix_person_kind_search`` there.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_person_search_trgm",
        "person",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_person_search_trgm", table_name="person")
