"""user sessions (Kolibri's UserSessionLog)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("dataset", sa.String(length=256), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("last_interaction_at", sa.BigInteger(), nullable=False),
        sa.Column("device_info", sa.String(length=256), nullable=True),
        sa.Column("pages", sa.Text(), nullable=False),
        sa.Column("channels", sa.Text(), nullable=False),
        sa.Column("partition", sa.String(length=600), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "user_id", "session_id"))
    op.create_index("ix_user_sessions_latest", "user_sessions",
                    ["dataset", "user_id", "last_interaction_at"])


def downgrade() -> None:
    op.drop_table("user_sessions")
