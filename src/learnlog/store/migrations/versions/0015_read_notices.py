"""PostgreSQL tells listeners which learners' records changed (LISTEN/NOTIFY)

Each worker keeps the answers of its hot reads (view/read, summary/list) in memory
(`store/readcache.py`). What keeps them true is this: every statement that changes
`summaries` or `enrolments` sends, when its transaction commits, the learners it touched
on the channel `learnlog_reads` (a 16-hex token per learner, the first 16 digits of
md5(dataset || chr(31) || user_id), up to 400 tokens per notification), and any change
to `collections`, or a TRUNCATE of any of the three, sends `*` (forget everything).
Statement-level triggers with transition tables: one trigger call per statement, not
per row, whatever path wrote (the writer, sync, imports, erasure, the CLI).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Transition tables are named per trigger; a PL/pgSQL statement is planned when it first
# runs, so each branch names only the tables its trigger has.
TOKEN = "left(md5(dataset || chr(31) || user_id), 16)"


def _notify_tokens(*tables: str) -> str:
    """A PL/pgSQL loop notifying the distinct learner tokens of these transition tables,
    400 to a notification."""
    union = " UNION ".join(f"SELECT {TOKEN} AS token FROM {t}" for t in tables)
    return (f"FOR chunk IN SELECT string_agg(token, ' ') FROM ("
            f"SELECT token, (row_number() OVER ()) / 400 AS part FROM ("
            f"SELECT DISTINCT token FROM ({union}) u) d) n "
            "GROUP BY part LOOP PERFORM pg_notify('learnlog_reads', chunk); END LOOP;")


NOTIFY_LEARNERS = f"""
CREATE OR REPLACE FUNCTION learnlog_notify_learners() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    chunk text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_notify_tokens("learnlog_new_rows")}
    ELSIF TG_OP = 'DELETE' THEN
        {_notify_tokens("learnlog_old_rows")}
    ELSE
        {_notify_tokens("learnlog_new_rows", "learnlog_old_rows")}
    END IF;
    RETURN NULL;
END
$$
"""

NOTIFY_ALL = """
CREATE OR REPLACE FUNCTION learnlog_notify_all() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed boolean := true;
BEGIN
    IF TG_OP = 'INSERT' THEN
        changed := EXISTS (SELECT 1 FROM learnlog_new_rows);
    ELSIF TG_OP <> 'TRUNCATE' THEN
        changed := EXISTS (SELECT 1 FROM learnlog_old_rows);
    END IF;
    IF changed THEN
        PERFORM pg_notify('learnlog_reads', '*');
    END IF;
    RETURN NULL;
END
$$
"""

TABLES = ("summaries", "enrolments")


def _triggers(table: str, function: str) -> list[str]:
    return [
        f"CREATE TRIGGER learnlog_reads_ins AFTER INSERT ON {table} "
        "REFERENCING NEW TABLE AS learnlog_new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER learnlog_reads_upd AFTER UPDATE ON {table} "
        "REFERENCING OLD TABLE AS learnlog_old_rows NEW TABLE AS learnlog_new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER learnlog_reads_del AFTER DELETE ON {table} "
        "REFERENCING OLD TABLE AS learnlog_old_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER learnlog_reads_trunc AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION learnlog_notify_all()",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(NOTIFY_LEARNERS)
    op.execute(NOTIFY_ALL)
    for table in TABLES:
        for statement in _triggers(table, "learnlog_notify_learners"):
            op.execute(statement)
    for statement in _triggers("collections", "learnlog_notify_all"):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*TABLES, "collections"):
        for name in ("ins", "upd", "del", "trunc"):
            op.execute(f"DROP TRIGGER IF EXISTS learnlog_reads_{name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS learnlog_notify_learners()")
    op.execute("DROP FUNCTION IF EXISTS learnlog_notify_all()")
