"""state changes: who changed a feed's state by hand, and why; a run's options (a backfill's
state, a full refresh) what kills its sandbox if its process dies, and its HTTP request counts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 16:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feed_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('changed_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=500), nullable=True))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('options', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('sandbox_ref', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('request_counts', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('request_counts')
        batch_op.drop_column('sandbox_ref')
        batch_op.drop_column('options')
    with op.batch_alter_table('feed_states', schema=None) as batch_op:
        batch_op.drop_column('note')
        batch_op.drop_column('changed_by')
