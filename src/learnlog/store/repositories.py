"""One repository per aggregate for a writer batch: what it loads, stages and writes.

Each repository keeps its rows in `StagedMap`s (staged by the running command, staged by
the batch's earlier commands, loaded), loads set-based for a whole batch where the writer
asks it to, and turns what was staged into rows at flush. The unit of work
(`store/uow.py`) owns the transaction, the command boundaries, the counters and the order
of the flush; repositories never commit.

- `Summaries`: summaries and the sessions folded into them.
- `Assessments`: Sunbird assessment attempts.
- `Tries`: exercise tries and their item attempts (the logger family).
- `Enrolments`: enrolments, and the collections and contexts they belong to.
- `Records`: small records written whole (users, groups, memberships, …) and local rows.
- `GroupFigures`: what learners add to their groups' activity figures, and the totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, or_, select, text

from ..domain.assessment import Attempt
from ..domain.enrolment import CollectionRecord, ContextRecord, Enrolment
from ..domain.group_aggregates import METRICS, MemberFigures, Totals
from ..domain.keys import SummaryKey, partition_of, shared_partition
from ..domain.mastery import ItemAttempt, Mark, Try, mark_of
from ..domain.summary import Session, Summary
from . import rows
from .fastsql import OPEN_SESSION_COLUMNS, SESSION_PK, SUMMARY_PK, FastSql
from .schema import (
    AGG_TIMES,
    attempts,
    collections,
    contexts,
    enrolments,
    group_activities,
    group_activity_agg,
    groups,
    item_attempts,
    member_activity_agg,
    memberships,
    quizzes,
    sessions,
    summaries,
    tombstones,
    tries,
    user_sessions,
    users,
    visitor_sessions,
)
from .sqlkit import chunks, delete_by_columns, insert_for, keyed, one_row, upsert
from .staged import StagedMap

ABSENT: Any = object()  # `Summaries.put`: the open session id stays as it is
SYNC_COLUMNS = frozenset({"partition", "instance_id", "counter", "updated_at"})
RECORD_TABLES = (users, groups, memberships, user_sessions, quizzes, visitor_sessions,
                 group_activities)
TRY_PK = (*SUMMARY_PK, "mastery_level")  # a try's attempts: the ix_item_attempts_try range
LATEST_FIRST = "started_at DESC, ordinal DESC, attempt_id DESC"  # ItemAttempt.order, reversed
MARK_COLUMNS = (*TRY_PK, "attempt_id", "started_at", "ordinal", "correct")  # mastery.Mark
ALL_ATTEMPTS = 2**31 - 1  # a window that holds every attempt of a try
LOAD_CHUNK = 400  # keys per batch load statement

SessionId = tuple[str, str, str]  # dataset, user, session id


def _pk_values(key: SummaryKey) -> tuple[str, str, str, str, str]:
    return (key.dataset, key.user_id, key.collection_key, key.context_key, key.content_id)


def _covers(loaded: int | None, window: int | None) -> bool:
    """Whether a try's latest `loaded` attempts (None: all) include its latest `window`."""
    return loaded is None or (window is not None and window <= loaded)


@dataclass(frozen=True, slots=True)
class Version:
    """Sync columns every fact row written in a batch shares, and its counters."""

    instance_id: str
    now: int
    counters: Iterator[int]


class Summaries:
    """Summaries (with the id of this instance's open session) and their sessions."""

    def __init__(self, conn: Connection, fast: FastSql,
                 changed: dict[SummaryKey, tuple[Summary, int] | None]) -> None:
        self.conn, self.fast, self.changed = conn, fast, changed
        self.entries: StagedMap[SummaryKey, tuple[Summary, str | None]] = StagedMap()
        self.sessions: StagedMap[SessionId, Session] = StagedMap()

    def load(self, keys: Iterable[SummaryKey]) -> None:
        """Load many summaries with one query per chunk (the writer asks for a whole
        batch), the open sessions they name with them, under the keys asked for (no key
        is built from a row)."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self.entries.loaded]
        # PostgreSQL: one statement with the sessions joined saves a round trip; SQLite
        # has none to save, and its joined rows cost more to read (load CPU 27-30 -> 43-49
        # µs per key, in-process, 2026-12-05), so it reads the two tables apart.
        if self.fast.dialect == "postgresql":
            self._load_with_sessions(wanted)
            return
        by_pk = {_pk_values(k): k for k in wanted}
        open_ids: dict[SessionId, SummaryKey] = {}
        for chunk in chunks(wanted, LOAD_CHUNK):
            for row in self.fast.rows_by_keys(summaries, SUMMARY_PK,
                                              [_pk_values(k) for k in chunk]):
                key = by_pk[(row["dataset"], row["user_id"], row["collection_key"],
                             row["context_key"], row["content_id"])]
                self.entries.keep(key, (rows.summary_from_row(row, key),
                                        row["open_session_id"]))
                if row["open_session_id"] is not None:
                    open_ids[(key.dataset, key.user_id, row["open_session_id"])] = key
            for k in chunk:
                self.entries.keep(k, None)
        self.load_sessions(list(open_ids), open_ids)

    def _load_with_sessions(self, wanted: list[SummaryKey]) -> None:
        """PostgreSQL: `load` in one round trip, the open sessions joined."""
        by_pk = {_pk_values(k): k for k in wanted}
        for chunk in chunks(list(by_pk), LOAD_CHUNK):
            for row in self.fast.summaries_with_sessions(chunk):
                key = by_pk[(row["dataset"], row["user_id"], row["collection_key"],
                             row["context_key"], row["content_id"])]
                sid = row["open_session_id"]
                self.entries.keep(key, (rows.summary_from_row(row, key), sid))
                if sid is not None:
                    self.sessions.keep((key.dataset, key.user_id, sid), None if (
                        row["x_session_id"] is None) else rows.session_from_row(
                            {c: row["x_" + c] for c in OPEN_SESSION_COLUMNS}, key))
            for pk in chunk:
                self.entries.keep(by_pk[pk], None)

    def _entry(self, key: SummaryKey) -> tuple[Summary, str | None] | None:
        return self.entries.get(key, self.load)

    def get(self, key: SummaryKey) -> Summary | None:
        """The summary under a key, or None."""
        entry = self._entry(key)
        return None if entry is None else entry[0]

    def open_session(self, key: SummaryKey) -> Session | None:
        """This instance's latest open session for a key, or None."""
        entry = self._entry(key)
        if entry is None or entry[1] is None:
            return None
        return self.session(key.dataset, key.user_id, entry[1])

    def put(self, summary: Summary, *, open_session_id: str | None = ABSENT) -> None:
        """Stage a summary; `open_session_id` changes only when given."""
        if open_session_id is ABSENT:
            entry = self._entry(summary.key)
            open_session_id = None if entry is None else entry[1]
        self.entries.put(summary.key, (summary, open_session_id))

    def drop(self, key: SummaryKey) -> None:
        """Delete a summary now (a sync erasure left it no session)."""
        self.conn.execute(delete(summaries).where(
            *(summaries.c[k] == v for k, v in rows.key_columns(key).items())))
        self.changed[key] = None
        self.entries.forget(key)

    def load_sessions(self, ids: Sequence[SessionId],
                      keys: dict[SessionId, SummaryKey] | None = None) -> None:
        """Load sessions by (dataset, user, session id); `keys`: their summary keys, when
        the caller knows them."""
        wanted = [i for i in dict.fromkeys(ids) if i not in self.sessions.loaded]
        for chunk in chunks(wanted, LOAD_CHUNK):
            for row in self.fast.rows_by_keys(sessions, SESSION_PK, chunk):
                ident = (row["dataset"], row["user_id"], row["session_id"])
                self.sessions.keep(ident, rows.session_from_row(
                    row, None if keys is None else keys.get(ident)))
            for i in chunk:
                self.sessions.keep(i, None)

    def session(self, dataset: str, user_id: str, session_id: str) -> Session | None:
        return self.sessions.get((dataset, user_id, session_id), self.load_sessions)

    def put_session(self, session: Session) -> None:
        self.sessions.put((session.key.dataset, session.key.user_id, session.session_id),
                          session)

    def forget_learner(self, dataset: str, user_id: str, scope: tuple[str, str] | None
                       ) -> None:
        """An erasure deleted the learner's summaries (under `scope`): read none again."""
        for row in self.conn.execute(select(summaries).where(
                summaries.c.dataset == dataset, summaries.c.user_id == user_id,
                *([] if scope is None else [summaries.c.collection_key == scope[0],
                                            summaries.c.context_key == scope[1]]))
        ).mappings():
            key = rows.key_of(row)
            self.changed[key] = None
            self.entries.forget(key)

    def session_rows(self, v: Version) -> list[dict[str, Any]]:
        return [rows.session_to_row(s, partition_of(s.key.dataset, s.key.user_id),
                                    next(v.counters), v.now)
                for s in self.sessions.done.values()]

    def summary_rows(self, rev: int, now: int) -> list[dict[str, Any]]:
        return [rows.summary_to_row(s, sid, rev, now) for s, sid in self.entries.done.values()]

    def record_changed(self, rev: int) -> None:
        for summary, _ in self.entries.done.values():
            self.changed[summary.key] = (summary, rev)


class Assessments:
    """Sunbird assessment attempts, loaded per summary key."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.attempts: StagedMap[tuple[SummaryKey, str], Attempt] = StagedMap()
        self._listed: dict[SummaryKey, list[Attempt]] = {}  # stored, per key

    def of(self, key: SummaryKey) -> list[Attempt]:
        """Every attempt under a key, stored and staged."""
        if key not in self._listed:
            self._listed[key] = self._stored(key)
            for a in self._listed[key]:
                self.attempts.keep((key, a.attempt_id), a)
        merged = {a.attempt_id: a for a in self._listed[key]}
        merged.update((aid, a) for (k, aid), a in self.attempts.staged() if k == key)
        return list(merged.values())

    def _stored(self, key: SummaryKey) -> list[Attempt]:
        cond = [attempts.c[k] == v for k, v in rows.key_columns(key).items()]
        return [rows.attempt_from_row(r)
                for r in self.conn.execute(select(attempts).where(*cond)).mappings()]

    def get(self, key: SummaryKey, attempt_id: str) -> Attempt | None:
        return next((a for a in self.of(key) if a.attempt_id == attempt_id), None)

    def put(self, attempt: Attempt) -> None:
        self.attempts.put((attempt.key, attempt.attempt_id), attempt)

    def rows(self, v: Version) -> list[dict[str, Any]]:
        return [rows.attempt_to_row(a, partition_of(a.key.dataset, a.key.user_id),
                                    v.instance_id, next(v.counters))
                for a in self.attempts.done.values()]


class Tries:
    """Exercise tries and their item attempts, with what a mastery criterion reads."""

    def __init__(self, conn: Connection, fast: FastSql) -> None:
        self.conn, self.fast = conn, fast
        self._stored: dict[SummaryKey, list[Try]] = {}
        self.tries: StagedMap[tuple[SummaryKey, int], Try] = StagedMap()
        # Stored item attempts of a try, loaded so far, and how many of its latest ones
        # that surely includes (None: all of them).
        self._attempts: dict[tuple[SummaryKey, int], dict[str, ItemAttempt]] = {}
        self._windows: dict[tuple[SummaryKey, int], int | None] = {}
        # What a criterion reads of a try's latest attempts (a window, as above).
        self._marks: dict[tuple[SummaryKey, int], tuple[int | None, dict[str, Mark]]] = {}
        self.item_attempts: StagedMap[tuple[str, str, str], ItemAttempt] = StagedMap()
        self.tried: StagedMap[tuple[SummaryKey, int], bool] = StagedMap()

    def load(self, keys: Iterable[SummaryKey]) -> None:
        """Load the tries of many keys with one query per chunk (batch prefetch)."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self._stored]
        for chunk in chunks(wanted, LOAD_CHUNK):
            for k in chunk:
                self._stored[k] = []
            for row in self.fast.rows_by_keys(tries, SUMMARY_PK, [_pk_values(k) for k in chunk]):
                t = rows.try_from_row(row)
                self._stored[t.key].append(t)

    def of(self, key: SummaryKey) -> list[Try]:
        """Every try at an exercise under a key (stored and staged)."""
        if key not in self._stored:
            self._stored[key] = [rows.try_from_row(r) for r in self.conn.execute(
                select(tries).where(*(tries.c[k] == v for k, v in rows.key_columns(key).items()))
            ).mappings()]
        found = {t.level: t for t in self._stored[key]}
        found.update((level, t) for (k, level), t in self.tries.staged() if k == key)
        return list(found.values())

    def at(self, key: SummaryKey, level: int) -> Try | None:
        return next((t for t in self.of(key) if t.level == level), None)

    def put(self, t: Try) -> None:
        self.tries.put((t.key, t.level), t)

    def load_attempts(self, tries_wanted: Iterable[tuple[SummaryKey, int, int | None]]
                      ) -> None:
        """Load the item attempts of many tries (key, level, window) with a query per
        chunk: each try's latest `window` attempts, or all of them when None."""
        wanted = {(k, level): window for k, level, window in tries_wanted
                  if not self._has_window((k, level), window)}
        for window in set(wanted.values()):
            pairs = [p for p, w in wanted.items() if w == window]
            for chunk in chunks(pairs, LOAD_CHUNK):
                keys = [(*_pk_values(k), level) for k, level in chunk]
                found = (self.fast.rows_by_keys(item_attempts, TRY_PK, keys) if window is None
                         else self.fast.latest_by_keys(item_attempts, TRY_PK, keys,
                                                       LATEST_FIRST, window))
                for pair in chunk:
                    self._attempts.setdefault(pair, {})
                    self._windows[pair] = window
                for row in found:
                    a = rows.item_attempt_from_row(row)
                    self._attempts[(a.key, a.level)][a.attempt_id] = a

    def _has_window(self, pair: tuple[SummaryKey, int], window: int | None) -> bool:
        return pair in self._windows and _covers(self._windows[pair], window)

    def load_marks(self, tries_wanted: Iterable[tuple[SummaryKey, int, int | None]]) -> None:
        """Load what a criterion reads (`mastery.Mark`) of many tries' latest `window`
        item attempts (all of them when None), a query per chunk: four columns of each,
        not the whole attempt."""
        wanted: dict[tuple[SummaryKey, int], int | None] = {}
        for k, level, window in tries_wanted:
            held = self._marks.get((k, level))
            if held is None or not _covers(held[0], window):
                wanted[(k, level)] = window
        for window in set(wanted.values()):
            pairs = [p for p, w in wanted.items() if w == window]
            for chunk in chunks(pairs, LOAD_CHUNK):
                by_try = {(*_pk_values(k), level): (k, level) for k, level in chunk}
                marks: dict[tuple[SummaryKey, int], dict[str, Mark]] = {}
                for pair in chunk:
                    marks[pair] = {}
                    self._marks[pair] = (window, marks[pair])
                for row in self.fast.latest_by_keys(
                        item_attempts, TRY_PK, list(by_try), LATEST_FIRST,
                        ALL_ATTEMPTS if window is None else window, MARK_COLUMNS):
                    k, level = by_try[row[:6]]
                    marks[(k, level)][row[6]] = Mark(row[6], level, row[7], row[8], row[9])

    def marks(self, key: SummaryKey, level: int, window: int | None) -> list[Mark]:
        """What a criterion reads of a try's latest `window` attempts (all when None),
        stored and staged: a superset of that window, like `attempts_of`."""
        self.load_marks([(key, level, window)])
        found = dict(self._marks[(key, level)][1])
        for a in self._staged_attempts(key, level):
            found[a.attempt_id] = mark_of(a)
        return list(found.values())

    def _staged_attempts(self, key: SummaryKey, level: int) -> Iterator[ItemAttempt]:
        # Layer by layer: a try the running command alone touched reads that command's
        # few attempts, not every attempt the batch staged (quadratic in the batch).
        for tried, staged in ((self.tried.done, self.item_attempts.done),
                              (self.tried.running, self.item_attempts.running)):
            if (key, level) in tried:
                for a in staged.values():
                    if a.level == level and a.key == key:
                        yield a

    def named_attempts(self, key: SummaryKey, level: int) -> list[ItemAttempt]:
        """A try's attempts loaded whole so far (by `load_named_attempts`, or a window),
        stored and staged: the ones interactions can name."""
        found = dict(self._attempts.get((key, level), {}))
        for a in self._staged_attempts(key, level):
            found[a.attempt_id] = a
        return list(found.values())

    def load_named_attempts(self, key: SummaryKey, level: int, ids: Iterable[str],
                            items: Iterable[str]) -> None:
        """Load a try's stored attempts with these ids or at these items (those outside the
        window loaded so far that interactions name)."""
        ids, items = set(ids), set(items)
        if self._windows.get((key, level), 0) is None or not (ids or items):
            return
        found = self.conn.execute(select(item_attempts).where(
            *(item_attempts.c[k] == v for k, v in rows.key_columns(key).items()),
            item_attempts.c.mastery_level == level,
            or_(item_attempts.c.attempt_id.in_(ids), item_attempts.c.item.in_(items)))
        ).mappings()
        for row in found:
            a = rows.item_attempt_from_row(row)
            self._attempts.setdefault((key, level), {})[a.attempt_id] = a

    def attempts_of(self, key: SummaryKey, level: int, window: int | None = None
                    ) -> list[ItemAttempt]:
        """The item attempts of one try (stored and staged): at least its latest `window`
        ones, or all of them when the window is None (plus any loaded by name)."""
        if not self._has_window((key, level), window):
            self.load_attempts([(key, level, window)])
        return self.named_attempts(key, level)

    def put_attempt(self, attempt: ItemAttempt) -> None:
        self.item_attempts.put(
            (attempt.key.dataset, attempt.key.user_id, attempt.attempt_id), attempt)
        self.tried.put((attempt.key, attempt.level), True)

    def try_rows(self, v: Version) -> list[dict[str, Any]]:
        return [rows.try_to_row(t, partition_of(t.key.dataset, t.key.user_id),
                                v.instance_id, next(v.counters), v.now)
                for t in self.tries.done.values()]

    def attempt_rows(self, v: Version) -> list[dict[str, Any]]:
        return [rows.item_attempt_to_row(a, partition_of(a.key.dataset, a.key.user_id),
                                         v.instance_id, next(v.counters), v.now)
                for a in self.item_attempts.done.values()]


EnrolmentPk = tuple[str, str, str, str]  # dataset, user, collection, context


class Enrolments:
    """Enrolments, and the collections and contexts they are enrolments in."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.enrolments: StagedMap[EnrolmentPk, Enrolment] = StagedMap()
        self._learners: set[tuple[str, str]] = set()  # learners loaded whole
        # What each loaded enrolment's fact part was and its version: a change of figures
        # alone keeps the version (figures are a fold; peers recompute them, SPEC §5).
        self._versions: dict[EnrolmentPk, tuple[Any, str, int, int]] = {}
        self.collections: StagedMap[tuple[str, str], CollectionRecord] = StagedMap()
        self.contexts: StagedMap[tuple[str, str], ContextRecord] = StagedMap()

    def _loaded(self, row: Any) -> Enrolment:
        e = rows.enrolment_from_row(row)
        self._versions.setdefault(e.pk, (
            rows.enrolment_fact(e), row["instance_id"], row["counter"], row["updated_at"]))
        return e

    def _load_one(self, pks: list[EnrolmentPk]) -> None:
        for pk in pks:
            if pk[:2] in self._learners:
                continue  # every stored enrolment of the learner is loaded: not one of them
            row = one_row(self.conn, enrolments, dict(zip(
                ("dataset", "user_id", "collection_id", "context_id"), pk, strict=True)))
            self.enrolments.keep(pk, None if row is None else self._loaded(row))

    def get(self, dataset: str, user_id: str, collection_id: str, context_id: str
            ) -> Enrolment | None:
        return self.enrolments.get((dataset, user_id, collection_id, context_id),
                                   self._load_one)

    def of_learner(self, dataset: str, user_id: str) -> list[Enrolment]:
        """Every enrolment of a learner (stored and staged)."""
        if (dataset, user_id) not in self._learners:
            for row in self.conn.execute(select(enrolments).where(
                    enrolments.c.dataset == dataset, enrolments.c.user_id == user_id)).mappings():
                e = self._loaded(row)
                self.enrolments.keep(e.pk, e)
            self._learners.add((dataset, user_id))
        return [e for pk, e in self.enrolments.known() if pk[:2] == (dataset, user_id)]

    def in_collection(self, dataset: str, collection_id: str) -> list[Enrolment]:
        """Every enrolment in a collection, as stored (structure changes; not a hot path)."""
        return [rows.enrolment_from_row(r) for r in self.conn.execute(select(enrolments).where(
            enrolments.c.dataset == dataset, enrolments.c.collection_id == collection_id)
        ).mappings()]

    def put(self, enrolment: Enrolment) -> None:
        self.enrolments.put(enrolment.pk, enrolment)

    def forget_learner(self, dataset: str, user_id: str) -> None:
        """An erasure deleted the learner's enrolments: load them again when asked."""
        for pk in [pk for pk in self.enrolments.loaded if pk[:2] == (dataset, user_id)]:
            del self.enrolments.loaded[pk]
        self._learners.discard((dataset, user_id))

    def _load_collection(self, pks: list[tuple[str, str]]) -> None:
        for dataset, collection_id in pks:
            row = one_row(self.conn, collections,
                          {"dataset": dataset, "collection_id": collection_id})
            self.collections.keep((dataset, collection_id),
                                  None if row is None else rows.collection_from_row(row))

    def collection(self, dataset: str, collection_id: str) -> CollectionRecord | None:
        return self.collections.get((dataset, collection_id), self._load_collection)

    def put_collection(self, record: CollectionRecord) -> None:
        self.collections.put((record.dataset, record.collection_id), record)

    def _load_context(self, pks: list[tuple[str, str]]) -> None:
        for dataset, context_id in pks:
            row = one_row(self.conn, contexts, {"dataset": dataset, "context_id": context_id})
            self.contexts.keep((dataset, context_id), None if row is None else ContextRecord(
                row["dataset"], row["context_id"], row["collection_id"], row["name"],
                row["start_date"], row["end_date"]))

    def context(self, dataset: str, context_id: str) -> ContextRecord | None:
        return self.contexts.get((dataset, context_id), self._load_context)

    def put_context(self, record: ContextRecord) -> None:
        self.contexts.put((record.dataset, record.context_id), record)

    def enrolment_rows(self, v: Version) -> list[dict[str, Any]]:
        found = []
        for e in self.enrolments.done.values():
            partition = partition_of(e.dataset, e.user_id)
            held = self._versions.get(e.pk)
            if held is not None and held[0] == rows.enrolment_fact(e):
                found.append(rows.enrolment_to_row(e, partition, held[1], held[2], held[3]))
            else:
                found.append(rows.enrolment_to_row(e, partition, v.instance_id,
                                                   next(v.counters), v.now))
        return found

    def collection_rows(self, v: Version) -> list[dict[str, Any]]:
        return [rows.collection_to_row(c, shared_partition(c.dataset), v.instance_id,
                                       next(v.counters), v.now)
                for c in self.collections.done.values()]

    def context_rows(self, v: Version) -> list[dict[str, Any]]:
        return [{"dataset": x.dataset, "context_id": x.context_id,
                 "collection_id": x.collection_id, "name": x.name,
                 "start_date": x.start_date, "end_date": x.end_date,
                 "partition": shared_partition(x.dataset), "instance_id": v.instance_id,
                 "counter": next(v.counters), "updated_at": v.now}
                for x in self.contexts.done.values()]


RecordKey = tuple[str, tuple[Any, ...]]  # table name, primary key


class Records:
    """Small records written whole (users, groups, memberships, …): a deletion leaves a
    tombstone; and rows of local tables (never synced: no version, no tombstone)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # (table, primary key) → (partition, row without sync columns), None: deleted.
        self.records: StagedMap[RecordKey, tuple[str, dict[str, Any] | None]] = StagedMap()
        self.local: StagedMap[RecordKey, tuple[Table, dict[str, Any]]] = StagedMap()

    def get(self, table: Table, pk: tuple[Any, ...]) -> dict[str, Any] | None:
        """A record by primary key, as stored plus staged (None when absent or deleted)."""
        ident = (table.name, pk)
        if self.records.is_staged(ident):
            staged = self.records.get(ident, _never)
            return None if staged is None else staged[1]
        if self.local.is_staged(ident):
            local = self.local.get(ident, _never)
            return None if local is None else local[1]
        return self._stored(table, pk)

    def _stored(self, table: Table, pk: tuple[Any, ...]) -> dict[str, Any] | None:
        names = [c.name for c in table.primary_key.columns]
        row = one_row(self.conn, table, dict(zip(names, pk, strict=True)))
        return None if row is None else {k: v for k, v in row.items()
                                         if k not in SYNC_COLUMNS}

    def child_groups(self, dataset: str, group_id: str) -> list[str]:
        """The groups whose parent is `group_id` (a classroom's learner groups), as stored
        plus staged."""
        found = {(dataset, g): True for g in self._stored_children(dataset, group_id)}
        for (name, pk), (_, row) in self.records.staged():
            if name == groups.name and pk[0] == dataset:
                found[pk] = row is not None and row.get("parent_id") == group_id
        return [pk[1] for pk, child in found.items() if child]

    def _stored_children(self, dataset: str, group_id: str) -> list[str]:
        return list(self.conn.execute(select(groups.c.group_id).where(
            groups.c.dataset == dataset, groups.c.parent_id == group_id)).scalars())

    def latest_user_session(self, dataset: str, user_id: str) -> dict[str, Any] | None:
        """A learner's user session with the latest interaction, as stored plus staged (a
        session started by an earlier command of the batch counts)."""
        found: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        stored = self._stored_latest_session(dataset, user_id)
        if stored is not None:
            found[(dataset, user_id, stored["session_id"])] = stored
        for (name, pk), (_, row) in self.records.staged():
            if name == user_sessions.name and pk[:2] == (dataset, user_id):
                found[pk] = row
        live = [row for row in found.values() if row is not None]
        return max(live, key=lambda row: row["last_interaction_at"], default=None)

    def _stored_latest_session(self, dataset: str, user_id: str) -> dict[str, Any] | None:
        t = user_sessions
        row = self.conn.execute(select(t).where(
            t.c.dataset == dataset, t.c.user_id == user_id
        ).order_by(t.c.last_interaction_at.desc()).limit(1)).mappings().first()
        return None if row is None else {k: v for k, v in row.items()
                                         if k not in SYNC_COLUMNS}

    def put(self, table: Table, partition: str, row: dict[str, Any]) -> None:
        pk = tuple(row[c.name] for c in table.primary_key.columns)
        self.records.put((table.name, pk), (partition, row))

    def put_local(self, table: Table, row: dict[str, Any]) -> None:
        """Stage a whole row of a local table (never synced: no version, no tombstone)."""
        pk = tuple(row[c.name] for c in table.primary_key.columns)
        self.local.put((table.name, pk), (table, row))

    def delete(self, table: Table, partition: str, pk: tuple[Any, ...]) -> None:
        self.records.put((table.name, pk), (partition, None))

    def count(self) -> int:
        return len(self.records.done)

    def flush(self, v: Version) -> None:
        """Write staged records; a deletion removes the row and leaves a tombstone."""
        by_table = {t.name: t for t in RECORD_TABLES}
        for (name, pk), (partition, row) in self.records.done.items():
            table = by_table[name]
            version = {"partition": partition, "instance_id": v.instance_id,
                       "counter": next(v.counters), "updated_at": v.now}
            if row is not None:
                upsert(self.conn, table, [{**row, **version}])
                continue
            names = [c.name for c in table.primary_key.columns]
            self.conn.execute(delete(table).where(
                *(table.c[n] == value for n, value in zip(names, pk, strict=True))))
            upsert(self.conn, tombstones, [{
                "dataset": pk[0], "kind": name, "record_id": "\x1f".join(map(str, pk[1:])),
                **version}])
        for table, row in self.local.done.values():
            upsert(self.conn, table, [row])


def _never(keys: list[Any]) -> None:  # pragma: no cover - only asked for staged keys
    raise AssertionError(f"not staged: {keys}")


@cache
def _in_group_activities_stmt() -> Any:
    m, a = memberships, group_activities
    return select(m.c.group_id).where(
        m.c.dataset == bindparam("dataset"), m.c.user_id == bindparam("user_id"),
        m.c.role == "learner",
        select(a.c.group_id).where(a.c.dataset == m.c.dataset,
                                   a.c.group_id == m.c.group_id).exists()).limit(1)


TOTAL_SUMS = ("member_count", "enrolled_count", "started_count", "completed_count",
              "progress_sum", "scored_count", "score_micro_sum")


@cache
def _add_totals_stmt(dialect: str, moved: frozenset[str]) -> Any:
    """Add a delta to a group's totals (parameters: the key, each sum, `now`); the times
    of the metrics in `moved` become `now`."""
    g = group_activity_agg
    stmt = insert_for(dialect)(g).values(
        dataset=bindparam("dataset"), group_id=bindparam("group_id"),
        activity_type=bindparam("activity_type"), activity_id=bindparam("activity_id"),
        **{name: bindparam(name) for name in TOTAL_SUMS},
        **{column: bindparam("now") for column in AGG_TIMES})
    set_: dict[str, Any] = {name: g.c[name] + stmt.excluded[name] for name in TOTAL_SUMS}
    set_.update({column: bindparam("now_set") for metric, column in zip(METRICS, AGG_TIMES,
                                                                        strict=True)
                 if metric in moved})
    return stmt.on_conflict_do_update(
        index_elements=["dataset", "group_id", "activity_type", "activity_id"], set_=set_)


GroupActivity = tuple[str, str, str]  # group, activity type, activity id


class GroupFigures:
    """What each learner adds to a group activity's figures, and the groups' totals."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._in_groups: dict[tuple[str, str], bool] = {}
        self._guarded = False
        # Totals to add, (dataset, group, type, activity) → delta; combined, not replaced.
        self.totals: StagedMap[tuple[str, str, str, str], Totals] = StagedMap()
        # What a learner now adds, (dataset, user, group, type, activity) → figures
        # (None: nothing).
        self.members: StagedMap[tuple[str, str, str, str, str], MemberFigures | None] = (
            StagedMap())

    def in_group_activities(self, dataset: str, user_id: str) -> bool:
        """Whether the learner is a learner of a group that has activities (as stored;
        looked up once per learner and batch)."""
        key = (dataset, user_id)
        if key not in self._in_groups:
            self._in_groups[key] = self.conn.execute(
                _in_group_activities_stmt(), {"dataset": dataset, "user_id": user_id}
            ).first() is not None
        return self._in_groups[key]

    def members_of(self, dataset: str, group_id: str) -> list[str]:
        """The users with any role in a group, as stored (a group's activities changed:
        each member's figures may move)."""
        return list(self.conn.execute(select(memberships.c.user_id).where(
            memberships.c.dataset == dataset, memberships.c.group_id == group_id)).scalars())

    def guard(self, *, exclusive: bool = False) -> None:
        """Before reading group figures that this transaction will change: on PostgreSQL
        take the aggregate tables' lock — shared among refreshers (which serialise per
        learner anyway), exclusive for a rebuild — so no refresher reads figures from
        before a rebuild and applies its change after it. Once per transaction."""
        if self._guarded or self.conn.dialect.name != "postgresql":
            return
        mode = "EXCLUSIVE" if exclusive else "ROW EXCLUSIVE"
        self.conn.execute(text(f"LOCK TABLE member_activity_agg, group_activity_agg "
                               f"IN {mode} MODE"))
        self._guarded = True

    def add_totals(self, dataset: str, activity: GroupActivity, delta: Totals) -> None:
        """Stage a change to a group's totals for an activity (group, type, id)."""
        key = (dataset, *activity)
        held = self.totals.running.get(key)
        self.totals.put(key, delta if held is None else held.combined(delta))

    def put_member(self, dataset: str, user_id: str, activity: GroupActivity,
                   figures: MemberFigures | None) -> None:
        """Stage what a learner now adds to a group activity (None: it adds nothing)."""
        self.members.put((dataset, user_id, *activity), figures)

    def commit(self) -> None:
        """The running command's totals add to the batch's (the others replace)."""
        for key, delta in self.totals.running.items():
            held = self.totals.done.get(key)
            self.totals.done[key] = delta if held is None else held.combined(delta)
        self.totals.running = {}
        self.members.commit()

    def rollback(self) -> None:
        self.totals.rollback()
        self.members.rollback()

    def staged_anything(self) -> bool:
        return bool(self.totals.done or self.members.done)

    def flush(self, now: int) -> None:
        t = member_activity_agg
        for (dataset, user_id, group_id, kind, activity_id), f in self.members.done.items():
            pk = {"dataset": dataset, "user_id": user_id, "group_id": group_id,
                  "activity_type": kind, "activity_id": activity_id}
            if f is None:
                self.conn.execute(delete_by_columns(t, tuple(pk)), keyed(pk))
                continue
            upsert(self.conn, t, [{**pk, "enrolled": f.enrolled, "started": f.started,
                                   "completed": f.completed, "progress": f.progress,
                                   "score_micro": f.score_micro, "updated_at": now}])
        # Key order: two batches adding to the same groups' totals at once (PostgreSQL
        # writer lanes, or two processes) lock those rows in one order, never crosswise.
        for (dataset, group_id, kind, activity_id), d in sorted(self.totals.done.items()):
            params = {"dataset": dataset, "group_id": group_id, "activity_type": kind,
                      "activity_id": activity_id, "now": now, "now_set": now,
                      **{name: getattr(d, name) for name in TOTAL_SUMS}}
            self.conn.execute(_add_totals_stmt(self.conn.dialect.name,
                                               frozenset(d.moved())), params)
