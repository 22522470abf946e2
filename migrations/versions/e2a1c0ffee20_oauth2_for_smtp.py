"""transports sign in with a password or OAuth2 (Microsoft 365, Google); the school's applications

Revision ID: e2a1c0ffee20
Revises: e1a1c0ffee19
Create Date: 2026-12-02 07:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "e2a1c0ffee20"
down_revision = "e1a1c0ffee19"
branch_labels = None
depends_on = None


AUTH_CHECK = "auth IN ('none', 'password', 'microsoft', 'google')"


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        # In place: a batch rebuild would drop the table, which the foreign keys pointing at it
        # (enforced by hpmail) refuse; SQLite takes a CHECK on a column it adds.
        op.execute(
            "ALTER TABLE transport ADD COLUMN auth VARCHAR(10) DEFAULT 'password' NOT NULL "
            f"CONSTRAINT ck_transport_auth CHECK ({AUTH_CHECK})"
        )
    else:
        op.add_column(
            "transport",
            sa.Column("auth", sa.String(length=10), nullable=False, server_default="password"),
        )
        op.create_check_constraint(op.f("ck_transport_auth"), "transport", AUTH_CHECK)
    op.add_column("transport", sa.Column("oauth_refresh_encrypted", sa.LargeBinary()))
    op.add_column(
        "transport",
        sa.Column("oauth_account", sa.String(length=254), nullable=False, server_default=""),
    )
    op.add_column("transport", sa.Column("oauth_error", sa.Text()))
    # A server without a login was reached without signing in: say so.
    op.execute("UPDATE transport SET auth = 'none' WHERE username IS NULL OR username = ''")

    op.create_table(
        "oauth_application",
        sa.Column("provider", sa.String(length=10), nullable=False),
        sa.Column("tenant", sa.String(length=120), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("client_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "provider IN ('microsoft', 'google')", name=op.f("ck_oauth_application_provider")
        ),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_oauth_application")),
    )
    op.create_table(
        "pending_consent",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("transport_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=10), nullable=False),
        sa.Column("verifier_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transport_id"],
            ["transport.id"],
            name=op.f("fk_pending_consent_transport_id_transport"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_pending_consent_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_pending_consent")),
    )
    with op.batch_alter_table("pending_consent") as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_consent_created_at"), ["created_at"])
        batch_op.create_index(batch_op.f("ix_pending_consent_transport_id"), ["transport_id"])
        batch_op.create_index(batch_op.f("ix_pending_consent_user_id"), ["user_id"])


def _drop_column(table: str, column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def downgrade():
    op.drop_table("pending_consent")
    op.drop_table("oauth_application")
    for column in ("oauth_error", "oauth_account", "oauth_refresh_encrypted"):
        _drop_column("transport", column)
    if op.get_bind().dialect.name == "sqlite":
        # The CHECK added with the column (upgrade) goes with it.
        op.execute("ALTER TABLE transport DROP COLUMN auth")
        return
    op.drop_constraint(op.f("ck_transport_auth"), "transport", type_="check")
    op.drop_column("transport", "auth")
