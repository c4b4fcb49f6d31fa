"""summary revisions and editorial updates

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

summary_revisions keeps every saved version of a summary (its file-form fields as JSON);
editorial_updates the Crossref notices (retractions, corrections…) about a summary's DOI, each
with who acknowledged it and when.
"""

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('summary_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('summary_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('saved_by', sa.String(length=1000), nullable=False),
    sa.Column('saved_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['summary_id'], ['summaries.id'],
                            name=op.f('fk_summary_revisions_summary_id_summaries'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_summary_revisions')),
    sa.UniqueConstraint('summary_id', 'number', name=op.f('uq_summary_revisions_summary_id'))
    )
    op.create_table('editorial_updates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('summary_id', sa.Integer(), nullable=False),
    sa.Column('doi', sa.String(length=300), nullable=False),
    sa.Column('notice_doi', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('notice_date', sa.String(length=10), nullable=True),
    sa.Column('title', sa.String(length=500), nullable=True),
    sa.Column('found_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
    sa.Column('acknowledged_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['summary_id'], ['summaries.id'],
                            name=op.f('fk_editorial_updates_summary_id_summaries'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_editorial_updates')),
    sa.UniqueConstraint('summary_id', 'notice_doi', name=op.f('uq_editorial_updates_summary_id'))
    )


def downgrade() -> None:
    op.drop_table('editorial_updates')
    op.drop_table('summary_revisions')
