"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('editions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=32), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('preheader', sa.String(length=300), nullable=False),
    sa.Column('intro_md', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled', name='edition_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('scheduled_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_editions')),
    sa.UniqueConstraint('month', name=op.f('uq_editions_month')),
    sa.UniqueConstraint('uid', name=op.f('uq_editions_uid'))
    )
    op.create_table('research_types',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_research_types')),
    sa.UniqueConstraint('slug', name=op.f('uq_research_types_slug'))
    )
    op.create_table('subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('unconfirmed', 'active', 'unsubscribed', 'bounced', 'complained', name='subscriber_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('all_topics', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('consent_method', sa.Enum('admin', 'import', 'web-form', name='consent_method', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('consent_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('consent_source', sa.String(length=500), nullable=False),
    sa.Column('consent_ip_hash', sa.String(length=64), nullable=True),
    sa.Column('confirmed_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscribers')),
    sa.UniqueConstraint('email_hash', name=op.f('uq_subscribers_email_hash')),
    sa.UniqueConstraint('uid', name=op.f('uq_subscribers_uid'))
    )
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscribers_status'), ['status'], unique=False)

    op.create_table('suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('reason', sa.String(length=50), nullable=False),
    sa.Column('detail', sa.String(length=1000), nullable=False),
    sa.Column('created_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('email_hash', name=op.f('uq_suppressions_email_hash'))
    )
    op.create_table('topics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('original_name', sa.String(length=200), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topics')),
    sa.UniqueConstraint('slug', name=op.f('uq_topics_slug'))
    )
    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('edition_id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('variant', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('pending', 'in_flight', 'sent', 'failed', 'rejected', 'uncertain', name='delivery_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('provider_message_id', sa.String(length=300), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('next_attempt_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], name=op.f('fk_deliveries_edition_id_editions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_deliveries_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('edition_id', 'subscriber_id', name=op.f('uq_deliveries_edition_id'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_edition_status', ['edition_id', 'status', 'id'], unique=False)

    op.create_table('send_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('edition_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], name=op.f('fk_send_runs_edition_id_editions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_send_runs'))
    )
    op.create_table('subscriber_topics',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('topic_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_subscriber_topics_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['topic_id'], ['topics.id'], name=op.f('fk_subscriber_topics_topic_id_topics'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subscriber_id', 'topic_id', name=op.f('pk_subscriber_topics'))
    )
    op.create_table('summaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('headline', sa.String(length=300), nullable=False),
    sa.Column('citation', sa.JSON(), nullable=False),
    sa.Column('note_md', sa.Text(), nullable=True),
    sa.Column('body_md', sa.Text(), nullable=False),
    sa.Column('implications_md', sa.Text(), nullable=False),
    sa.Column('research_type_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'ready', name='summary_status', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('source_file', sa.String(length=1000), nullable=True),
    sa.Column('created_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['research_type_id'], ['research_types.id'], name=op.f('fk_summaries_research_type_id_research_types')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_summaries')),
    sa.UniqueConstraint('external_id', name=op.f('uq_summaries_external_id')),
    sa.UniqueConstraint('month', 'headline', name=op.f('uq_summaries_month')),
    sa.UniqueConstraint('uid', name=op.f('uq_summaries_uid'))
    )
    with op.batch_alter_table('summaries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_summaries_month'), ['month'], unique=False)

    op.create_table('edition_items',
    sa.Column('edition_id', sa.Integer(), nullable=False),
    sa.Column('summary_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], name=op.f('fk_edition_items_edition_id_editions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['summary_id'], ['summaries.id'], name=op.f('fk_edition_items_summary_id_summaries'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('edition_id', 'summary_id', name=op.f('pk_edition_items'))
    )
    op.create_table('summary_topics',
    sa.Column('summary_id', sa.Integer(), nullable=False),
    sa.Column('topic_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['summary_id'], ['summaries.id'], name=op.f('fk_summary_topics_summary_id_summaries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['topic_id'], ['topics.id'], name=op.f('fk_summary_topics_topic_id_topics'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('summary_id', 'topic_id', name=op.f('pk_summary_topics'))
    )


def downgrade() -> None:
    op.drop_table('summary_topics')
    op.drop_table('edition_items')
    with op.batch_alter_table('summaries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_summaries_month'))

    op.drop_table('summaries')
    op.drop_table('subscriber_topics')
    op.drop_table('send_runs')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_edition_status')

    op.drop_table('deliveries')
    op.drop_table('topics')
    op.drop_table('suppressions')
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscribers_status'))

    op.drop_table('subscribers')
    op.drop_table('research_types')
    op.drop_table('editions')
