"""workers registry: the worker processes seen, their queues and their load

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'workers',
        sa.Column('id', sa.String(length=128), primary_key=True),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('host', sa.String(length=128), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('queues', sa.JSON(), nullable=False),
        sa.Column('concurrency', sa.Integer(), nullable=False),
        sa.Column('running', sa.Integer(), nullable=False),
        sa.Column('version', sa.String(length=40), nullable=True),
        sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('last_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index('ix_workers_last_seen_at', 'workers', ['last_seen_at'])


def downgrade() -> None:
    op.drop_index('ix_workers_last_seen_at', table_name='workers')
    op.drop_table('workers')
