"""logger family: session kind and try, exercise tries and item attempts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = 256


def _sync() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column("partition", sa.String(length=600), nullable=False),
            sa.Column("instance_id", sa.String(length=64), nullable=False),
            sa.Column("counter", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", sa.BigInteger(), nullable=False)]


def _key() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(n, sa.String(length=ID), nullable=False) for n in
            ("dataset", "user_id", "collection_key", "context_key", "content_id")]


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("mastery_level", sa.Integer(), nullable=True))
    op.create_table(
        "tries", *_key(),
        sa.Column("mastery_level", sa.Integer(), nullable=False),
        sa.Column("criterion", sa.Text(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=False),
        sa.Column("time_spent", sa.Float(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        *_sync(),
        sa.PrimaryKeyConstraint("dataset", "user_id", "collection_key", "context_key",
                                "content_id", "mastery_level"))
    op.create_index("ix_tries_version", "tries", ["instance_id", "counter"])
    op.create_table(
        "item_attempts",
        sa.Column("dataset", sa.String(length=ID), nullable=False),
        sa.Column("user_id", sa.String(length=ID), nullable=False),
        sa.Column("attempt_id", sa.String(length=64), nullable=False),
        sa.Column("collection_key", sa.String(length=ID), nullable=False),
        sa.Column("context_key", sa.String(length=ID), nullable=False),
        sa.Column("content_id", sa.String(length=ID), nullable=False),
        sa.Column("mastery_level", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("item", sa.String(length=ID), nullable=False),
        sa.Column("correct", sa.Float(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=False),
        sa.Column("time_spent", sa.Float(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("simple_answer", sa.Text(), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("hinted", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Boolean(), nullable=False),
        sa.Column("history", sa.Text(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        *_sync(),
        sa.PrimaryKeyConstraint("dataset", "user_id", "attempt_id"))
    op.create_index("ix_item_attempts_try", "item_attempts",
                    ["dataset", "user_id", "collection_key", "context_key", "content_id",
                     "mastery_level"])
    op.create_index("ix_item_attempts_version", "item_attempts", ["instance_id", "counter"])


def downgrade() -> None:
    op.drop_table("item_attempts")
    op.drop_table("tries")
    with op.batch_alter_table("sessions") as batch_op:
        batch_op.drop_column("mastery_level")
        batch_op.drop_column("kind")
