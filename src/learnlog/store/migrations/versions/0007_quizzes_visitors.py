"""coach quizzes, anonymous visitor sessions, learner groups by classroom

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _sync_columns() -> list[sa.Column[object]]:
    return [sa.Column("partition", sa.String(length=600), nullable=False),
            sa.Column("instance_id", sa.String(length=64), nullable=False),
            sa.Column("counter", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", sa.BigInteger(), nullable=False)]


def upgrade() -> None:
    op.create_index("ix_groups_parent", "groups", ["dataset", "parent_id"])
    op.create_table(
        "quizzes",
        sa.Column("dataset", sa.String(length=256), nullable=False),
        sa.Column("quiz_id", sa.String(length=256), nullable=False),
        sa.Column("title", sa.String(length=1024), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("group_ids", sa.Text(), nullable=False),
        *_sync_columns(),
        sa.PrimaryKeyConstraint("dataset", "quiz_id"),
    )
    op.create_table(
        "visitor_sessions",
        sa.Column("dataset", sa.String(length=256), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("visitor_id", sa.String(length=64), nullable=False),
        sa.Column("content_id", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("time_spent", sa.Float(), nullable=False),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("extra_fields", sa.Text(), nullable=True),
        *_sync_columns(),
        sa.PrimaryKeyConstraint("dataset", "session_id"),
    )


def downgrade() -> None:
    op.drop_table("visitor_sessions")
    op.drop_table("quizzes")
    op.drop_index("ix_groups_parent", table_name="groups")
