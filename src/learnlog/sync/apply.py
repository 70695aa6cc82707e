"""Applying facts a peer sent (SPEC §5): join each with the stored version, honour
deletions and erasures, then recompute every summary and enrolment the facts touched
and queue the group refreshes, as a local write would.

`ApplyFacts` is a writer command that runs alone in its transaction: a chunk is applied
whole or not at all, so an interrupted transfer leaves a prefix of the stream, and a chunk
applied twice changes nothing the second time (every join is idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from operator import itemgetter
from typing import Any, ClassVar, cast

from sqlalchemy import Boolean, Table, and_, delete, or_, select

from ..domain.assessment import best_score
from ..domain.erasures import parse_erasure
from ..domain.keys import SummaryKey, learner_of
from ..domain.merge import Scope, Stamp, erasure_covers, written_before
from ..domain.summary import Session, fold
from ..service.commands import Command, Learner
from ..service.course_units import structure_changed
from ..service.group_aggregates import queue_member
from ..service.identity import queue_group_members
from ..service.ports import ServiceContext
from ..service.viewer import refresh_enrolment, touched_enrolments
from ..store import rows
from ..store.fastsql import SUMMARY_PK
from ..store.schema import attempts, sessions, summaries, tombstones
from ..store.sqlkit import chunks, upsert
from ..store.uow import BatchUnitOfWork
from .facts import ERASABLE, SUMMARY_FACTS, TOMBSTONES, Row, join_rows, tables

FAST = frozenset({"sessions", "attempts", "tries", "item_attempts", "enrolments"})
ErasureScope = tuple[Scope | None, Scope | None]  # (summaries' scope, enrolment)


def _before_sql(table: Table, stamp: Stamp) -> Any:
    """`domain.merge.written_before` as a condition on a table's rows."""
    at, instance_id, counter = stamp
    return or_(and_(table.c.instance_id == instance_id, table.c.counter < counter),
               and_(table.c.instance_id != instance_id, table.c.updated_at <= at))


def _stamp(row: Any) -> Stamp:
    """A fact's or a tombstone's (updated_at, instance_id, counter)."""
    return (row["updated_at"], row["instance_id"], row["counter"])


@dataclass
class Outcome:
    """What applying a chunk did."""

    received: int = 0
    written: int = 0
    dropped: int = 0  # erased or deleted before they arrived

    def as_json(self) -> dict[str, int]:
        return {"received": self.received, "written": self.written, "dropped": self.dropped}


@dataclass
class _Touched:
    keys: set[SummaryKey] = field(default_factory=set)
    learners: set[tuple[str, str]] = field(default_factory=set)
    enrolments: set[tuple[str, str, str, str]] = field(default_factory=set)
    collections: set[tuple[str, str]] = field(default_factory=set)
    groups: set[tuple[str, str]] = field(default_factory=set)
    members: set[tuple[str, str]] = field(default_factory=set)  # their groups changed
    sessions: dict[SummaryKey, list[Session]] = field(default_factory=dict)  # just written


@cache
def _key_getter(table: Table) -> Callable[[Row], tuple[Any, ...]]:
    """A row's primary key, as a tuple."""
    names = [c.name for c in table.primary_key.columns]
    if len(names) == 1:
        return lambda row: (row[names[0]],)
    return cast(Callable[[Row], tuple[Any, ...]], itemgetter(*names))


def _covers(scope: ErasureScope, table: str, row: Row) -> bool:
    if table == "enrolments":
        return erasure_covers(*scope, (row["collection_id"], row["context_id"]),
                              is_enrolment=True)
    return erasure_covers(*scope, (row["collection_key"], row["context_key"]),
                          is_enrolment=False)


@dataclass(frozen=True, slots=True)
class ApplyFacts(Command):
    """Apply a chunk of facts (already checked) from a peer."""

    facts: dict[str, list[Row]]
    # Each table's domain values as the check loaded them, in the order of its rows (a
    # table without them is loaded here).
    values: dict[str, list[Any]] = field(default_factory=dict)
    exclusive: ClassVar[bool] = True  # the chunk is applied whole or not at all

    def learners(self) -> set[Learner]:
        """Every learner whose records the chunk writes, by its facts and tombstones."""
        return {(r["dataset"], r["user_id"]) for name, found in self.facts.items()
                if name != TOMBSTONES for r in found if "user_id" in r} | {
            (r["dataset"], learner)
            for r in self.facts.get(TOMBSTONES, ())
            if (learner := learner_of(r["dataset"], r["partition"])) is not None}

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, int]:
        outcome = Outcome(received=sum(len(r) for r in self.facts.values()))
        touched = _Touched()
        with uow.conn.begin_nested():  # nothing of a failed chunk stays
            incoming_tombs = self.facts.get(TOMBSTONES, [])
            self._write(uow, TOMBSTONES, [(t, None) for t in incoming_tombs], touched,
                        outcome)
            for tomb in incoming_tombs:
                self._honour(uow, tomb, touched)
            erasures, deletions = _tombstones_of(uow, self.facts)
            for name, found in self.facts.items():
                if name == TOMBSTONES:
                    continue
                loaded = self.values.get(name) or [None] * len(found)
                kept = [(r, v) for r, v in zip(found, loaded, strict=True)
                        if not _gone(name, r, erasures, deletions)]
                outcome.dropped += len(found) - len(kept)
                self._write(uow, name, kept, touched, outcome)
            _refold(uow, ctx, touched)
        return outcome.as_json()

    # -- writing rows -----------------------------------------------------------------
    def _write(self, uow: BatchUnitOfWork, name: str, found: Sequence[tuple[Row, Any]],
               touched: _Touched, outcome: Outcome) -> None:
        """Join rows (with their domain values, if loaded) with the stored versions and
        write what changes."""
        if not found:
            return
        table = tables()[name]
        pk_of = _key_getter(table)

        def fresh() -> int:
            return next(uow.allocate(1))

        latest: dict[tuple[Any, ...], tuple[Row, Any]] = {}
        for row, value in found:  # the same fact twice in one chunk: join them first
            pk = pk_of(row)
            held = latest.get(pk)
            if held is None:
                latest[pk] = (row, value)
            else:
                joined = join_rows(name, held[0], row, fresh, uow.instance_id)
                if joined is not None:
                    latest[pk] = (joined, value if joined is row else None)
        # New keys first: written at once if none is stored, else looked up and joined.
        copied = name in FAST and uow.fast.insert_new(table, [r for r, _ in latest.values()])
        names = tuple(c.name for c in table.primary_key.columns)
        stored: dict[tuple[Any, ...], Row] = {}
        for part in [] if copied else chunks(list(latest), 400):
            for r in uow.fast.rows_by_keys(table, names, part):
                held_row = _typed(table, dict(r))
                stored[pk_of(held_row)] = held_row
        new: list[Row] = []  # keys not stored: the writer's learner locks keep them so
        changed: list[Row] = []
        for pk, (row, value) in latest.items():
            before = stored.get(pk)
            if before is None:
                new.append(row)
            else:
                joined = join_rows(name, before, row, fresh, uow.instance_id)
                if joined is None:
                    continue
                changed.append(joined)
                value, row = (value if joined is row else None), joined
            _note(name, row, touched)
            if name == "sessions":
                s = value if value is not None else rows.session_from_row(row)
                touched.sessions.setdefault(s.key, []).append(s)
        if not copied and name in FAST:
            uow.fast.insert_bulk(table, new)
            uow.fast.upsert_bulk(table, changed)
        elif not copied:
            upsert(uow.conn, table, new + changed)
        outcome.written += len(new) + len(changed)

    # -- deletions and erasures ---------------------------------------------------------
    def _honour(self, uow: BatchUnitOfWork, tomb: Row, touched: _Touched) -> None:
        """Delete what a tombstone says is gone, if it was written before the tombstone."""
        known = tables()
        dataset, stamp = tomb["dataset"], _stamp(tomb)
        if tomb["kind"] == "erasure":
            user_id = learner_of(dataset, tomb["partition"]) or ""
            scope = parse_erasure(tomb["record_id"])
            _erase(uow, dataset, user_id, scope, stamp, touched)
            return
        table = known.get(tomb["kind"])
        if table is None:
            return
        names = [c.name for c in table.primary_key.columns]
        values = [dataset, *tomb["record_id"].split("\x1f")]
        if len(values) != len(names):
            return
        cond = [table.c[n] == v for n, v in zip(names, values, strict=True)]
        gone = uow.conn.execute(select(table).where(*cond, _before_sql(table, stamp))
                                ).mappings().first()
        if gone is not None:
            uow.conn.execute(delete(table).where(*cond))
            _note(table.name, dict(gone), touched)


def _typed(table: Table, row: Row) -> Row:
    """A row read on the driver with its booleans as booleans (SQLite returns 0/1)."""
    for column in table.columns:
        if isinstance(column.type, Boolean) and row[column.name] is not None:
            row[column.name] = bool(row[column.name])
    return row


def _gone(name: str, row: Row, erasures: dict[str, list[tuple[ErasureScope, Stamp]]],
          deletions: dict[tuple[str, str, str], Stamp]) -> bool:
    """Whether a fact arrives after the erasure or deletion of what it belongs to."""
    if name in ERASABLE:
        for scope, stamp in erasures.get(row["partition"], ()):
            if written_before(_stamp(row), stamp) and _covers(scope, name, row):
                return True
        return False
    table = tables()[name]
    record_id = "\x1f".join(str(v) for v in _key_getter(table)(row)[1:])
    deleted = deletions.get((row["partition"], name, record_id))
    return deleted is not None and written_before(_stamp(row), deleted)


def _tombstones_of(uow: BatchUnitOfWork, facts: dict[str, list[Row]]
                   ) -> tuple[dict[str, list[tuple[ErasureScope, Stamp]]],
                              dict[tuple[str, str, str], Stamp]]:
    """The stored erasures (by partition) and deletions of the partitions facts are in."""
    parts = sorted({r["partition"] for name, found in facts.items() if name != TOMBSTONES
                    for r in found})
    erasures: dict[str, list[tuple[ErasureScope, Stamp]]] = {}
    deletions: dict[tuple[str, str, str], Stamp] = {}
    for part in chunks(parts, 400):
        for t in uow.conn.execute(select(tombstones).where(
                tombstones.c.partition.in_(part))).mappings():
            if t["kind"] == "erasure":
                erasures.setdefault(t["partition"], []).append(
                    (parse_erasure(t["record_id"]), _stamp(t)))
            else:
                deletions[(t["partition"], t["kind"], t["record_id"])] = _stamp(t)
    return erasures, deletions


def _erase(uow: BatchUnitOfWork, dataset: str, user_id: str, scope: ErasureScope,
           stamp: Stamp,
           touched: _Touched) -> None:
    """Delete a learner's facts an erasure covers that were written before it."""
    known = tables()
    summary_scope, enrolment = scope
    everything = summary_scope is None and enrolment is None
    for name in ERASABLE:
        table = known[name]
        cond = [table.c.dataset == dataset, table.c.user_id == user_id,
                _before_sql(table, stamp)]
        if name == "enrolments":
            if not everything and enrolment is None:
                continue
            if enrolment is not None:
                cond += [table.c.collection_id == enrolment[0],
                         table.c.context_id == enrolment[1]]
        else:
            if not everything and summary_scope is None:
                continue
            if summary_scope is not None:
                cond += [table.c.collection_key == summary_scope[0],
                         table.c.context_key == summary_scope[1]]
        if name in SUMMARY_FACTS:
            for r in uow.conn.execute(select(table).where(*cond)).mappings():
                touched.keys.add(rows.key_of(r))
        uow.conn.execute(delete(table).where(*cond))
    # Summaries under the scope with nothing left are refolded (and so removed).
    cond = [summaries.c.dataset == dataset, summaries.c.user_id == user_id]
    if summary_scope is not None:
        cond += [summaries.c.collection_key == summary_scope[0],
                 summaries.c.context_key == summary_scope[1]]
    if everything or summary_scope is not None:
        for r in uow.conn.execute(select(summaries).where(*cond)).mappings():
            touched.keys.add(rows.key_of(r))
    touched.learners.add((dataset, user_id))


def _note(name: str, row: Row, touched: _Touched) -> None:
    """Remember what a written (or deleted) fact means for folds and group figures."""
    if "user_id" in row and name != TOMBSTONES:
        touched.learners.add((row["dataset"], row["user_id"]))
    if name in SUMMARY_FACTS:
        touched.keys.add(rows.key_of(row))
    elif name == "enrolments":
        touched.enrolments.add((row["dataset"], row["user_id"], row["collection_id"],
                                row["context_id"]))
    elif name == "collections":
        touched.collections.add((row["dataset"], row["collection_id"]))
    elif name == "memberships":
        touched.members.add((row["dataset"], row["user_id"]))
    elif name == "group_activities":
        touched.groups.add((row["dataset"], row["group_id"]))


# -- folds --------------------------------------------------------------------------------

def _by_key(uow: BatchUnitOfWork, table: Table, keys: Sequence[SummaryKey]
            ) -> dict[SummaryKey, list[Any]]:
    found: dict[SummaryKey, list[Any]] = {}
    for part in chunks(list(keys), 400):
        wanted = [(k.dataset, k.user_id, k.collection_key, k.context_key, k.content_id)
                  for k in part]
        for r in uow.fast.rows_by_keys(table, SUMMARY_PK, wanted):
            found.setdefault(rows.key_of(r), []).append(r)
    return found


def refold(uow: BatchUnitOfWork, keys: Iterable[SummaryKey],
           fresh: dict[SummaryKey, list[Session]] | None = None) -> list[SummaryKey]:
    """Recompute the summaries of these keys from their sessions and attempts (stored and
    this batch's); a key with no session left loses its summary. `fresh` holds the
    sessions just written, by key. Returns the keys whose summary changed."""
    wanted = sorted(set(keys))
    uow.summaries.load(wanted)
    fresh = fresh or {}
    # A key with no summary has no stored session (sessions are written with their
    # summary and erased with it): its sessions are the ones just written.
    stored_facts = [k for k in wanted if k not in fresh or uow.summaries.get(k) is not None]
    found_sessions = _by_key(uow, sessions, stored_facts)
    found_attempts = _by_key(uow, attempts, wanted)  # this chunk's attempts are stored
    changed = []
    for key in wanted:
        stored = uow.summaries.get(key)
        facts: list[Session] = (
            [rows.session_from_row(r) for r in found_sessions.get(key, [])]
            if stored is not None or key not in fresh else fresh[key])
        if not facts:
            if stored is not None:
                uow.summaries.drop(key)
                changed.append(key)
            continue
        best = best_score([rows.attempt_from_row(r) for r in found_attempts.get(key, [])])
        folded = replace(fold(key, facts), best_score=best.score,
                         best_max_score=best.max_score, attempts_count=best.attempts_count)
        if folded != stored:
            uow.summaries.put(folded)
            changed.append(key)
    return changed


def _refold(uow: BatchUnitOfWork, ctx: ServiceContext, touched: _Touched) -> None:
    changed = refold(uow, touched.keys, touched.sessions)
    for dataset, user_id in sorted({(k.dataset, k.user_id) for k in changed}):
        uow.enrolments.of_learner(dataset, user_id)  # one query per learner, not one per key
    pks = set(touched.enrolments)
    for key in changed:
        pks.update(e.pk for e in touched_enrolments(uow, ctx, key))
    for pk in sorted(pks):
        enrolment = uow.enrolments.get(*pk)
        if enrolment is not None:
            refresh_enrolment(uow, ctx, enrolment)
    for dataset, user_id in sorted(touched.learners):
        queue_member(uow, dataset, user_id, always=(dataset, user_id) in touched.members)
    for dataset, group_id in sorted(touched.groups):
        queue_group_members(uow, dataset, group_id)
    for dataset, collection_id in sorted(touched.collections):
        structure_changed(uow, dataset, collection_id, once=True)


__all__ = ["ApplyFacts", "Outcome", "refold"]
