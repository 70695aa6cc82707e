"""Migrations build exactly the schema the code declares, on both engines, idempotently."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
