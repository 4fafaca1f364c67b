"""schedules retries watchers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 12:34:44.665881
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('watcher_id', sa.Integer(), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_run_id'), ['run_id'], unique=False)

    op.create_table('schedules',
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('next_fire_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_fire_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_outcome', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('feed_id')
    )
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedules_next_fire_at'), ['next_fire_at'], unique=False)

    op.create_table('watchers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('longer_than_minutes', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('watchers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watchers_feed_id'), ['feed_id'], unique=False)

    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retries', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('retry_backoff_s', sa.Integer(), nullable=False, server_default='60'))
        batch_op.add_column(sa.Column('max_rejected_ratio', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('webhook_token_hash', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_before', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('scheduled_for', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('scheduled_for')
        batch_op.drop_column('not_before')

    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('webhook_token_hash')
        batch_op.drop_column('max_rejected_ratio')
        batch_op.drop_column('retry_backoff_s')
        batch_op.drop_column('retries')

    with op.batch_alter_table('watchers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_watchers_feed_id'))

    op.drop_table('watchers')
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedules_next_fire_at'))

    op.drop_table('schedules')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_run_id'))

    op.drop_table('deliveries')
