"""schema policy and history: a feed's schema policy, a run's change to its tables

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schema_policy', sa.String(length=24), nullable=False, server_default='evolve'))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schema_changes', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('schema_changes')
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('schema_policy')
