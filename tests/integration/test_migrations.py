"""Migrations build exactly the schema the code declares, on both engines, idempotently."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from learnlog.store import migrate
from learnlog.store.db import make_engine
from learnlog.store.schema import metadata


def test_migrations_match_the_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # a second run changes nothing
        assert migrate.is_current(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_the_attempt_count_of_existing_tries_is_backfilled(database_url: str) -> None:
    """0008 counts the item attempts a try already has (totalattempts and new ordinals
    continue from it)."""
    engine = make_engine(database_url)
    key = "'d', 'u', 'k', 'x', 'ex1'"
    sync = "'p', 'i', 1, 0"
    try:
        migrate.upgrade(engine, "0007")
        with engine.begin() as conn:
            for level in (1, 2):
                conn.execute(text(
                    "INSERT INTO tries (dataset, user_id, collection_key, context_key, "
                    "content_id, mastery_level, criterion, started_at, ended_at, time_spent, "
                    f"complete, partition, instance_id, counter, updated_at) VALUES ({key}, "
                    f"{level}, '{{}}', 0, 0, 0, false, {sync})"))
            for n in range(3):
                conn.execute(text(
                    "INSERT INTO item_attempts (dataset, user_id, collection_key, context_key,"
                    " content_id, attempt_id, mastery_level, session_id, item, correct, "
                    "started_at, ended_at, time_spent, answer, complete, hinted, error, "
                    "history, ordinal, partition, instance_id, counter, updated_at) VALUES "
                    f"({key}, 'a{n}', 1, 's', 'q{n}', 1, 0, 0, 0, '{{}}', false, false, false,"
                    f" '[]', {n + 1}, {sync})"))
        migrate.upgrade(engine)
        with engine.connect() as conn:
            counts = dict(conn.execute(text(
                "SELECT mastery_level, attempt_count FROM tries")).all())
        assert counts == {1: 3, 2: 0}
    finally:
        engine.dispose()


def test_statistics_rows_stay_when_their_tables_are_clustered_by_key(
        database_url: str) -> None:
    """0013 rebuilds the statistics tables WITHOUT ROWID on SQLite, keeping their rows."""
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, "0012")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO stats_times (dataset, course_id, username, unit_id, day, "
                "seconds, sessions) VALUES ('d', 'c', 'ana', 'u1', '2025-03-03', 42.5, 2)"))
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text(
                "SELECT username, seconds, sessions FROM stats_times")).all() == [
                ("ana", 42.5, 2)]
            if engine.dialect.name == "sqlite":
                for (sql,) in conn.execute(text(
                        "SELECT sql FROM sqlite_master WHERE name LIKE 'stats_%'")):
                    assert sql.rstrip().upper().endswith("WITHOUT ROWID"), sql
    finally:
        engine.dispose()
