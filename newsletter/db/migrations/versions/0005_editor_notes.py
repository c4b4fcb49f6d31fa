"""editor notes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Notes to the editor are kept until delivered, so an alert survives a mail server that is down.
"""

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('editor_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempted_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sent_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_editor_notes'))
    )
    with op.batch_alter_table('editor_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_editor_notes_sent_at'), ['sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('editor_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_editor_notes_sent_at'))

    op.drop_table('editor_notes')
