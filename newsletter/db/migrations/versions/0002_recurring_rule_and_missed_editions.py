"""recurring rule and missed editions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

import newsletter.db

BEFORE = ("draft", "scheduled", "sending", "paused", "sent", "cancelled")
AFTER = (*BEFORE, "missed")


def _edition_statuses(allowed: tuple[str, ...]) -> None:
    """A closed vocabulary is a CHECK constraint: widening it means replacing the constraint."""
    with op.batch_alter_table("editions") as batch:
        batch.drop_constraint(op.f("ck_editions_edition_status"), type_="check")
        batch.create_check_constraint(op.f("ck_editions_edition_status"),
                                      sa.column("status").in_(allowed))


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recurring_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=300), nullable=False),
    sa.Column('armed_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recurring_rules')),
    sa.UniqueConstraint('rule', name=op.f('uq_recurring_rules_rule'))
    )
    op.create_table('recurring_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('send', 'reminder', name='recurring_kind', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('due_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.Enum('scheduled', 'incomplete', 'missed', 'skipped', 'reminded', 'not_needed', name='recurring_outcome', native_enum=False, create_constraint=True, length=20), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('decided_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recurring_runs')),
    sa.UniqueConstraint('kind', 'month', name=op.f('uq_recurring_runs_kind'))
    )
    _edition_statuses(AFTER)


def downgrade() -> None:
    op.execute("UPDATE editions SET status = 'draft' WHERE status = 'missed'")
    _edition_statuses(BEFORE)
    op.drop_table('recurring_runs')
    op.drop_table('recurring_rules')
