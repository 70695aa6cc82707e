"""Engines: SQLite (WAL, durable, busy timeout) and PostgreSQL (psycopg 3), one call each."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
READER_MMAP_BYTES = 1 << 34  # 16 GiB of address space; SQLite caps it where it must


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and use the psycopg 3 driver for them."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: str | URL) -> str | None:
    """The path of the SQLite file a database URL names; None for another engine or an
    in-memory database."""
    parsed = make_url(normalise_url(url) if isinstance(url, str) else url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


@contextmanager
def unsynced(engine: Engine) -> Iterator[Connection]:
    """SQLite: a connection of a writer engine whose commits append to the WAL without an
    fsync (`synchronous=NORMAL`); the caller makes them durable (or may lose them). Back
    to `FULL` before the connection returns to the pool."""
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        raw.execute("PRAGMA synchronous=NORMAL")
        try:
            yield conn
        finally:
            raw.execute("PRAGMA synchronous=FULL")


def make_engine(url: str, *, pool_size: int = 8, writer: bool = True) -> Engine:
    """Create an engine with the pragmas and pool learnlog relies on.

    On SQLite a writer engine takes the write lock when its transaction begins; a reader
    engine runs each statement on its own (WAL readers never wait for the writer).
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL is SQLite's default durability: the WAL is fsynced at every commit.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            if not writer:
                # Readers map the file instead of copying pages through read() calls: with
                # 10 million summaries the tree no longer fits the 2 MiB page cache of each
                # connection, and summary/list lost 30 % to syscalls. Address space only.
                cursor.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")
            cursor.close()

        if not writer:
            return engine

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Take the write lock at the start, so two processes never interleave a
            # read-modify-write (autocommit driver mode, explicit BEGIN).
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # Pre-ping costs a round trip per checkout (4.5 ms of a 5 ms read in a profile): the
    # writer checks out once per batch and keeps it; readers retry once instead
    # (`read_with_retry`) when a connection turns out to be dead.
    # Readers: the API never has more reads in flight than `pool_size` (Runtime.read), so
    # overflow connections are rare; a few are allowed for the CLI and the outbox.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size if writer else 2,
                         pool_pre_ping=writer)


def read_with_retry(engine: Engine, read: Callable[[Connection], T]) -> T:
    """Run a read on a pooled connection, once more on a new one if the first was dead."""
    for attempt in (1, 2):
        with engine.connect() as conn:
            try:
                return read(conn)
            except Exception as error:
                if attempt == 2 or not _dead(conn, error):
                    raise
                conn.invalidate()
    raise AssertionError("unreachable")


def _dead(conn: Connection, error: Exception) -> bool:
    """Whether an error means the connection is gone (also for driver-level calls)."""
    if isinstance(error, DBAPIError):
        return bool(error.connection_invalidated)
    if conn.dialect.name != "postgresql":
        return False
    import psycopg

    raw = conn.connection.driver_connection
    return isinstance(error, psycopg.OperationalError) or bool(getattr(raw, "closed", False))
