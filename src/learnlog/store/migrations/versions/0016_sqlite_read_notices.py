"""SQLite tells the workers which learners' records changed (a notice table)

The workers keep the answers of their hot reads in memory on SQLite too
(`store/readcache.py`). SQLite has no LISTEN/NOTIFY, so every row changed in `summaries`
or `enrolments` appends its learner's token (dataset || chr(31) || user_id) to
`read_notices`, in the same transaction, whatever path wrote; a change to `collections`
appends `*` (forget everything). Writers take turns on an SQLite file, so `seq` follows
commit order. A worker reads the notices after its last one before answering from memory.
The table keeps its newest 100,000 notices: every 10,000th notice deletes those older
than that (a worker further behind finds a gap and forgets everything).

On PostgreSQL the table is created and stays empty (migration 0015 notifies instead).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

KEEP = 100_000
PRUNE_EVERY = 10_000
LEARNER_TABLES = ("summaries", "enrolments")


def _token(row: str) -> str:
    return f"{row}.dataset || char(31) || {row}.user_id"


def _triggers(table: str, new: str, old: str) -> list[str]:
    head = f"CREATE TRIGGER learnlog_reads_{table}"
    add = "INSERT INTO read_notices (token) VALUES"
    return [
        f"{head}_ins AFTER INSERT ON {table} BEGIN {add} ({new}); END",
        f"{head}_upd AFTER UPDATE ON {table} BEGIN {add} ({new}); "
        f"INSERT INTO read_notices (token) SELECT {old} WHERE {old} IS NOT {new}; END",
        f"{head}_del AFTER DELETE ON {table} BEGIN {add} ({old}); END",
    ]


def upgrade() -> None:
    op.create_table(
        "read_notices",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("token", sa.Text(), nullable=False),
    )
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in LEARNER_TABLES:
        for statement in _triggers(table, _token("NEW"), _token("OLD")):
            op.execute(statement)
    for statement in _triggers("collections", "'*'", "'*'"):
        op.execute(statement)
    op.execute(f"CREATE TRIGGER learnlog_reads_prune AFTER INSERT ON read_notices "
               f"WHEN NEW.seq % {PRUNE_EVERY} = 0 BEGIN "
               f"DELETE FROM read_notices WHERE seq <= NEW.seq - {KEEP}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in (*LEARNER_TABLES, "collections"):
            for name in ("ins", "upd", "del"):
                op.execute(f"DROP TRIGGER IF EXISTS learnlog_reads_{table}_{name}")
        op.execute("DROP TRIGGER IF EXISTS learnlog_reads_prune")
    op.drop_table("read_notices")
