"""group activity aggregates: each learner's contribution and each group's totals

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TIMES = ("member_count_at", "enrolled_count_at", "started_count_at", "completed_count_at",
         "completion_percentage_at", "avg_progress_at", "avg_score_percent_at")


def _key(*names: str) -> list[sa.Column[str]]:
    return [sa.Column(n, sa.String(length=32 if n == "activity_type" else 256), nullable=False)
            for n in names]


def upgrade() -> None:
    op.create_table(
        "member_activity_agg",
        *_key("dataset", "user_id", "group_id", "activity_type", "activity_id"),
        sa.Column("enrolled", sa.Boolean(), nullable=False),
        sa.Column("started", sa.Boolean(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("score_micro", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "user_id", "group_id", "activity_type",
                                "activity_id"),
    )
    op.create_index("ix_member_activity_agg_activity", "member_activity_agg",
                    ["dataset", "group_id", "activity_type", "activity_id"])
    op.create_table(
        "group_activity_agg",
        *_key("dataset", "group_id", "activity_type", "activity_id"),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("enrolled_count", sa.Integer(), nullable=False),
        sa.Column("started_count", sa.Integer(), nullable=False),
        sa.Column("completed_count", sa.Integer(), nullable=False),
        sa.Column("progress_sum", sa.BigInteger(), nullable=False),
        sa.Column("scored_count", sa.Integer(), nullable=False),
        sa.Column("score_micro_sum", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in TIMES),
        sa.PrimaryKeyConstraint("dataset", "group_id", "activity_type", "activity_id"),
    )


def downgrade() -> None:
    op.drop_table("group_activity_agg")
    op.drop_table("member_activity_agg")
