"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 03:33:01.770901
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('attempts',
    sa.Column('dataset', sa.String(length=256), nullable=False),
    sa.Column('user_id', sa.String(length=256), nullable=False),
    sa.Column('collection_key', sa.String(length=256), nullable=False),
    sa.Column('context_key', sa.String(length=256), nullable=False),
    sa.Column('content_id', sa.String(length=256), nullable=False),
    sa.Column('attempt_id', sa.String(length=256), nullable=False),
    sa.Column('total_score', sa.Float(), nullable=False),
    sa.Column('total_max_score', sa.Float(), nullable=False),
    sa.Column('grand_total', sa.String(length=64), nullable=False),
    sa.Column('last_attempted_on', sa.BigInteger(), nullable=False),
    sa.Column('created_on', sa.BigInteger(), nullable=False),
    sa.Column('responses', sa.Text(), nullable=False),
    sa.Column('partition', sa.String(length=600), nullable=False),
    sa.Column('instance_id', sa.String(length=64), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'user_id', 'collection_key', 'context_key', 'content_id', 'attempt_id')
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index('ix_attempts_version', ['instance_id', 'counter'], unique=False)

    op.create_table('collections',
    sa.Column('dataset', sa.String(length=256), nullable=False),
    sa.Column('collection_id', sa.String(length=256), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=1024), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('logo', sa.String(length=2048), nullable=True),
    sa.Column('structure', sa.Text(), nullable=False),
    sa.Column('certificates', sa.Text(), nullable=False),
    sa.Column('leaf_count', sa.Integer(), nullable=False),
    sa.Column('required_count', sa.Integer(), nullable=False),
    sa.Column('partition', sa.String(length=600), nullable=False),
    sa.Column('instance_id', sa.String(length=64), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'collection_id')
    )
    op.create_table('contexts',
    sa.Column('dataset', sa.String(length=256), nullable=False),
    sa.Column('context_id', sa.String(length=256), nullable=False),
    sa.Column('collection_id', sa.String(length=256), nullable=False),
    sa.Column('name', sa.String(length=1024), nullable=True),
    sa.Column('start_date', sa.String(length=10), nullable=True),
    sa.Column('end_date', sa.String(length=10), nullable=True),
    sa.Column('partition', sa.String(length=600), nullable=False),
    sa.Column('instance_id', sa.String(length=64), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'context_id')
    )
    op.create_table('enrolments',
    sa.Column('dataset', sa.String(length=256), nullable=False),
    sa.Column('user_id', sa.String(length=256), nullable=False),
    sa.Column('collection_id', sa.String(length=256), nullable=False),
    sa.Column('context_id', sa.String(length=256), nullable=False),
    sa.Column('enrolled_at', sa.BigInteger(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('completed_count', sa.Integer(), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('completed_on', sa.BigInteger(), nullable=True),
    sa.Column('certificates', sa.Text(), nullable=False),
    sa.Column('partition', sa.String(length=600), nullable=False),
    sa.Column('instance_id', sa.String(length=64), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'user_id', 'collection_id', 'context_id')
    )
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.create_index('ix_enrolments_collection', ['dataset', 'collection_id'], unique=False)
        batch_op.create_index('ix_enrolments_version', ['instance_id', 'counter'], unique=False)

    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('dataset', sa.String(length=256), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('available_at', sa.BigInteger(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_available', ['available_at'], unique=False)

    op.create_table('sessions',
    sa.Column('dataset', sa.String(length=256), nullable=False),
    sa.Column('user_id', sa.String(length=256), nullable=False),
    sa.Column('session_id', sa.String(length=64), nullable=False),
    sa.Column('collection_key', sa.String(length=256), nullable=False),
    sa.Column('context_key', sa.String(length=256), nullable=False),
    sa.Column('content_id', sa.String(length=256), nullable=False),
    sa.Column('started_at', sa.BigInteger(), nullable=False),
    sa.Column('ended_at', sa.BigInteger(), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('time_spent', sa.Float(), nullable=False),
    sa.Column('completed_at', sa.BigInteger(), nullable=True),
    sa.Column('repeat', sa.Boolean(), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('progress_details', sa.Text(), nullable=True),
    sa.Column('extra_fields', sa.Text(), nullable=True),
    sa.Column('partition', sa.String(length=600), nullable=False),
    sa.Column('instance_id', sa.String(length=64), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'user_id', 'session_id')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_key', ['dataset', 'user_id', 'collection_key', 'context_key', 'content_id'], unique=False)
        batch_op.create_index('ix_sessions_version', ['instance_id', 'counter'], unique=False)

    op.create_table('summaries',
    sa.Column('dataset', sa.String(length=256), nullable=False),
    sa.Column('user_id', sa.String(length=256), nullable=False),
    sa.Column('collection_key', sa.String(length=256), nullable=False),
    sa.Column('context_key', sa.String(length=256), nullable=False),
    sa.Column('content_id', sa.String(length=256), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('time_spent', sa.Float(), nullable=False),
    sa.Column('first_access', sa.BigInteger(), nullable=True),
    sa.Column('last_access', sa.BigInteger(), nullable=True),
    sa.Column('view_count', sa.Integer(), nullable=False),
    sa.Column('completed_at', sa.BigInteger(), nullable=True),
    sa.Column('last_completed_at', sa.BigInteger(), nullable=True),
    sa.Column('progress_details', sa.Text(), nullable=True),
    sa.Column('extra_fields', sa.Text(), nullable=True),
    sa.Column('details_at', sa.BigInteger(), nullable=True),
    sa.Column('details_session', sa.String(length=64), nullable=True),
    sa.Column('repeat_at', sa.BigInteger(), nullable=True),
    sa.Column('repeat_session', sa.String(length=64), nullable=True),
    sa.Column('frontier', sa.Text(), nullable=True),
    sa.Column('best_score', sa.Float(), nullable=True),
    sa.Column('best_max_score', sa.Float(), nullable=True),
    sa.Column('attempts_count', sa.Integer(), nullable=False),
    sa.Column('open_session_id', sa.String(length=64), nullable=True),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'user_id', 'collection_key', 'context_key', 'content_id')
    )
    op.create_table('tombstones',
    sa.Column('dataset', sa.String(length=256), nullable=False),
    sa.Column('partition', sa.String(length=600), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('record_id', sa.String(length=1400), nullable=False),
    sa.Column('instance_id', sa.String(length=64), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('dataset', 'partition', 'kind', 'record_id')
    )



def downgrade() -> None:

    op.drop_table('tombstones')
    op.drop_table('summaries')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_version')
        batch_op.drop_index('ix_sessions_key')

    op.drop_table('sessions')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_available')

    op.drop_table('outbox')
    op.drop_table('meta')
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrolments_version')
        batch_op.drop_index('ix_enrolments_collection')

    op.drop_table('enrolments')
    op.drop_table('contexts')
    op.drop_table('collections')
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_version')

    op.drop_table('attempts')

