"""delivery feedback events

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

What comes back after a send (bounces, complaints, unsubscribes, deliveries), stored once per
(source, event key); the alerts raised per edition, once each; the Mailgun tokens seen.
"""

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

KINDS = ('bounce_hard', 'bounce_soft', 'complaint', 'unsubscribe', 'dropped', 'deferred',
         'delivered', 'ignored', 'unknown')


def upgrade() -> None:
    op.create_table('feedback_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Enum('postmark', 'sendgrid', 'mailgun', 'mailbox', name='feedback_source', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('event_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum(*KINDS, name='feedback_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('occurred_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('edition_id', sa.Integer(), nullable=True),
    sa.Column('matched_by', sa.Enum('delivery', 'address', name='feedback_match', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('effect', sa.Enum('none', 'suppressed', 'soft_counted', 'unsubscribed', name='feedback_effect', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('address_hash', sa.String(length=64), nullable=True),
    sa.Column('provider_message_id', sa.String(length=300), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_feedback_events_subscriber_id_subscribers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_feedback_events_delivery_id_deliveries'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], name=op.f('fk_feedback_events_edition_id_editions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_events')),
    sa.UniqueConstraint('source', 'event_key', name='uq_feedback_events_source_event_key')
    )
    with op.batch_alter_table('feedback_events', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_events_subscriber_kind', ['subscriber_id', 'kind', 'occurred_at'], unique=False)
        batch_op.create_index('ix_feedback_events_edition_kind', ['edition_id', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_events_received_at'), ['received_at'], unique=False)

    op.create_table('feedback_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('edition_id', sa.Integer(), nullable=False),
    sa.Column('measure', sa.String(length=30), nullable=False),
    sa.Column('rate', sa.Float(), nullable=False),
    sa.Column('raised_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['edition_id'], ['editions.id'], name=op.f('fk_feedback_alerts_edition_id_editions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_alerts')),
    sa.UniqueConstraint('edition_id', 'measure', name='uq_feedback_alerts_edition_measure')
    )

    op.create_table('webhook_tokens',
    sa.Column('token', sa.String(length=100), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('seen_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_webhook_tokens'))
    )
    with op.batch_alter_table('webhook_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_tokens_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_tokens_seen_at'))
    op.drop_table('webhook_tokens')
    op.drop_table('feedback_alerts')
    with op.batch_alter_table('feedback_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_events_received_at'))
        batch_op.drop_index('ix_feedback_events_edition_kind')
        batch_op.drop_index('ix_feedback_events_subscriber_kind')
    op.drop_table('feedback_events')
