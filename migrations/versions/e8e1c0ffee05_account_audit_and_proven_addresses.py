"""School account audit lines; an address is unique once proven, not while claimed

Revision ID: e8e1c0ffee05
Revises: 7f51dc3c2496
Create Date: 2026-12-02 00:55:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e8e1c0ffee05'
down_revision = 'c8c1c0ffee03'
branch_labels = None
depends_on = None

PROVEN_ADDRESS = "kind = 'school' OR verified_at IS NOT NULL"


def upgrade():
    op.create_table('account_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('account_address', sa.String(length=254), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('user_name', sa.String(length=120), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_account_audit_account_id_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_account_audit_user_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_audit'))
    )
    with op.batch_alter_table('account_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_audit_account_id'), ['account_id'], unique=False)

    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_constraint('uq_account_address', type_='unique')
        batch_op.create_index(
            'uq_account_proven_address',
            ['address'],
            unique=True,
            sqlite_where=sa.text(PROVEN_ADDRESS),
            postgresql_where=sa.text(PROVEN_ADDRESS),
        )


def downgrade():
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index('uq_account_proven_address')
        batch_op.create_unique_constraint('uq_account_address', ['address'])

    with op.batch_alter_table('account_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_audit_account_id'))

    op.drop_table('account_audit')
