"""tries count their item attempts, and a try's latest attempts are an index range (its
rules read a bounded window of them)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


TRY = ["dataset", "user_id", "collection_key", "context_key", "content_id", "mastery_level"]


def upgrade() -> None:
    op.create_index("ix_item_attempts_latest", "item_attempts",
                    [*TRY, "started_at", "ordinal", "attempt_id"])
    op.drop_index("ix_item_attempts_try", table_name="item_attempts")
    with op.batch_alter_table("tries") as batch_op:
        batch_op.add_column(sa.Column("attempt_count", sa.Integer(), nullable=False,
                                      server_default="0"))
    op.execute(
        "UPDATE tries SET attempt_count = (SELECT COUNT(*) FROM item_attempts a"
        " WHERE a.dataset = tries.dataset AND a.user_id = tries.user_id"
        " AND a.collection_key = tries.collection_key AND a.context_key = tries.context_key"
        " AND a.content_id = tries.content_id AND a.mastery_level = tries.mastery_level)")


def downgrade() -> None:
    op.create_index("ix_item_attempts_try", "item_attempts", TRY)
    op.drop_index("ix_item_attempts_latest", table_name="item_attempts")
    with op.batch_alter_table("tries") as batch_op:
        batch_op.drop_column("attempt_count")
