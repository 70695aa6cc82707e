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
from learnlog.store.fastsql import SESSION_PK, SUMMARY_PK, pg_many_sql, view_sql, where_sql
from learnlog.store.schema import collections, enrolments, sessions, summaries
from tests.support import Api, leaf, unit

HOT_TABLES = ("summaries", "sessions", "enrolments", "attempts", "collections")


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
        (view_sql("postgresql", 0), ("d", "u", "k", "x", ["c1", "c2"])),
        (where_sql("postgresql", enrolments, ("dataset", "user_id")), ("d", "u")),
        (where_sql("postgresql", collections, ("dataset", "collection_id")), ("d", "k")),
    ]
    for sql, params in cases:
        _assert_indexed(_plan(url, sql, params), sql)


def test_the_check_can_fail(pg_runtime: Runtime) -> None:
    """A query on an unindexed column is caught (the check is not vacuous)."""
    sql = "SELECT * FROM summaries WHERE progress > %(p)s"
    plan = _plan(pg_runtime.settings.database_url, sql, {"p": 0.5})
    with pytest.raises(AssertionError):
        _assert_indexed(plan, sql)
