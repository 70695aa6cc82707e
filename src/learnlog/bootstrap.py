"""The one composition root: settings → engines, cache, writer, services.

Nothing is built at import time. `bootstrap(settings)` returns a `Runtime` that the app
factory, the CLI and the tests use alike; `Runtime.close()` releases everything.
"""

from __future__ import annotations

import gc
import logging
import secrets
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import jwt
import orjson
from anyio import CapacityLimiter
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .domain.keys import ContextMode, SummaryKey
from .jobs.context import Jobs
from .jobs.outbox import OutboxLoop
from .service import logger as logger_service
from .service.ports import ServiceContext
from .service.reads import Structures, cached_fields, view_fields
from .service.viewer import prefetch
from .service.writer import CommandBus, Writer
from .service.writer_link import WriterClient
from .settings import Settings
from .store import migrate
from .store.aio import AsyncReaders, conninfo
from .store.cache import StatusCache
from .store.db import make_engine, read_with_retry, sqlite_file
from .store.fastsql import Plan, run_plan
from .store.readcache import NoticeCache, ReadCache, learner_token, sqlite_token
from .store.schema import meta
from .store.uow import COUNTER_KEY, BatchUnitOfWork

T = TypeVar("T")
log = logging.getLogger(__name__)


def _prefetch(uow: BatchUnitOfWork, ctx: ServiceContext, commands: Sequence[Any]) -> None:
    """Load what a write batch reads, for both API families, before applying it."""
    prefetch(uow, ctx, commands)
    logger_service.prefetch(uow, ctx, commands)


def _meta_value(engine: Engine, key: str, default: str) -> str:
    """Read a meta value, storing `default` first if it has none (race-safe)."""
    insert = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
    with engine.begin() as conn:
        conn.execute(insert(meta).values(key=key, value=default).on_conflict_do_nothing())
        return str(conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one())


@dataclass
class Runtime:
    """Everything a running instance holds."""

    settings: Settings
    engine: Engine
    read_engine: Engine
    ctx: ServiceContext
    writer: CommandBus
    secret: str  # signs certificates and local tokens; the API's authenticator checks them
    cache: StatusCache | None
    structures: Structures = field(default_factory=Structures)
    outbox_loop: OutboxLoop | None = None
    read_limiter: CapacityLimiter | None = None
    exports_dir: Path = Path("exports")
    _here: Connection | None = None  # SQLite: the event loop's own read connection
    readers: AsyncReaders | None = None  # PostgreSQL: the event loop's own connections
    answers: ReadCache | None = None  # PostgreSQL: hot reads' answers (store/readcache.py)
    noted: NoticeCache | None = None  # SQLite: the same, kept true by notices

    @property
    def jobs(self) -> Jobs:
        """What outbox handlers work with."""
        return Jobs(self.writer, self.read_engine, self.exports_dir,
                    round(self.settings.outbox_lease_seconds * 1000),
                    recompute=self.recompute_courses)

    def recompute_courses(self, dataset: str, courses: Sequence[str], *,
                          engine: str | None = None,
                          start: Callable[[str], Any] | None = None) -> bool:
        """Recompute courses' tracking-log statistics from the events kept for them (after
        a course structure changed), on `engine` (default: the configured one) started by
        `start` (default: `analytics_engine`). Nothing to do, and no engine started, when
        no logs of these courses were ingested; returns whether any was recomputed."""
        from .analytics.ingest import ingested_courses, recompute_courses, time_rules

        name = engine or self.settings.analytics_engine
        with self.read_engine.connect() as conn:
            held = ingested_courses(conn, dataset, name) & set(courses)
        if not held:
            return False
        try:
            runner = (start or (lambda n: analytics_engine(self.settings, n)))(name)
        except ImportError as error:  # retrying would not install it
            log.error("statistics of %s not recomputed after a structure change: the %s "
                      "engine is not installed in this process (%s); pip install "
                      "'learnlog[spark]' or set LEARNLOG_ANALYTICS_ENGINE=duckdb",
                      ", ".join(sorted(held)), name, error)
            return False
        try:
            recompute_courses(self.engine, runner, analytics_dir(self.settings),
                              sorted(held), dataset=dataset, staff=self.settings.staff,
                              completed_at=self.settings.video_completed_coverage,
                              rules=time_rules(self.settings))
        finally:
            runner.close()
        return True

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run a read in a worker thread on a pooled read connection.

        At most `db_pool_size` reads run at once: a request past that waits here, on the
        event loop, instead of in a thread that would open and close an overflow
        connection (on PostgreSQL a new backend process for every such read).
        """
        return await self.off_loop(read_with_retry, self.read_engine, fn)

    def _loop_connection(self) -> Connection:
        """SQLite: this process's own read connection of the event loop (opened once)."""
        if self._here is None:
            self._here = self.read_engine.connect()
        return self._here

    async def read_fast(self, fn: Callable[[Connection], T]) -> T:
        """Run a short read: on SQLite right here on the event loop, on this process's own
        read connection (the file is mapped: an indexed lookup costs microseconds, less
        than the hand-off to a thread would); elsewhere as `read` does."""
        if self.read_engine.dialect.name != "sqlite":
            return await self.read(fn)
        conn = self._loop_connection()
        try:
            return fn(conn)
        finally:
            if conn.in_transaction():
                conn.rollback()

    async def read_plan(self, make: Callable[[str], Plan[T]]) -> T:
        """Run a read plan (`store.fastsql.Plan`, built by `make` for a dialect) the
        fastest way the store allows, without leaving the event loop: on SQLite on this
        process's own mapped read connection, on PostgreSQL on this loop's own async
        connections (`store.aio`)."""
        if self.read_engine.dialect.name == "sqlite":
            return run_plan(self._loop_connection(), make("sqlite"))
        return await self._readers().run(lambda: make("postgresql"))

    def _readers(self) -> AsyncReaders:
        if self.readers is None:
            self.readers = AsyncReaders(self.settings.database_url,
                                        self.settings.db_pool_size)
        return self.readers

    async def read_answer(self, dataset: str, user_id: str, key: Hashable,
                          make: Callable[[str], Plan[Any]]) -> Any:
        """`read_plan`'s answer about one learner, to be written into a response as it is:
        on PostgreSQL its JSON already encoded (an `orjson.Fragment`), from this worker's
        memory when it holds it and it is true (`store/readcache.py`; `key` names the read
        among the learner's), else read and kept; on SQLite the same, kept true by the
        notice table (`NoticeCache`), read on this process's own read connection."""
        if self.settings.read_cache_mb == 0:
            return await self.read_plan(make)
        if self.read_engine.dialect.name == "sqlite":
            if self.noted is None:
                # The loop's own read connection: it only reads, so its data_version
                # moves with every writer's commit; no second connection is held.
                self.noted = NoticeCache(
                    lambda: self._loop_connection().connection.driver_connection,
                    self.settings.read_cache_mb << 20, owned=False)
            conn = self._loop_connection()
            return orjson.Fragment(self.noted.answer(
                sqlite_token(dataset, user_id), key,
                lambda: run_plan(conn, make("sqlite")), orjson.dumps))
        if self.answers is None:
            self.answers = ReadCache(conninfo(self.settings.database_url),
                                     self.settings.read_cache_mb << 20)
        return orjson.Fragment(await self.answers.answer(
            self._readers().run, learner_token(dataset, user_id), key,
            lambda: make("postgresql"), orjson.dumps))

    async def cached_view_fields(self, cache: StatusCache, keys: list[SummaryKey]
                                 ) -> dict[SummaryKey, dict[str, Any]]:
        """The read fields of these summaries (view/read with the cache on): from Redis,
        read on the event loop, when it holds them all; else from the database in a
        thread, back-filling the cache there (store/cache.py says when that is safe)."""
        lookup = await cache.get_many_async(keys)
        if lookup.found is not None:
            return lookup.found
        return await self.read(lambda conn: view_fields(conn, cache, keys, lookup))

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking read work (database or cache) in a thread, within the read limit."""
        if self.read_limiter is None:
            self.read_limiter = CapacityLimiter(self.settings.db_pool_size)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.read_limiter)

    def start(self, *, writer_thread: bool = True) -> None:
        """Start the background parts: the writer thread (unless a loop of the caller's
        runs the writer: the writer host's) and the in-process outbox loop."""
        if writer_thread:
            self.writer.start()
        if self.settings.process_outbox and self.outbox_loop is None:
            loop = OutboxLoop(self.engine, self.jobs, self.settings.outbox_poll_seconds)
            self.outbox_loop = loop
            self.writer.on_queued_work = loop.wake
            loop.start()

    def close(self) -> None:
        if self.answers is not None:
            self.answers.close()
        if self.noted is not None:
            self.noted.close()
        if self.readers is not None:
            self.readers.close()
        if self._here is not None:
            self._here.close()
            self._here = None
        if self.outbox_loop is not None:
            self.outbox_loop.stop()
            self.outbox_loop = None
        self.writer.stop()
        if self.cache is not None:
            self.cache.close()
        self.engine.dispose()
        self.read_engine.dispose()


def _write_through(cache: StatusCache) -> Any:
    """After each commit, before its requests are answered, put the batch's summaries in
    the cache (erased ones marked so); when Redis cannot take them, the cache makes sure
    no process serves an older value before this returns (decision 0016)."""
    def after_commit(uow: BatchUnitOfWork) -> None:
        cache.write_through((key, 0, None) if entry is None else
                            (key, entry[1], cached_fields(entry[0]))
                            for key, entry in uow.changed_summaries.items())
    return after_commit


def freeze_startup() -> None:
    """A server process, once started: move every object start-up left alive (modules,
    the app and its routes, schemas, the runtime) out of the garbage collector's reach.
    Its full passes then walk only what requests left behind, instead of hundreds of
    thousands of objects that never die; measured (SQLite, quick runs): `PUT
    trackprogress` p99 63 -> 33-40 ms and 37 % -> 45-48 % of the FastAPI ceiling."""
    gc.collect()
    gc.freeze()


def signer(secret: str) -> Any:
    """Signs certificate payloads as compact JWS (HS256 with the instance secret)."""
    def sign(payload: Mapping[str, Any]) -> str:
        return jwt.encode(dict(payload), secret, algorithm="HS256")
    return sign


def _beside_database(settings: Settings, chosen: str, folder: str) -> Path:
    """A folder for this instance's files: the chosen one, else `folder` beside the SQLite
    file, else `./folder` (absolute: paths under it are stored)."""
    if chosen:
        return Path(chosen).resolve()
    database = sqlite_file(settings.database_url)
    if database is not None:
        return Path(database).resolve().parent / folder
    return Path(folder).resolve()


def exports_dir(settings: Settings) -> Path:
    """Where export files go (setting `exports_dir`)."""
    return _beside_database(settings, settings.exports_dir, "exports")


def analytics_dir(settings: Settings) -> Path:
    """Where parsed tracking-log events are kept (setting `analytics_dir`)."""
    return _beside_database(settings, settings.analytics_dir, "analytics")


def analytics_engine(settings: Settings, name: str, master: str | None = None) -> Any:
    """The analytics engine of that name (duckdb or spark), working under `analytics_dir`
    with the configured limits. Raises ImportError when its package is missing."""
    from .analytics.engines import open_engine

    return open_engine(name, analytics_dir(settings) / name / "work",
                       memory_limit=settings.analytics_memory_limit,
                       threads=settings.analytics_threads,
                       master=master or settings.spark_master)


def bootstrap(settings: Settings, *, run_migrations: bool = True) -> Runtime:
    """Build a runtime from settings (migrating the database first, unless told not to)."""
    engine = make_engine(settings.database_url, pool_size=settings.writer_lanes + 1)
    read_engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                              writer=False)
    if run_migrations:
        migrate.upgrade(engine)
    instance_id = settings.instance_id or _meta_value(engine, "instance_id", uuid.uuid4().hex)
    secret = settings.jwt_secret or _meta_value(engine, "jwt_secret", secrets.token_urlsafe(48))
    _meta_value(engine, COUNTER_KEY, "0")
    ctx = ServiceContext(mode=ContextMode(settings.context_mode), instance_id=instance_id,
                         implicit_enrolment=settings.implicit_enrolment,
                         max_time_spent_delta=settings.max_time_spent_delta,
                         sign=signer(secret))
    # The instance id is one per database: two databases sharing a Redis never share keys.
    # The cache's epoch lives in this database; it changes it through the writer engine.
    cache = (StatusCache(settings.redis_url, f"{settings.redis_prefix}{instance_id}:",
                         engine, settings.redis_retry_seconds)
             if settings.redis_url else None)
    writer: CommandBus
    if settings.writer_socket:  # a worker of `learnlog serve`: the writer host writes
        writer = WriterClient(settings.writer_socket)
        settings = settings.model_copy(update={"process_outbox": False})
    else:
        writer = Writer(engine, ctx, max_batch=settings.writer_max_batch,
                        lanes=settings.writer_lanes, prefetch=_prefetch,
                        after_commit=_write_through(cache) if cache is not None else None)
    return Runtime(settings, engine, read_engine, ctx, writer, secret, cache,
                   exports_dir=exports_dir(settings))
