"""The outbox processor: durable work that may lag, at-least-once, idempotent handlers.

A process claims a batch of due rows in one statement by moving their `available_at` past
a lease (on PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED`, so several workers
never wait for each other or claim the same row). It handles them, then deletes the ones
that succeeded. A process that dies mid-batch leaves its rows to be claimed again when the
lease runs out; handlers are idempotent, so a second delivery changes nothing.

Topics whose work is a writer command (group figures, collection structure) are applied
as one batch of commands — one transaction for the batch — and a learner queued several
times in a batch is refreshed once. The topics are named in `service/topics.py`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from ..service.group_aggregates import RefreshMember
from ..service.topics import COURSE_STRUCTURE, EXPORT_REQUESTED, GROUP_MEMBER, STRUCTURE_CHANGED
from ..service.viewer import RefreshCollection
from ..service.writer import WriterTurn, now_ms
from ..store import rows
from ..store.db import unsynced
from ..store.schema import outbox
from .context import Jobs
from .course_structure import course_structure
from .exports import export_requested

log = logging.getLogger(__name__)
BATCH = 200


Handler = Callable[[Jobs, str, Any], None]
ToCommand = Callable[[str, Any], Any]

# Topics handled by one writer command each (batched together, deduplicated).
COMMANDS: dict[str, ToCommand] = {
    STRUCTURE_CHANGED: lambda dataset, p: RefreshCollection(dataset, p["collectionId"]),
    GROUP_MEMBER: lambda dataset, p: RefreshMember(dataset, p["userId"]),
}
# Topics handled one row at a time by a function (long work outside the writer).
HANDLERS: dict[str, Handler] = {EXPORT_REQUESTED: export_requested,
                                COURSE_STRUCTURE: course_structure}


@dataclass
class Stats:
    """What a processor has done (the worker reports it)."""

    handled: int = 0
    failed: int = 0
    lag_ms: list[int] = field(default_factory=list)  # of the last batch: claim time - queued


@contextmanager
def _bookkeeping(engine: Engine) -> Iterator[Connection]:
    """A transaction of the queue's own bookkeeping (claims, deletions of handled rows).

    On SQLite it waits for the writers' turn on the file (`WriterTurn`) rather than in
    SQLite's busy handler, whose sleeps grow to 100 ms and stall the writer, and it is
    committed without an fsync (`synchronous=NORMAL`): losing it to a power cut only
    makes its rows due again, and their handlers are safe to run twice."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    turn = WriterTurn.for_engine(engine)
    try:
        with unsynced(engine) as conn, turn, conn.begin():
            yield conn
    finally:
        turn.close()


def _any_due(engine: Engine, now: int) -> bool:
    """Whether a row is due. On SQLite read on the driver connection, outside SQLAlchemy's
    transaction (whose BEGIN IMMEDIATE would take the write lock just to look)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            raw: Any = conn.connection.driver_connection
            return raw.execute("SELECT 1 FROM outbox WHERE available_at <= ? LIMIT 1",
                               (now,)).fetchone() is not None
        return conn.execute(select(outbox.c.id).where(outbox.c.available_at <= now)
                            .limit(1)).first() is not None


def claim(engine: Engine, limit: int, lease_ms: int) -> list[dict[str, Any]]:
    """Take up to `limit` due rows for `lease_ms`, oldest first; no two processes get the
    same row while its lease runs."""
    now = now_ms()
    if not _any_due(engine, now):  # a look first: an empty poll takes no write lock
        return []
    due = (select(outbox.c.id).where(outbox.c.available_at <= now).order_by(outbox.c.id)
           .limit(limit).with_for_update(skip_locked=True))  # a no-op on SQLite
    with _bookkeeping(engine) as conn:
        claimed = conn.execute(
            update(outbox).where(outbox.c.id.in_(due.scalar_subquery()))
            .values(available_at=now + lease_ms, attempts=outbox.c.attempts + 1)
            .returning(outbox.c.id, outbox.c.dataset, outbox.c.topic, outbox.c.payload,
                       outbox.c.created_at)).mappings().all()
    return sorted((dict(r) for r in claimed), key=lambda r: r["id"])


def process_once(engine: Engine, jobs: Jobs, stats: Stats | None = None,
                 limit: int = BATCH) -> int:
    """Claim and handle one batch of due rows; returns how many rows were claimed."""
    claimed = claim(engine, limit, jobs.lease_ms)
    if not claimed:
        return 0
    now = now_ms()
    done: list[int] = []
    failed = 0
    # One command per distinct (topic, dataset, payload); the rows it stands for.
    commands: dict[tuple[str, str, str], tuple[Any, list[int]]] = {}
    for row in claimed:
        topic = row["topic"]
        key = (topic, row["dataset"], row["payload"])
        if key in commands:
            commands[key][1].append(row["id"])
            continue
        try:
            if topic in COMMANDS:
                commands[key] = (COMMANDS[topic](row["dataset"], rows.loads(row["payload"])),
                                 [row["id"]])
                continue
            handler = HANDLERS.get(topic)
            if handler is not None:
                handler(jobs, row["dataset"], rows.loads(row["payload"]))
            else:
                log.warning("outbox %s: no handler for topic %r; dropped", row["id"], topic)
        except Exception:
            log.exception("outbox %s (%s) failed; it will be retried", row["id"], topic)
            failed += 1
            continue
        done.append(row["id"])
    if commands:
        planned = list(commands.values())
        futures = jobs.writer.run_many([command for command, _ in planned])
        for (command, ids), future in zip(planned, futures, strict=True):
            error = future.exception()
            if error is None:
                done.extend(ids)
            else:
                log.error("outbox %s (%r) failed: %s; it will be retried", ids, command, error)
                failed += len(ids)
    if done:
        with _bookkeeping(engine) as conn:
            conn.execute(delete(outbox).where(outbox.c.id.in_(done)))
    if stats is not None:
        stats.handled += len(done)
        stats.failed += failed
        stats.lag_ms = [now - r["created_at"] for r in claimed]
    return len(claimed)


def pending(engine: Engine) -> int:
    """Rows waiting in the outbox (the queue depth metric)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())


class OutboxLoop:
    """Runs `process_once` every `interval` seconds in a thread until stopped."""

    def __init__(self, engine: Engine, jobs: Jobs, interval: float) -> None:
        self._engine, self._jobs, self._interval = engine, jobs, interval
        self._stop = threading.Event()
        self._due = threading.Event()
        self._thread = threading.Thread(target=self._run, name="learnlog-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._due.set()
        self._thread.join(timeout=30)

    def wake(self) -> None:
        """Work was just queued by this process: handle it now rather than at the next poll."""
        self._due.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.wait(self._interval)
            self._due.clear()
            if self._stop.is_set():
                return
            try:
                while process_once(self._engine, self._jobs) and not self._stop.is_set():
                    pass
            except Exception:
                log.exception("outbox loop error")
