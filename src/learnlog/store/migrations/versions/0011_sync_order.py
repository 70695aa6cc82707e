"""sync order: every fact table indexed by (partition, instance_id, counter)

A peer reads the facts another lacks per partition and instance, in counter order
(SPEC §5); this index makes each such read one range scan. It replaces the
(instance_id, counter) indexes of 0001, which no query used: one index less to keep on
every write.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("sessions", "attempts", "tries", "item_attempts", "users", "groups", "memberships",
          "group_activities", "quizzes", "visitor_sessions", "user_sessions", "enrolments",
          "collections", "contexts", "tombstones")


VERSIONED = ("sessions", "attempts", "tries", "item_attempts", "enrolments")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_sync", table, ["partition", "instance_id", "counter"])
    for table in VERSIONED:
        op.drop_index(f"ix_{table}_version", table_name=table)


def downgrade() -> None:
    for table in VERSIONED:
        op.create_index(f"ix_{table}_version", table, ["instance_id", "counter"])
    for table in TABLES:
        op.drop_index(f"ix_{table}_sync", table_name=table)
