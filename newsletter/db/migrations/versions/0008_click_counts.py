"""click counts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Clicks counted by /r/ per (edition month, summary uid, link), never per reader; click_seen holds
the keyed hashes that de-duplicate one client's repeats within a minute, and is pruned.
"""

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('click_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('edition_month', sa.String(length=7), nullable=False),
    sa.Column('summary_uid', sa.String(length=32), nullable=False),
    sa.Column('url_hash', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('first_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_click_counts')),
    sa.UniqueConstraint('edition_month', 'summary_uid', 'url_hash',
                        name=op.f('uq_click_counts_edition_month'))
    )
    op.create_table('click_seen',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('seen_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_click_seen'))
    )
    with op.batch_alter_table('click_seen', schema=None) as batch_op:
        batch_op.create_index('ix_click_seen_seen_at', ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('click_seen', schema=None) as batch_op:
        batch_op.drop_index('ix_click_seen_seen_at')

    op.drop_table('click_seen')
    op.drop_table('click_counts')
