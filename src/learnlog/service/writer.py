"""The per-process writer: many requests, one transaction, one fsync (group commit).

Requests hand a `Command` (service/commands.py) to `Writer.submit`; one thread owns the
write connection, takes every command waiting (up to `max_batch`), applies them in one
`BatchUnitOfWork`, commits once and then resolves each request's future. A command that
fails is rolled back on its own and its caller gets the error; the others commit. If the
commit itself fails, each command is retried alone so one poison command cannot fail its
neighbours.

The writer learns what it needs of a command from the command protocol only (`exclusive`,
`learners()`); of the store it uses the engine and the batch unit of work. It applies
commands and settles futures; it holds no use case of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]
from sqlalchemy.exc import DBAPIError, OperationalError

from ..domain.errors import LearnlogError
from ..store.db import sqlite_file, unsynced
from ..store.uow import BatchUnitOfWork
from .commands import Command, Learner
from .ports import ServiceContext

log = logging.getLogger(__name__)
T = TypeVar("T")

Prefetch = Callable[[BatchUnitOfWork, ServiceContext, list[Command]], None]
AfterCommit = Callable[[BatchUnitOfWork], None]


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


Reply = tuple[int, bool, Any]  # (the caller's number for the command, ok, result or error)


class ReplySink(Protocol):
    """Where the outcomes of commands that came from another process go (the writer
    host's connection to a server worker, service/writer_link.py): one call per batch."""

    def deliver(self, replies: list[Reply]) -> None: ...


class CommandBus(Protocol):
    """What callers use of a writer: `Writer` itself, or in a server worker whose writes a
    writer host applies, `writer_link.WriterClient`."""

    on_queued_work: Callable[[], None] | None
    batches: int
    commands: int
    cpu_seconds: float
    batch_sizes: dict[int, int]

    def start(self) -> None: ...

    def stop(self) -> None: ...

    async def submit(self, command: Command) -> Any: ...

    def submit_future(self, command: Command) -> Future[Any]: ...

    def run_many(self, commands: Sequence[Command]) -> list[Future[Any]]: ...

    def run_sync(self, command: Command) -> Any: ...


@dataclass
class Job:
    """A queued command and where its outcome goes: a thread future, an asyncio one, or
    a reply sink (numbered by `ident`)."""

    command: Command
    future: Future[Any] | asyncio.Future[Any] | None
    loop: asyncio.AbstractEventLoop | None = None
    sink: ReplySink | None = None
    ident: int = 0


class Writer:
    """Applies commands in batches on one connection; thread-safe `submit`."""

    def __init__(self, engine: Engine, ctx: ServiceContext, *, max_batch: int = 512,
                 lanes: int = 1,
                 prefetch: Prefetch | None = None,
                 after_commit: AfterCommit | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.engine = engine
        self.ctx = ctx
        self.max_batch = max_batch
        # PostgreSQL: batches on `lanes` connections at once (one folds while another
        # waits for its commit); its learner locks order two batches of one learner.
        # SQLite takes one writer at a time: one lane.
        self.lanes = lanes if engine.dialect.name == "postgresql" else 1
        self.prefetch = prefetch
        self.after_commit = after_commit
        self.clock = clock
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lanes: list[threading.Thread] = []
        self._stats = threading.Lock()
        self._turn = WriterTurn.for_engine(engine)
        # SQLite file: the commit writes the WAL and a syncer thread makes it durable
        # (one fsync for every batch committed meanwhile) before anyone is answered.
        self.syncer = Syncer.for_engine(engine, self)
        self.on_queued_work: Callable[[], None] | None = None
        # Set by a loop that runs the writer itself: called after a command is queued.
        self.wake: Callable[[], None] | None = None
        self.batches = 0
        self.cpu_seconds = 0.0  # the writer thread's own CPU time
        self.commands = 0
        self.batch_sizes: dict[int, int] = {}

    def start(self) -> None:
        """Start the writer's threads (and the syncer that answers their batches)."""
        self.start_syncer()
        if self._thread is None:
            self._lanes = [threading.Thread(target=self._run, name=f"learnlog-writer-{n}",
                                            daemon=True) for n in range(self.lanes)]
            self._thread = self._lanes[0]
            for lane in self._lanes:
                lane.start()

    def start_syncer(self) -> None:
        """For a loop that runs the writer itself (the writer host): answer batches once
        the WAL is synced, on the syncer's thread."""
        if self.syncer is not None:
            self.syncer.start()

    def stop_syncer(self) -> None:
        """Sync and answer what has been committed, and stop the syncer."""
        if self.syncer is not None:
            self.syncer.stop()

    def stop(self) -> None:
        if self._thread is not None:
            for _ in self._lanes:
                self._queue.put(None)
            for lane in self._lanes:
                lane.join(timeout=30)
            self._thread = None
            self._lanes = []
        self.stop_syncer()  # what was committed is made durable and answered first
        self._turn.close()

    def submit_future(self, command: Command) -> Future[Any]:
        """Queue a command from any thread; the future resolves after its batch committed."""
        future: Future[Any] = Future()
        self._queue.put(Job(command, future))
        if self.wake is not None:
            self.wake()
        return future

    async def submit(self, command: Command) -> Any:
        """Apply a command durably and return its result (awaitable).

        The outcomes of a whole batch reach the event loop in one hand-off, not one
        cross-thread wake-up per request.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(Job(command, future, loop))
        if self.wake is not None:
            self.wake()
        return await future

    def take_queued(self) -> list[Job]:
        """The commands queued in this process, without waiting (for a loop that runs the
        writer itself instead of `start`: the writer host's, service/writer_link.py)."""
        jobs: list[Job] = []
        _take(self._queue, jobs, self.max_batch)  # no stop mark comes without a thread
        return jobs

    def run_many(self, commands: Sequence[Command]) -> list[Future[Any]]:
        """Queue several commands at once (they usually share a batch); one future each.
        Without the writer thread (or a loop of its own) they are applied here, as one
        batch."""
        if self._thread is not None or self.wake is not None:
            return [self.submit_future(command) for command in commands]
        jobs = [Job(command, Future()) for command in commands]
        self.process(jobs)
        return [job.future for job in jobs]  # type: ignore[misc]

    def run_sync(self, command: Command) -> Any:
        """Apply a command durably from synchronous code (CLI, jobs)."""
        if self._thread is None and self.wake is None:
            return self._apply([Job(command, Future())], single=True)[0]
        return self.submit_future(command).result()

    # -- the loop -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            stop = _take(self._queue, jobs, self.max_batch)
            self.process(jobs)
            if stop:
                return

    def process(self, jobs: list[Job]) -> None:
        group: list[Job] = []
        for job in jobs:
            if job.command.exclusive:
                self._deliver(group)
                self._deliver([job])
                group = []
            else:
                group.append(job)
        self._deliver(group)

    def _deliver(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        try:
            self._apply(jobs)
        except Exception as batch_error:  # the commit failed: retry each command alone
            if len(jobs) == 1:
                _fail(jobs[0], batch_error)
                return
            log.warning("batch of %d failed (%s); retrying one by one", len(jobs), batch_error)
            for job in jobs:
                try:
                    self._apply([job])
                except Exception as error:
                    _fail(job, error)

    def _apply(self, jobs: list[Job], *, single: bool = False) -> list[Any]:
        """Run one batch in one transaction; resolve futures after commit."""
        for attempt in range(5):
            try:
                return self._apply_once(jobs, single=single)
            except OperationalError as error:  # deadlock, serialisation, busy: try again
                if attempt == 4 or not _retryable(error):
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _apply_once(self, jobs: list[Job], *, single: bool) -> list[Any]:
        started = time.thread_time()
        later = self.syncer is not None and not single and self.syncer.running
        try:
            with self._turn:  # held for the transaction only, not for what follows it
                uow, outcomes = self._transaction(jobs, single=single, relaxed=later)
            if later:
                assert self.syncer is not None
                self.syncer.hand(jobs, uow, outcomes)  # answered once it is on disk
                return []
            return self._answer(jobs, uow, outcomes, single=single)
        finally:
            spent = time.thread_time() - started
            with self._stats:
                self.cpu_seconds += spent

    def _transaction(self, jobs: list[Job], *, single: bool, relaxed: bool = False
                     ) -> tuple[BatchUnitOfWork, list[tuple[bool, Any]]]:
        """Apply the batch in one transaction and commit it (`relaxed`: SQLite writes the
        WAL without syncing it; the syncer does, before the batch is answered)."""
        outcomes: list[tuple[bool, Any]] = []
        opened = unsynced(self.engine) if relaxed else self.engine.connect()
        with opened as conn, conn.begin() as transaction:
            uow = BatchUnitOfWork(conn, self.ctx.instance_id, self.clock())
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                _lock_learners(conn, set().union(*(j.command.learners() for j in jobs)))
            if self.prefetch is not None:
                self.prefetch(uow, self.ctx, [j.command for j in jobs])
            for job in jobs:
                uow.begin_command()
                try:
                    result = job.command.apply(uow, self.ctx)
                except LearnlogError as error:
                    uow.rollback_command()
                    outcomes.append((False, error))
                    continue
                except Exception as error:
                    if single:
                        raise
                    uow.rollback_command()
                    log.exception("command %r failed", job.command)
                    outcomes.append((False, error))
                    continue
                uow.commit_command()
                outcomes.append((True, result))
            uow.flush(transaction.commit if postgres and uow.pipelinable() else None)
        return uow, outcomes

    def _answer(self, jobs: list[Job], uow: BatchUnitOfWork,
                outcomes: list[tuple[bool, Any]], *, single: bool) -> list[Any]:
        """After the commit: after-commit actions (the cache's write-through), wake the
        outbox, then hand every request its outcome."""
        with self._stats:
            self.batches += 1
            self.commands += len(jobs)
            bucket = 1 << (len(jobs) - 1).bit_length()
            self.batch_sizes[bucket] = self.batch_sizes.get(bucket, 0) + 1
        if self.after_commit is not None:
            _quietly(lambda: self.after_commit(uow))  # type: ignore[misc]
        if uow.queued_work and self.on_queued_work is not None:
            self.on_queued_work()
        if single:
            for ok, value in outcomes:
                if not ok:
                    raise value
            return [value for _, value in outcomes]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, bool, Any]]] = {}
        by_sink: dict[ReplySink, list[Reply]] = {}
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if job.sink is not None:
                by_sink.setdefault(job.sink, []).append((job.ident, ok, value))
            elif job.loop is not None:
                by_loop.setdefault(job.loop, []).append((job.future, ok, value))
            else:
                _settle(job.future, ok, value)  # type: ignore[arg-type]
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(_settle_all, settled)
        for sink, replies in by_sink.items():
            _quietly(lambda: sink.deliver(replies))  # noqa: B023 - called right here
        return []


class Syncer:
    """Makes committed SQLite batches durable, then answers them, on a thread of its own.

    The writer commits a batch with `synchronous=NORMAL` (SQLite appends the batch to the
    WAL without an fsync) and hands it here; this thread fsyncs the WAL once for every
    batch handed to it meanwhile, and only then runs the batch's after-commit actions and
    answers its requests, in commit order. An acknowledged write is on disk exactly as
    with `synchronous=FULL`; the writer folds the next batch while the disk syncs. If the
    fsync fails, the batches it covered are answered with the error: not acknowledged.
    """

    def __init__(self, writer: Writer, wal: str, sync: Callable[[str], None] | None = None
                 ) -> None:
        self.writer = writer
        self.wal = wal
        self.sync = sync or _fsync_file
        self._queue: queue.SimpleQueue[tuple[list[Job], BatchUnitOfWork,
                                             list[tuple[bool, Any]]] | None] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None

    @classmethod
    def for_engine(cls, engine: Engine, writer: Writer) -> Syncer | None:
        database = sqlite_file(engine.url)
        return None if database is None else cls(writer, database + "-wal")

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="learnlog-syncer",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def hand(self, jobs: list[Job], uow: BatchUnitOfWork,
             outcomes: list[tuple[bool, Any]]) -> None:
        self._queue.put((jobs, uow, outcomes))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batches = [first]
            stop = _take(self._queue, batches, sys.maxsize)
            try:
                self.sync(self.wal)
            except OSError as error:
                log.error("fsync of %s failed (%s): %d batches not acknowledged",
                          self.wal, error, len(batches))
                for jobs, _, _ in batches:
                    for job in jobs:
                        _fail(job, error)
            else:
                for jobs, uow, outcomes in batches:
                    self.writer._answer(jobs, uow, outcomes, single=False)
            if stop:
                return


def _fsync_file(path: str) -> None:
    """fsync a file by name (the WAL, opened afresh: SQLite may have made a new one)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # checkpointed and removed: the database file holds it
        fd = os.open(path[: -len("-wal")], os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriterTurn:
    """Whose turn it is to write an SQLite file, across processes: an OS file lock.

    SQLite's own busy handler makes a waiting writer sleep in growing steps (up to 100 ms),
    which turned two worker processes into a lock convoy (p99 over a second). A blocking
    `flock` wakes the waiter the moment the holder releases it. PostgreSQL needs no turn:
    it locks per learner (`_lock_learners`).
    """

    def __init__(self, path: str | None) -> None:
        self._fd: int | None = None
        if path is not None and fcntl is not None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @classmethod
    def for_engine(cls, engine: Engine) -> WriterTurn:
        database = sqlite_file(engine.url)
        return cls(None if database is None else database + ".writer-lock")

    def __enter__(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _take(waiting: queue.SimpleQueue[T | None], taken: list[T], limit: int) -> bool:
    """Move what waits in `waiting` now onto `taken`, up to `limit` in all; True when the
    stop mark (None) was met."""
    while len(taken) < limit:
        try:
            item = waiting.get_nowait()
        except queue.Empty:
            return False
        if item is None:
            return True
        taken.append(item)
    return False


LOCK_LEARNERS = ("SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT "
                 "hashtextextended(k, 0) AS h FROM unnest(%b::text[]) k ORDER BY 1) locks")


def _lock_learners(conn: Any, learners: set[Learner]) -> None:
    """Serialise writers of the same learner across processes, in one fixed order (one
    prepared statement on the driver: it runs once per batch)."""
    if learners:
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute(LOCK_LEARNERS, (sorted(f"{d}\x1f{u}" for d, u in learners),),
                        prepare=True)


def _retryable(error: DBAPIError) -> bool:
    message = str(error.orig).lower()
    return any(s in message for s in ("deadlock", "could not serialize", "locked", "busy"))


def _settle(future: Future[Any] | asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # a cancelled request (the client went away)
        return
    if ok:
        future.set_result(value)
    elif isinstance(value, StopIteration):
        # asyncio futures refuse StopIteration (the request would wait forever): a bug
        # that raised it must still fail its request.
        future.set_exception(RuntimeError(f"internal error: {value!r}"))
    else:
        future.set_exception(value)


def _settle_all(settled: list[tuple[Any, bool, Any]]) -> None:
    """Runs on the event loop: hand every request of a batch its outcome."""
    for future, ok, value in settled:
        _settle(future, ok, value)


def _fail(job: Job, error: BaseException) -> None:
    if job.sink is not None:
        sink = job.sink
        _quietly(lambda: sink.deliver([(job.ident, False, error)]))
    elif job.future is None:
        return
    elif job.loop is not None:
        job.loop.call_soon_threadsafe(_settle, job.future, False, error)
    else:
        _settle(job.future, False, error)


def _quietly(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception:  # after commit nothing may fail the request; the data is safe
        log.exception("after-commit action failed")
