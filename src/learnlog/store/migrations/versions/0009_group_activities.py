"""group activities: the collections, contents and quizzes a group works on

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "group_activities",
        sa.Column("dataset", sa.String(length=256), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("activity_type", sa.String(length=32), nullable=False),
        sa.Column("activity_id", sa.String(length=256), nullable=False),
        sa.Column("partition", sa.String(length=600), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "group_id", "activity_type", "activity_id"),
    )


def downgrade() -> None:
    op.drop_table("group_activities")
