"""Hot queries are indexed lookups: an accidental sequential scan fails the build.

Every SELECT that the read routes issue through SQLAlchemy is captured, then EXPLAINed on
PostgreSQL with sequential scans disabled: a query that no index can serve still shows a
Seq Scan there, however small the table. The writer's driver-level statements are
EXPLAINed the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from learnlog.bootstrap import Runtime, bootstrap
from learnlog.settings import Settings
from learnlog.store.fastsql import (
    SESSION_PK,
    SUMMARY_PK,
    latest_sql,
    pg_many_sql,
    pg_summaries_with_sessions_sql,
    view_sql,
    where_sql,
)
from learnlog.store.repositories import LATEST_FIRST, MARK_COLUMNS, TRY_PK
from learnlog.store.schema import collections, enrolments, item_attempts, sessions, summaries, tries
from tests.support import Api, leaf, unit

HOT_TABLES = ("summaries", "sessions", "enrolments", "attempts", "collections", "tries",
              "item_attempts")


def _plan(url: str, sql: str, params: Any) -> str:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("SET enable_seqscan = off")
        rows = conn.execute(f"EXPLAIN {sql}", params).fetchall()
    return "\n".join(r[0] for r in rows)


def _assert_indexed(plan: str, sql: str) -> None:
    for table in HOT_TABLES:
        assert f"Seq Scan on {table}" not in plan, f"{sql}\n{plan}"


@pytest.fixture
def pg_runtime(pg_url_factory: Callable[[], str]) -> Any:
    rt = bootstrap(Settings(database_url=pg_url_factory(), _env_file=None))  # type: ignore[call-arg]
    rt.start()
    yield rt
    rt.close()


def test_read_routes_use_indexes(pg_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from learnlog.api.app import create_app
    from learnlog.api.auth import mint

    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    with TestClient(create_app(pg_runtime.settings, pg_runtime)) as client:
        api = Api(client, mint(pg_runtime.secret, "admin", ["admin"]), pg_runtime.secret)
        api.put_collection("k", [unit("u1", leaf("c1"), leaf("c2")), leaf("c3", optional=True)])
        for user in ("a", "b"):
            api.start(user, "c1", "k", "x")
            api.submit(user, "c2", "k", "x", assessments=[
                {"eid": "ASSESS", "ets": 1, "edata": {"item": {"id": "q", "maxscore": 1},
                                                      "score": 1}}])
        event.listen(pg_runtime.read_engine, "before_cursor_execute", capture)
        api.read("a", ["c1", "c2", "c3"], "k", "x")
        api.read("a", ["c1", "c2", "c3"])  # several scopes: the VALUES join
        api.assessments("a", ["c1", "c2"], "k", "x")
        api.summaries("a")
        api.summary("a", "k", "x")
        event.remove(pg_runtime.read_engine, "before_cursor_execute", capture)
    assert len(captured) >= 2  # assessment/read and the like still go through Core
    url = pg_runtime.settings.database_url
    for sql, params in captured:
        _assert_indexed(_plan(url, sql, params), sql)


def test_driver_level_statements_use_indexes(pg_runtime: Runtime) -> None:
    """The statements the writer and the hot reads run on the driver connection."""
    url = pg_runtime.settings.database_url
    cases: list[tuple[str, Any]] = [
        (pg_many_sql(summaries, SUMMARY_PK),
         {n: ["d", "e"] for n in SUMMARY_PK}),
        (pg_many_sql(sessions, SESSION_PK), {n: ["d", "e"] for n in SESSION_PK}),
        (pg_summaries_with_sessions_sql(), {n: ["d", "e"] for n in SUMMARY_PK}),
        (view_sql("postgresql", 0), ("d", "u", "k", "x", ["c1", "c2"])),
        (where_sql("postgresql", enrolments, ("dataset", "user_id")), ("d", "u")),
        (where_sql("postgresql", collections, ("dataset", "collection_id")), ("d", "k")),
        (pg_many_sql(tries, SUMMARY_PK), {n: ["d", "e"] for n in SUMMARY_PK}),
        (latest_sql("postgresql", item_attempts, TRY_PK, LATEST_FIRST, 0),
         {**{n: ["d", "e"] for n in SUMMARY_PK}, "mastery_level": [1, 2], "limit_": 10}),
        (latest_sql("postgresql", item_attempts, TRY_PK, LATEST_FIRST, 0, MARK_COLUMNS),
         {**{n: ["d", "e"] for n in SUMMARY_PK}, "mastery_level": [1, 2], "limit_": 10}),
    ]
    for sql, params in cases:
        _assert_indexed(_plan(url, sql, params), sql)


def test_the_check_can_fail(pg_runtime: Runtime) -> None:
    """A query on an unindexed column is caught (the check is not vacuous)."""
    sql = "SELECT * FROM summaries WHERE progress > %(p)s"
    plan = _plan(pg_runtime.settings.database_url, sql, {"p": 0.5})
    with pytest.raises(AssertionError):
        _assert_indexed(plan, sql)


def test_a_tries_latest_attempts_are_read_from_the_index_on_sqlite(tmp_path: Any) -> None:
    """SQLite reads a try's latest attempts as an index range in order: no scan, no sort,
    so a try with 10,000 attempts costs its window, not its length."""
    import sqlite3

    from learnlog.store import migrate
    from learnlog.store.db import make_engine

    path = tmp_path / "plan.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    for columns in ((), MARK_COLUMNS):
        sql = latest_sql("sqlite", item_attempts, TRY_PK, LATEST_FIRST, 2, columns)
        with sqlite3.connect(path) as conn:
            plan = "\n".join(str(r[-1]) for r in conn.execute(
                f"EXPLAIN QUERY PLAN {sql}", ["d", "u", "k", "x", "c", 1] * 2 + [10]))
        assert "INDEX ix_item_attempts_latest (dataset=? AND user_id=?" in plan, plan
        assert "TEMP B-TREE" not in plan and "SCAN t" not in plan, plan
