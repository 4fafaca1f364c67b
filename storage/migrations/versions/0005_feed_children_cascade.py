"""a feed's state history, schedule slot and watchers go with it (ON DELETE CASCADE)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:40:00.000000
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

CHILDREN = ("feed_states", "schedules", "watchers")


def upgrade() -> None:
    for table in CHILDREN:
        # Rows of feeds deleted before the constraint existed would make it fail.
        op.execute(f"DELETE FROM {table} WHERE feed_id NOT IN (SELECT id FROM feeds)")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(f"fk_{table}_feed_id", "feeds", ["feed_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    for table in CHILDREN:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_feed_id", type_="foreignkey")
