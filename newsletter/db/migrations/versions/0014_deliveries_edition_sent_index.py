"""deliveries: index (edition_id, status, sent_at) for the console's watch and report

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

The watch page counts the messages sent in the last minute and the report reads an edition's
first and last send; with this index both are a range scan of the edition's sent rows by time
instead of a read of every sent row. Status leads sent_at so that the per-status GROUP BY can use
this index as it uses ix_deliveries_edition_status (without it SQLite picked an index by edition
and time for the GROUP BY and read every row).
"""

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_deliveries_edition_sent_at', 'deliveries', ['edition_id', 'status', 'sent_at'])


def downgrade() -> None:
    op.drop_index('ix_deliveries_edition_sent_at', table_name='deliveries')
