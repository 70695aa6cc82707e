"""Dead database connections are replaced without failing a request (PostgreSQL)."""

from __future__ import annotations

import psycopg
import pytest

from learnlog.bootstrap import Runtime
from learnlog.service.commands import Command
from tests.support import Api

pytestmark = pytest.mark.parametrize("engine", ["postgresql"])


def _kill_connections(runtime: Runtime) -> int:
    url = runtime.engine.url
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (url.database,)).fetchone()
    return int(killed[0]) if killed else 0


def test_reads_and_writes_survive_killed_connections(api: Api, runtime: Runtime) -> None:
    api.start("u1", "c1", "k", "x")
    api.update("u1", "c1", "k", "x", timespent=10, progress=30)
    assert api.one("u1", "c1", "k", "x")["progress"] == 30
    assert _kill_connections(runtime) >= 1
    assert api.one("u1", "c1", "k", "x")["progress"] == 30  # the read retried on a new one
    api.update("u1", "c1", "k", "x", timespent=10, progress=60)  # the writer pre-pings
    assert api.summaries("u1")[0]["status"] == 1
    row = api.one("u1", "c1", "k", "x")
    assert (row["progress"], row["timeSpent"]) == (60, 20.0)


class _Buggy(Command):
    """A command with a bug that raises StopIteration (a `next()` past the end)."""

    def apply(self, uow: object, ctx: object) -> None:
        next(iter(()))


def test_a_command_raising_stopiteration_fails_its_request_instead_of_hanging(
        runtime: Runtime) -> None:
    import asyncio

    async def submit() -> None:
        await asyncio.wait_for(runtime.writer.submit(_Buggy()), timeout=10)

    with pytest.raises(RuntimeError, match="internal error"):
        asyncio.run(submit())
