"""PostgreSQL reads on the event loop: a few autocommit psycopg connections of one loop.

The hot reads (view/read, summary/list) are read plans (`fastsql.Plan`): a thread hop and
a pooled SQLAlchemy checkout per read cost more CPU than the query itself (2026-12, this
machine: 479 µs of Python CPU per `view/read` at 64 concurrent requests through threads,
62 µs for the same query on a held connection). Here each worker process keeps up to
`size` connections of its own loop, prepared statements on them, no transaction open
between reads. A connection found dead is replaced and the read runs once more (a
restarted server), as `db.read_with_retry` does for blocking reads.

What this module must not do: write, or hold a connection across two loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from .db import normalise_url
from .fastsql import Plan, run_plan_async

T = TypeVar("T")


def conninfo(url: str) -> str:
    """The libpq URL of a learnlog database URL (no SQLAlchemy driver name)."""
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(
        hide_password=False)


class AsyncReaders:
    """Up to `size` read connections of the running event loop (created when needed)."""

    def __init__(self, url: str, size: int) -> None:
        self._conninfo = conninfo(url)
        self._size = size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free: asyncio.Semaphore | None = None
        self._idle: list[Any] = []
        self._open: list[Any] = []

    async def run(self, make: Callable[[], Plan[T]]) -> T:
        """Run the plan `make()` builds on one of this loop's connections; once more on a
        new connection if that one turns out dead."""
        import psycopg

        free = self._bind()
        async with free:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                try:
                    result = await run_plan_async(conn, make())
                except psycopg.OperationalError:
                    if not conn.closed and not conn.broken:
                        raise
                    self._drop(conn)
                    conn = await self._connect()
                    result = await run_plan_async(conn, make())
            except BaseException:
                if conn.closed or conn.broken:
                    self._drop(conn)
                else:
                    self._idle.append(conn)
                raise
            self._idle.append(conn)
            return result

    @property
    def connections(self) -> int:
        """How many connections are open now."""
        return len(self._open)

    def _bind(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._free is None:
            self.close()  # connections of another loop cannot be used on this one
            self._loop, self._free = loop, asyncio.Semaphore(self._size)
        return self._free

    async def _connect(self) -> Any:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        self._open.append(conn)
        return conn

    def _drop(self, conn: Any) -> None:
        if conn in self._open:
            self._open.remove(conn)
        conn.pgconn.finish()

    def close(self) -> None:
        """Close every connection (from any thread: no await needed)."""
        for conn in self._open:
            conn.pgconn.finish()
        self._open.clear()
        self._idle.clear()
        self._loop = self._free = None
