"""subscriber pause

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Pausing used to empty a subscriber's topics; now it is its own column, so the topics survive.
Rows paused the old way are left as they are: they have no topics, and the preference page asks
them to choose some.
"""

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscribers') as batch:
        batch.add_column(sa.Column('paused_at', newsletter.db.UTCDateTime(timezone=True), nullable=True))


def _pause_the_old_way() -> None:
    """Before 0003 a pause was an empty topic choice; dropping the column must not mail them."""
    subscribers = sa.table('subscribers', sa.column('id', sa.Integer()),
                           sa.column('all_topics', sa.Boolean()),
                           sa.column('paused_at', newsletter.db.UTCDateTime(timezone=True)))
    chosen = sa.table('subscriber_topics', sa.column('subscriber_id', sa.Integer()))
    paused = sa.select(subscribers.c.id).where(subscribers.c.paused_at.is_not(None))
    op.execute(chosen.delete().where(chosen.c.subscriber_id.in_(paused)))
    op.execute(subscribers.update().where(subscribers.c.paused_at.is_not(None))
               .values(all_topics=False))


def downgrade() -> None:
    """Never by copying the table on SQLite: dropping the old copy, with foreign keys on, would
    cascade to every subscriber's topic choices and deliveries. SQLite 3.35+ drops in place."""
    _pause_the_old_way()
    with op.batch_alter_table('subscribers', recreate='never') as batch:
        batch.drop_column('paused_at')
