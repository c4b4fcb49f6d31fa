"""editors, sessions and the audit log

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

The console's people (editors, their one-time recovery codes), their server-side sessions (only
hashes of the ids) and the audit log (newsletter/editors/models.py).
"""

import sqlalchemy as sa
from alembic import op

import newsletter.db

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('editors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.Enum('owner', 'editor', name='editor_role', native_enum=False,
                              create_constraint=True, length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('totp_secret', sa.String(length=300), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('created_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_editors')),
    sa.UniqueConstraint('email', name=op.f('uq_editors_email'))
    )
    op.create_table('editor_recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('editor_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['editor_id'], ['editors.id'], ondelete='CASCADE',
                            name=op.f('fk_editor_recovery_codes_editor_id_editors')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_editor_recovery_codes'))
    )
    op.create_index('ix_editor_recovery_codes_editor_id', 'editor_recovery_codes', ['editor_id'])
    op.create_table('editor_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('editor_id', sa.Integer(), nullable=False),
    sa.Column('created_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.Column('setup_only', sa.Boolean(), nullable=False),
    sa.Column('revoked_at', newsletter.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['editor_id'], ['editors.id'], ondelete='CASCADE',
                            name=op.f('fk_editor_sessions_editor_id_editors')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_editor_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_editor_sessions_token_hash'))
    )
    op.create_index('ix_editor_sessions_editor_id', 'editor_sessions', ['editor_id'])
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', newsletter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])


def downgrade() -> None:
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index('ix_editor_sessions_editor_id', table_name='editor_sessions')
    op.drop_table('editor_sessions')
    op.drop_index('ix_editor_recovery_codes_editor_id', table_name='editor_recovery_codes')
    op.drop_table('editor_recovery_codes')
    op.drop_table('editors')
