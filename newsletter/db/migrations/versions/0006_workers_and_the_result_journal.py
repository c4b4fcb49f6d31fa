"""workers and the result journal

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A send run is the `send` that planned an edition or a worker that joined it (`leader_id`), and
names the file of its local result journal, so a dead worker's rows can be settled one by one.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('send_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('leader_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('journal', sa.String(length=1000), nullable=True))
        batch_op.create_index(batch_op.f('ix_send_runs_leader_id'), ['leader_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('send_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_send_runs_leader_id'))
        batch_op.drop_column('journal')
        batch_op.drop_column('leader_id')
