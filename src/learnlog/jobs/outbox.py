"""The outbox processor: durable work that may lag, at-least-once, idempotent handlers.

A row is claimed by moving its `available_at` into the future (one UPDATE that only one
process can win), handled, then deleted. A process that dies mid-way leaves the row to
be claimed again when the lease runs out. Handlers must be idempotent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select, update

from ..service.exports import TOPIC as EXPORT_REQUESTED
from ..service.group_aggregates import TOPIC as GROUP_MEMBER
from ..service.group_aggregates import RefreshMember
from ..service.viewer import RefreshCollection
from ..store import rows
from ..store.schema import outbox
from ..store.writer import Writer, now_ms
from .exports import export_requested

log = logging.getLogger(__name__)
LEASE_MS = 60_000
BATCH = 100


@dataclass(frozen=True, slots=True)
class Jobs:
    """What handlers work with: the writer, an engine for long reads (it never takes the
    write lock), and where export files go."""

    writer: Writer
    read_engine: Engine
    exports_dir: Path


Handler = Callable[[Jobs, str, Any], None]


def _structure_changed(jobs: Jobs, dataset: str, payload: Any) -> None:
    jobs.writer.run_sync(RefreshCollection(dataset, payload["collectionId"]))


def _group_member(jobs: Jobs, dataset: str, payload: Any) -> None:
    jobs.writer.run_sync(RefreshMember(dataset, payload["userId"]))


HANDLERS: dict[str, Handler] = {"structure.changed": _structure_changed,
                                EXPORT_REQUESTED: export_requested,
                                GROUP_MEMBER: _group_member}


def process_once(engine: Engine, jobs: Jobs) -> int:
    """Claim and handle what is due; returns how many rows were handled."""
    now = now_ms()
    with engine.connect() as conn:
        due = conn.execute(select(outbox.c.id).where(outbox.c.available_at <= now)
                           .order_by(outbox.c.id).limit(BATCH)).scalars().all()
    handled = 0
    for row_id in due:
        with engine.begin() as conn:
            won = conn.execute(update(outbox).where(
                outbox.c.id == row_id, outbox.c.available_at <= now).values(
                available_at=now + LEASE_MS, attempts=outbox.c.attempts + 1)).rowcount
            if not won:
                continue
            row = conn.execute(select(outbox).where(outbox.c.id == row_id)).mappings().one()
        handler = HANDLERS.get(row["topic"])
        try:
            if handler is not None:
                handler(jobs, row["dataset"], rows.loads(row["payload"]))
        except Exception:
            log.exception("outbox %s (%s) failed; it will be retried", row_id, row["topic"])
            continue
        with engine.begin() as conn:
            conn.execute(delete(outbox).where(outbox.c.id == row_id))
        handled += 1
    return handled


def pending(engine: Engine) -> int:
    """Rows waiting in the outbox (the queue depth metric)."""
    from sqlalchemy import func

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
