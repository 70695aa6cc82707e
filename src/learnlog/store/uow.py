"""The batch unit of work: one database transaction that many commands share.

The writer opens one `BatchUnitOfWork` per batch. Each command runs between
`begin_command()` and `commit_command()` / `rollback_command()`: what it stages is kept
apart until it succeeds, so a failing command leaves no trace while the others in the
batch still commit. The rows live in one repository per aggregate
(`store/repositories.py`: `uow.summaries`, `uow.assessments`, `uow.tries`,
`uow.enrolments`, `uow.records`, `uow.group_figures`), loaded set-based where the writer
asks for a whole batch, and written back with one statement per table at `flush()`.

The unit of work owns the transaction, the command boundaries, the sync counters and the
flush; services never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

from sqlalchemy import Connection, delete

from ..domain.erasures import Pair, erasure_record
from ..domain.keys import SummaryKey, partition_of
from ..domain.summary import Summary
from . import rows
from .fastsql import FastSql
from .repositories import (
    Assessments,
    Enrolments,
    GroupFigures,
    Records,
    Summaries,
    Tries,
    Version,
)
from .schema import (
    attempts,
    collections,
    contexts,
    enrolments,
    item_attempts,
    outbox,
    sessions,
    summaries,
    tombstones,
    tries,
)
from .sqlkit import upsert
from .staged import StagedMap
from .sync import take_counters

COUNTER_KEY = "counter"

Erasure = tuple[str, str, Pair | None, Pair | None]  # dataset, user, scope, enrolment


class BatchUnitOfWork:
    """One transaction, its repositories and the staged work of a batch of commands."""

    def __init__(self, conn: Connection, instance_id: str, now: int) -> None:
        self.conn = conn
        self.fast = FastSql(conn)
        changed: dict[SummaryKey, tuple[Summary, int] | None] = {}
        self._start(instance_id, now, changed, Summaries(conn, self.fast, changed),
                    Assessments(conn), Tries(conn, self.fast), Enrolments(conn),
                    Records(conn), GroupFigures(conn))

    def _start(self, instance_id: str, now: int,
               changed: dict[SummaryKey, tuple[Summary, int] | None], summaries: Summaries,
               assessments: Assessments, tries: Tries, enrolments: Enrolments,
               records: Records, group_figures: GroupFigures) -> None:
        """Take the repositories (a test's in-memory ones: tests/unit/fakes.py)."""
        self.instance_id = instance_id
        self.now = now
        self.changed_summaries = changed
        self.summaries, self.assessments, self.tries = summaries, assessments, tries
        self.enrolments, self.records, self.group_figures = enrolments, records, group_figures
        # Work that may lag (the outbox) and erasures, each staged per command like the
        # repositories' rows: position in order → item.
        self._outbox: StagedMap[int, tuple[str, str, Any]] = StagedMap()
        self._erasures: StagedMap[int, Erasure] = StagedMap()
        self._staged_maps: tuple[StagedMap[Any, Any], ...] = (
            summaries.entries, summaries.sessions, assessments.attempts,
            tries.tries, tries.item_attempts, tries.tried,
            enrolments.enrolments, enrolments.collections,
            enrolments.contexts, records.records, records.local,
            self._outbox, self._erasures)
        self._order = 0
        self.queued_work = False

    # -- ids ----------------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        """A fresh random id (sessions, certificates)."""
        return uuid.uuid4().hex

    # -- command boundaries -------------------------------------------------------------
    def begin_command(self) -> None:
        self.rollback_command()

    def commit_command(self) -> None:
        for staged in self._staged_maps:
            staged.commit()
        self.group_figures.commit()

    def rollback_command(self) -> None:
        for staged in self._staged_maps:
            staged.rollback()
        self.group_figures.rollback()

    def _next(self) -> int:
        self._order += 1
        return self._order

    # -- outbox, erasure --------------------------------------------------
    def emit(self, dataset: str, topic: str, payload: Any, *, once: bool = False) -> None:
        """Queue work that may lag; it is committed with the batch (the outbox). With
        `once`, the same work already queued in this batch is not queued again."""
        work = (dataset, topic, payload)
        if once and any(w == work for _, w in self._outbox.staged()):
            return
        self._outbox.put(self._next(), work)

    def erase(self, dataset: str, user_id: str, scope: Pair | None,
              enrolment: Pair | None) -> None:
        """Delete a learner's records and leave a tombstone.

        Both None: everything of the learner. Else the summaries, sessions and attempts
        under `scope` (collection key, context key) and the `enrolment` (collection,
        context).
        """
        self._erasures.put(self._next(), (dataset, user_id, scope, enrolment))

    # -- flush --------------------------------------------------------------------------
    def allocate(self, n: int) -> Iterator[int]:
        """n fresh counters of this instance, increasing (facts are versioned by them)."""
        if n == 0:
            return iter(())
        if self.conn.dialect.name == "postgresql":
            # Taken from a sequence by concurrent writers: registered until commit, so a
            # peer is sent only counters below every open transaction (store.sync).
            return iter(take_counters(self.conn, n))
        last = self.fast.add_to_counter(COUNTER_KEY, n)
        return iter(range(last - n + 1, last + 1))

    def pipelinable(self) -> bool:
        """Whether everything staged is written by driver statements that answer nothing
        (the hot tables' upserts), so `flush` may send them with the COMMIT at once."""
        e = self.enrolments
        return not (self._erasures.done or self.records.records.done
                    or self.records.local.done or e.collections.done or e.contexts.done
                    or self._outbox.done or self.group_figures.staged_anything())

    def flush(self, commit: Callable[[], None] | None = None) -> None:
        """Write everything the committed commands staged, one statement per table.
        `commit` (PostgreSQL, `pipelinable` work only): the writes and the COMMIT go out
        together and come back together (psycopg's pipeline mode): one wait for all."""
        for erasure in self._erasures.done.values():
            self._apply_erasure(*erasure)
        s, e, t = self.summaries, self.enrolments, self.tries
        facts = (len(s.sessions.done) + len(self.assessments.attempts.done)
                 + len(e.enrolments.done) + len(e.collections.done) + len(e.contexts.done)
                 + len(t.tries.done) + len(t.item_attempts.done) + self.records.count()
                 + (1 if s.entries.done else 0))
        v = Version(self.instance_id, self.now, self.allocate(facts))
        session_rows = s.session_rows(v)
        attempt_rows = self.assessments.rows(v)
        enrolment_rows = e.enrolment_rows(v)
        collection_rows = e.collection_rows(v)
        context_rows = e.context_rows(v)
        try_rows = t.try_rows(v)
        item_attempt_rows = t.attempt_rows(v)
        # One revision for every summary this batch writes (the cache keeps the newest);
        # the records take their counters as they are written, after it.
        rev = next(v.counters) if s.entries.done else 0
        summary_rows = s.summary_rows(rev, self.now)
        queued = list(self._outbox.done.values())
        # `pipelinable` work stages nothing for the SQLAlchemy statements below (they then
        # send nothing), so the pipeline holds only the driver's upserts and the COMMIT.
        with self.fast.raw.pipeline() if commit is not None else nullcontext():
            # The hot tables go through one compiled statement on the driver (decision 0007).
            self.fast.upsert(sessions, session_rows)
            self.fast.upsert(summaries, summary_rows)
            self.fast.upsert(attempts, attempt_rows)
            self.fast.upsert(enrolments, enrolment_rows)
            upsert(self.conn, collections, collection_rows)
            upsert(self.conn, contexts, context_rows)
            self.fast.upsert(tries, try_rows)
            self.records.flush(v)
            self.fast.upsert(item_attempts, item_attempt_rows)
            self.group_figures.flush(self.now)
            if queued:
                self.conn.execute(outbox.insert(), [
                    {"dataset": d, "topic": topic, "payload": rows.dumps(p),
                     "created_at": self.now, "available_at": self.now, "attempts": 0}
                    for d, topic, p in queued])
            if commit is not None:
                commit()
        self.queued_work = bool(queued)
        s.record_changed(rev)

    def _apply_erasure(self, dataset: str, user_id: str, scope: Pair | None,
                       enrolment: Pair | None) -> None:
        everything = scope is None and enrolment is None
        if everything or scope is not None:
            for table in (sessions, summaries, attempts, tries, item_attempts):
                cond = [table.c.dataset == dataset, table.c.user_id == user_id]
                if scope is not None:
                    cond += [table.c.collection_key == scope[0], table.c.context_key == scope[1]]
                if table is summaries:
                    self.summaries.forget_learner(dataset, user_id, scope)
                self.conn.execute(delete(table).where(*cond))
        econd = [enrolments.c.dataset == dataset, enrolments.c.user_id == user_id]
        if enrolment is not None:
            econd += [enrolments.c.collection_id == enrolment[0],
                      enrolments.c.context_id == enrolment[1]]
        self.conn.execute(delete(enrolments).where(*econd))
        self.enrolments.forget_learner(dataset, user_id)
        upsert(self.conn, tombstones, [{
            "dataset": dataset, "partition": partition_of(dataset, user_id), "kind": "erasure",
            "record_id": erasure_record(scope, enrolment), "instance_id": self.instance_id,
            "counter": next(self.allocate(1)), "updated_at": self.now}])
