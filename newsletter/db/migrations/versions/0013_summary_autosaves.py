"""summary autosaves

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

summary_autosaves keeps what an editor typed in the console's summary form (JSON, valid or not),
one row per editor and draft (a stored summary or a new one's random key).
"""

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('summary_autosaves',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('editor_id', sa.Integer(), nullable=False),
    sa.Column('draft_key', sa.String(length=80), nullable=False),
    sa.Column('summary_id', sa.Integer(), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('saved_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['editor_id'], ['editors.id'],
                            name=op.f('fk_summary_autosaves_editor_id_editors'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['summary_id'], ['summaries.id'],
                            name=op.f('fk_summary_autosaves_summary_id_summaries'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_summary_autosaves')),
    sa.UniqueConstraint('editor_id', 'draft_key', name=op.f('uq_summary_autosaves_editor_id'))
    )


def downgrade() -> None:
    op.drop_table('summary_autosaves')
