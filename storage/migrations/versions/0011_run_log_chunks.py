"""run log chunks: a run's log in the store, shipped by the worker that executes it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'run_log_chunks',
        sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('feed_id', sa.Integer(), nullable=False),
        sa.Column('byte_start', sa.BigInteger(), nullable=False),
        sa.Column('byte_end', sa.BigInteger(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['feed_id'], ['feeds.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('run_id', 'seq'),
    )
    op.create_index(op.f('ix_run_log_chunks_feed_id'), 'run_log_chunks', ['feed_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_run_log_chunks_feed_id'), table_name='run_log_chunks')
    op.drop_table('run_log_chunks')
