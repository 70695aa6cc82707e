"""identity: users registry, groups, memberships with roles

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = 256


def _id(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=ID), nullable=nullable)


def _sync() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column("partition", sa.String(length=600), nullable=False),
            sa.Column("instance_id", sa.String(length=64), nullable=False),
            sa.Column("counter", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", sa.BigInteger(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "users", _id("dataset"), _id("user_id"),
        sa.Column("username", sa.String(length=ID), nullable=True),
        sa.Column("full_name", sa.String(length=1024), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        *_sync(), sa.PrimaryKeyConstraint("dataset", "user_id"))
    op.create_table(
        "groups", _id("dataset"), _id("group_id"),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        _id("parent_id", nullable=True),
        *_sync(), sa.PrimaryKeyConstraint("dataset", "group_id"))
    op.create_table(
        "memberships", _id("dataset"), _id("group_id"), _id("user_id"),
        sa.Column("role", sa.String(length=32), nullable=False),
        *_sync(), sa.PrimaryKeyConstraint("dataset", "group_id", "user_id"))
    op.create_index("ix_memberships_user", "memberships", ["dataset", "user_id"])


def downgrade() -> None:
    op.drop_table("memberships")
    op.drop_table("groups")
    op.drop_table("users")
