"""The batch unit of work: one database transaction that many commands share.

The writer opens one `BatchUnitOfWork` per batch. Each command runs between
`begin_command()` and `commit_command()` / `rollback_command()`: what it stages is kept
apart until it succeeds, so a failing command leaves no trace while the others in the
batch still commit. Values are loaded set-based (`load_summaries` for a whole batch), kept
in an identity map, and written back with one statement per table at `flush()`.

The unit of work owns the transaction; services never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    column,
    delete,
    or_,
    select,
    text,
    values,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..domain.assessment import Attempt
from ..domain.enrolment import CollectionRecord, Enrolment
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
    outbox,
    quizzes,
    sessions,
    summaries,
    tombstones,
    tries,
    user_sessions,
    users,
    visitor_sessions,
)
from .sync import take_counters

_ABSENT = object()
SYNC_COLUMNS = frozenset({"partition", "instance_id", "counter", "updated_at"})
RECORD_TABLES = (users, groups, memberships, user_sessions, quizzes, visitor_sessions,
                 group_activities)
COUNTER_KEY = "counter"
TRY_PK = (*SUMMARY_PK, "mastery_level")  # a try's attempts: the ix_item_attempts_try range
LATEST_FIRST = "started_at DESC, ordinal DESC, attempt_id DESC"  # ItemAttempt.order, reversed
MARK_COLUMNS = (*TRY_PK, "attempt_id", "started_at", "ordinal", "correct")  # mastery.Mark
ALL_ATTEMPTS = 2**31 - 1  # a window that holds every attempt of a try


def _covers(loaded: int | None, window: int | None) -> bool:
    """Whether a try's latest `loaded` attempts (None: all) include its latest `window`."""
    return loaded is None or (window is not None and window <= loaded)


def select_by_keys(table: Table, names: Sequence[str], keys: Sequence[tuple[Any, ...]]) -> Any:
    """SELECT rows of `table` whose `names` columns equal one of `keys`.

    Written as a join with a VALUES list: SQLite plans a row-value IN as a full scan, but
    drives a join from a small VALUES list (a CTE: SQLite cannot name VALUES columns
    inline) through the primary key, as PostgreSQL does.
    """
    wanted = values(*(column(n, table.c[n].type) for n in names), name="wanted").data(
        list(keys)).cte("wanted")
    return select(table).select_from(table.join(
        wanted, and_(*(table.c[n] == wanted.c[n] for n in names))))


# Statements of the cold paths (first consumptions, group figures, records), built once
# per table and dialect with bound parameters: building a Core statement costs more
# Python than running it, and a first consumption ran a dozen of them.
@cache
def _upsert_stmt(dialect: str, table: Table) -> Any:
    stmt = (sqlite_insert if dialect == "sqlite" else pg_insert)(table)
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys})


@cache
def _by_columns(table: Table, names: tuple[str, ...]) -> Any:
    """SELECT * FROM table WHERE each named column equals its parameter `k_<name>`."""
    return select(table).where(*(table.c[n] == bindparam(f"k_{n}") for n in names))


@cache
def _delete_by_columns(table: Table, names: tuple[str, ...]) -> Any:
    return delete(table).where(*(table.c[n] == bindparam(f"k_{n}") for n in names))


def _keyed(where: dict[str, Any]) -> dict[str, Any]:
    return {f"k_{name}": value for name, value in where.items()}


@cache
def _in_group_activities_stmt() -> Any:
    m, a = memberships, group_activities
    return select(m.c.group_id).where(
        m.c.dataset == bindparam("dataset"), m.c.user_id == bindparam("user_id"),
        m.c.role == "learner",
        select(a.c.group_id).where(a.c.dataset == m.c.dataset,
                                   a.c.group_id == m.c.group_id).exists()).limit(1)


@cache
def _add_totals_stmt(dialect: str, moved: frozenset[str]) -> Any:
    """Add a delta to a group's totals (parameters: the key, each sum, `now`); the times
    of the metrics in `moved` become `now`."""
    g = group_activity_agg
    stmt = (sqlite_insert if dialect == "sqlite" else pg_insert)(g).values(
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


TOTAL_SUMS = ("member_count", "enrolled_count", "started_count", "completed_count",
              "progress_sum", "scored_count", "score_micro_sum")


def upsert(conn: Connection, table: Table, new_rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, replacing every non-key column of rows that exist (one statement)."""
    if not new_rows:
        return
    conn.execute(_upsert_stmt(conn.dialect.name, table), list(new_rows))


@dataclass(frozen=True, slots=True)
class ContextRecord:
    """Where consumption happens: a batch, a program, a class."""

    dataset: str
    context_id: str
    collection_id: str
    name: str | None
    start_date: str | None
    end_date: str | None


@dataclass
class _Staged:
    summaries: dict[SummaryKey, tuple[Summary, str | None]] = field(default_factory=dict)
    sessions: dict[tuple[str, str, str], Session] = field(default_factory=dict)
    attempts: dict[tuple[SummaryKey, str], Attempt] = field(default_factory=dict)
    enrolments: dict[tuple[str, str, str, str], Enrolment] = field(default_factory=dict)
    collections: dict[tuple[str, str], CollectionRecord] = field(default_factory=dict)
    contexts: dict[tuple[str, str], ContextRecord] = field(default_factory=dict)
    tries: dict[tuple[SummaryKey, int], Try] = field(default_factory=dict)
    item_attempts: dict[tuple[str, str, str], ItemAttempt] = field(default_factory=dict)
    tried: set[tuple[SummaryKey, int]] = field(default_factory=set)  # tries of item_attempts
    # Small records written whole (users, groups, memberships): (table, primary key) →
    # (partition, row without sync columns), or None for a deletion.
    records: dict[tuple[str, tuple[Any, ...]], tuple[str, dict[str, Any] | None]] = field(
        default_factory=dict)
    # Rows local to this instance (never synced, no sync columns): (table, key) → row.
    local: dict[tuple[str, tuple[Any, ...]], tuple[Table, dict[str, Any]]] = field(
        default_factory=dict)
    outbox: list[tuple[str, str, Any]] = field(default_factory=list)
    # Group aggregates: totals to add, (dataset, group, type, activity) → delta, and what
    # a learner now adds, (dataset, user, group, type, activity) → figures (None: nothing).
    totals: dict[tuple[str, str, str, str], Totals] = field(default_factory=dict)
    member_figures: dict[tuple[str, str, str, str, str], MemberFigures | None] = field(
        default_factory=dict)
    erasures: list[tuple[str, str, tuple[str, str] | None, tuple[str, str] | None]] = field(
        default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def absorb(self, other: _Staged) -> None:
        self.summaries.update(other.summaries)
        self.sessions.update(other.sessions)
        self.attempts.update(other.attempts)
        self.enrolments.update(other.enrolments)
        self.collections.update(other.collections)
        self.contexts.update(other.contexts)
        self.tries.update(other.tries)
        self.item_attempts.update(other.item_attempts)
        self.tried |= other.tried
        self.records.update(other.records)
        self.local.update(other.local)
        self.outbox.extend(other.outbox)
        for key, delta in other.totals.items():
            held = self.totals.get(key)
            self.totals[key] = delta if held is None else held.combined(delta)
        self.member_figures.update(other.member_figures)
        self.erasures.extend(other.erasures)
        self.after_commit.extend(other.after_commit)


class BatchUnitOfWork:
    """One transaction, an identity map and staged writes for a batch of commands."""

    def __init__(self, conn: Connection, instance_id: str, now: int) -> None:
        self.conn = conn
        self.fast = FastSql(conn)
        self.instance_id = instance_id
        self.now = now
        self._summaries: dict[SummaryKey, tuple[Summary, str | None] | None] = {}
        self._sessions: dict[tuple[str, str, str], Session | None] = {}
        self._attempts: dict[tuple[SummaryKey, str], Attempt | None] = {}
        self._attempt_lists: dict[SummaryKey, list[Attempt]] = {}
        self._enrolments: dict[tuple[str, str, str, str], Enrolment | None] = {}
        self._user_enrolments: set[tuple[str, str]] = set()
        # What each loaded enrolment's fact part was and its version: a change of figures
        # alone keeps the version (figures are a fold; peers recompute them, SPEC §5).
        self._enrolment_versions: dict[tuple[str, str, str, str],
                                       tuple[Any, str, int, int]] = {}
        self._collections: dict[tuple[str, str], CollectionRecord | None] = {}
        self._contexts: dict[tuple[str, str], ContextRecord | None] = {}
        self._tries: dict[SummaryKey, list[Try]] = {}
        # Stored item attempts of a try, loaded so far, and how many of its latest ones
        # that surely includes (None: all of them).
        self._item_attempts: dict[tuple[SummaryKey, int], dict[str, ItemAttempt]] = {}
        self._attempt_windows: dict[tuple[SummaryKey, int], int | None] = {}
        # What a criterion reads of a try's latest attempts (a window, as above).
        self._marks: dict[tuple[SummaryKey, int], tuple[int | None, dict[str, Mark]]] = {}
        self._in_groups: dict[tuple[str, str], bool] = {}
        self._aggregates_guarded = False
        self._done = _Staged()
        self._cmd = _Staged()
        self.changed_summaries: dict[SummaryKey, tuple[Summary, int] | None] = {}
        self.queued_work = False

    # -- ids ----------------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        """A fresh random id (sessions, certificates)."""
        return uuid.uuid4().hex

    # -- command boundaries -------------------------------------------------------------
    def begin_command(self) -> None:
        self._cmd = _Staged()

    def commit_command(self) -> None:
        self._done.absorb(self._cmd)
        self._cmd = _Staged()

    def rollback_command(self) -> None:
        self._cmd = _Staged()

    # -- summaries ----------------------------------------------------------------------
    def load_summaries(self, keys: Iterable[SummaryKey]) -> None:
        """Load many summaries with one query (the writer calls this for a whole batch).

        Rows come back under the keys asked for (no key is built from a row), and the
        open sessions they name are loaded with them, under the same keys."""
        wanted = {k: k for k in keys if k not in self._summaries}
        # PostgreSQL: one statement with the sessions joined saves a round trip; SQLite
        # has none to save, and its joined rows cost more to read (load CPU 27-30 -> 43-49
        # µs per key, in-process, 2026-12-05), so it reads the two tables apart.
        if self.fast.dialect == "postgresql":
            self._load_summaries_with_sessions(list(wanted))
            return
        open_ids: list[tuple[str, str, str]] = []
        known: dict[tuple[str, str, str], SummaryKey] = {}
        for chunk in chunks(list(wanted), 400):
            for row in self.fast.rows_by_keys(summaries, SUMMARY_PK, [
                    (k.dataset, k.user_id, k.collection_key, k.context_key, k.content_id)
                    for k in chunk]):
                key = wanted.get(SummaryKey(row["dataset"], row["user_id"],
                                            row["collection_key"], row["context_key"],
                                            row["content_id"]))
                summary = rows.summary_from_row(row, key)
                self._summaries[summary.key] = (summary, row["open_session_id"])
                if row["open_session_id"] is not None:
                    ident = (summary.key.dataset, summary.key.user_id, row["open_session_id"])
                    open_ids.append(ident)
                    known[ident] = summary.key
            for k in chunk:
                self._summaries.setdefault(k, None)
        self.load_sessions(open_ids, known)

    def _load_summaries_with_sessions(self, wanted: list[SummaryKey]) -> None:
        """PostgreSQL: `load_summaries` in one round trip, the open sessions joined."""
        by_key = {(k.dataset, k.user_id, k.collection_key, k.context_key, k.content_id): k
                  for k in wanted}
        for chunk in chunks(list(by_key), 400):
            for row in self.fast.summaries_with_sessions(chunk):
                key = by_key[(row["dataset"], row["user_id"], row["collection_key"],
                              row["context_key"], row["content_id"])]
                summary = rows.summary_from_row(row, key)
                sid = row["open_session_id"]
                self._summaries[key] = (summary, sid)
                if sid is not None:
                    self._sessions.setdefault((key.dataset, key.user_id, sid), None if (
                        row["x_session_id"] is None) else rows.session_from_row(
                            {c: row["x_" + c] for c in OPEN_SESSION_COLUMNS}, key))
            for k in chunk:
                self._summaries.setdefault(by_key[k], None)

    def _summary_entry(self, key: SummaryKey) -> tuple[Summary, str | None] | None:
        for staged in (self._cmd, self._done):
            if key in staged.summaries:
                return staged.summaries[key]
        if key not in self._summaries:
            self.load_summaries([key])
        return self._summaries[key]

    def summary(self, key: SummaryKey) -> Summary | None:
        """The summary under a key, or None."""
        entry = self._summary_entry(key)
        return None if entry is None else entry[0]

    def open_session(self, key: SummaryKey) -> Session | None:
        """This instance's latest open session for a key, or None."""
        entry = self._summary_entry(key)
        if entry is None or entry[1] is None:
            return None
        return self.session(key.dataset, key.user_id, entry[1])

    def put_summary(self, summary: Summary, *, open_session_id: str | object | None = _ABSENT
                    ) -> None:
        """Stage a summary; `open_session_id` changes only when given."""
        entry = self._summary_entry(summary.key)
        current = entry[1] if entry is not None else None
        sid = current if open_session_id is _ABSENT else open_session_id
        assert sid is None or isinstance(sid, str)
        self._cmd.summaries[summary.key] = (summary, sid)

    # -- sessions -----------------------------------------------------------------------
    def load_sessions(self, ids: Iterable[tuple[str, str, str]],
                      keys: dict[tuple[str, str, str], SummaryKey] | None = None) -> None:
        """Load sessions by (dataset, user, session id); `keys`: their summary keys, when
        the caller knows them."""
        wanted = [i for i in set(ids) if i not in self._sessions]
        for chunk in chunks(wanted, 400):
            for row in self.fast.rows_by_keys(sessions, SESSION_PK, chunk):
                ident = (row["dataset"], row["user_id"], row["session_id"])
                self._sessions[ident] = rows.session_from_row(
                    row, None if keys is None else keys.get(ident))
            for i in chunk:
                self._sessions.setdefault(i, None)

    def session(self, dataset: str, user_id: str, session_id: str) -> Session | None:
        ident = (dataset, user_id, session_id)
        for staged in (self._cmd, self._done):
            if ident in staged.sessions:
                return staged.sessions[ident]
        if ident not in self._sessions:
            self.load_sessions([ident])
        return self._sessions[ident]

    def put_session(self, session: Session) -> None:
        self._cmd.sessions[(session.key.dataset, session.key.user_id, session.session_id)] = session

    def sessions_of(self, key: SummaryKey) -> list[Session]:
        """Every session of a key, as stored plus staged (for recomputation)."""
        cond = and_(*(getattr(sessions.c, k) == v for k, v in rows.key_columns(key).items()))
        found = {r["session_id"]: rows.session_from_row(r)
                 for r in self.conn.execute(select(sessions).where(cond)).mappings()}
        for staged in (self._done, self._cmd):
            for (_, _, sid), s in staged.sessions.items():
                if s.key == key:
                    found[sid] = s
        return list(found.values())

    # -- attempts -----------------------------------------------------------------------
    def attempts_of(self, key: SummaryKey) -> list[Attempt]:
        """Every attempt under a key, stored and staged."""
        if key not in self._attempt_lists:
            cond = and_(*(getattr(attempts.c, k) == v for k, v in rows.key_columns(key).items()))
            self._attempt_lists[key] = [
                rows.attempt_from_row(r)
                for r in self.conn.execute(select(attempts).where(cond)).mappings()]
            for a in self._attempt_lists[key]:
                self._attempts[(key, a.attempt_id)] = a
        merged = {a.attempt_id: a for a in self._attempt_lists[key]}
        for staged in (self._done, self._cmd):
            for (k, aid), a in staged.attempts.items():
                if k == key:
                    merged[aid] = a
        return list(merged.values())

    def attempt(self, key: SummaryKey, attempt_id: str) -> Attempt | None:
        return next((a for a in self.attempts_of(key) if a.attempt_id == attempt_id), None)

    def put_attempt(self, attempt: Attempt) -> None:
        self._cmd.attempts[(attempt.key, attempt.attempt_id)] = attempt

    # -- exercise tries and their item attempts (the logger family) ---------------------
    def _where_key(self, table: Table, key: SummaryKey) -> list[Any]:
        return [table.c[k] == v for k, v in rows.key_columns(key).items()]

    def tries_of(self, key: SummaryKey) -> list[Try]:
        """Every try at an exercise under a key (stored and staged)."""
        if key not in self._tries:
            self._tries[key] = [rows.try_from_row(r) for r in self.conn.execute(
                select(tries).where(*self._where_key(tries, key))).mappings()]
        found = {t.level: t for t in self._tries[key]}
        for staged in (self._done, self._cmd):
            for (k, level), t in staged.tries.items():
                if k == key:
                    found[level] = t
        return list(found.values())

    def load_tries(self, keys: Iterable[SummaryKey]) -> None:
        """Load the tries of many keys with one query per 400 keys (batch prefetch)."""
        wanted = [k for k in set(keys) if k not in self._tries]
        for chunk in chunks(wanted, 400):
            for k in chunk:
                self._tries[k] = []
            for row in self.fast.rows_by_keys(tries, SUMMARY_PK, [
                    (k.dataset, k.user_id, k.collection_key, k.context_key, k.content_id)
                    for k in chunk]):
                t = rows.try_from_row(row)
                self._tries[t.key].append(t)

    def load_item_attempts(self, tries_wanted: Iterable[tuple[SummaryKey, int, int | None]]
                           ) -> None:
        """Load the item attempts of many tries (key, level, window) with a query per 400:
        each try's latest `window` attempts, or all of them when the window is None."""
        wanted = {(k, level): window for k, level, window in tries_wanted
                  if not self._has_window((k, level), window)}
        for window in set(wanted.values()):
            pairs = [p for p, w in wanted.items() if w == window]
            for chunk in chunks(pairs, 400):
                keys = [(k.dataset, k.user_id, k.collection_key, k.context_key, k.content_id,
                         level) for k, level in chunk]
                found = (self.fast.rows_by_keys(item_attempts, TRY_PK, keys) if window is None
                         else self.fast.latest_by_keys(item_attempts, TRY_PK, keys,
                                                       LATEST_FIRST, window))
                self._keep_attempts(chunk, window, found)

    def _has_window(self, pair: tuple[SummaryKey, int], window: int | None) -> bool:
        return pair in self._attempt_windows and _covers(self._attempt_windows[pair], window)

    def _keep_attempts(self, pairs: Sequence[tuple[SummaryKey, int]], window: int | None,
                       found: Iterable[Any]) -> None:
        for pair in pairs:
            self._item_attempts.setdefault(pair, {})
            self._attempt_windows[pair] = window
        for row in found:
            a = rows.item_attempt_from_row(row)
            self._item_attempts[(a.key, a.level)][a.attempt_id] = a

    def load_attempt_marks(self, tries_wanted: Iterable[tuple[SummaryKey, int, int | None]]
                           ) -> None:
        """Load what a criterion reads (`mastery.Mark`) of many tries' latest `window`
        item attempts (all of them when None), a query per 400 tries: four columns of
        each, not the whole attempt."""
        wanted: dict[tuple[SummaryKey, int], int | None] = {}
        for k, level, window in tries_wanted:
            held = self._marks.get((k, level))
            if held is None or not _covers(held[0], window):
                wanted[(k, level)] = window
        for window in set(wanted.values()):
            pairs = [p for p, w in wanted.items() if w == window]
            for chunk in chunks(pairs, 400):
                by_try = {(k.dataset, k.user_id, k.collection_key, k.context_key,
                           k.content_id, level): (k, level) for k, level in chunk}
                marks: dict[tuple[SummaryKey, int], dict[str, Mark]] = {}
                for pair in chunk:
                    marks[pair] = {}
                    self._marks[pair] = (window, marks[pair])
                for row in self.fast.latest_by_keys(
                        item_attempts, TRY_PK, list(by_try), LATEST_FIRST,
                        ALL_ATTEMPTS if window is None else window, MARK_COLUMNS):
                    k, level = by_try[row[:6]]
                    marks[(k, level)][row[6]] = Mark(row[6], level, row[7], row[8], row[9])

    def attempt_marks(self, key: SummaryKey, level: int, window: int | None
                      ) -> list[Mark]:
        """What a criterion reads of a try's latest `window` attempts (all when None),
        stored and staged: a superset of that window, like `item_attempts_of`."""
        self.load_attempt_marks([(key, level, window)])
        found = dict(self._marks[(key, level)][1])
        for a in self._staged_attempts(key, level):
            found[a.attempt_id] = mark_of(a)
        return list(found.values())

    def _staged_attempts(self, key: SummaryKey, level: int) -> Iterator[ItemAttempt]:
        for staged in (self._done, self._cmd):
            if (key, level) in staged.tried:
                for a in staged.item_attempts.values():
                    if a.level == level and a.key == key:
                        yield a

    def named_attempts(self, key: SummaryKey, level: int) -> list[ItemAttempt]:
        """A try's attempts loaded whole so far (by `load_named_attempts`, or a window),
        stored and staged: the ones interactions can name."""
        found = dict(self._item_attempts.get((key, level), {}))
        for a in self._staged_attempts(key, level):
            found[a.attempt_id] = a
        return list(found.values())

    def load_named_attempts(self, key: SummaryKey, level: int, ids: Iterable[str],
                            items: Iterable[str]) -> None:
        """Load a try's stored attempts with these ids or at these items (those outside the
        window loaded so far that interactions name)."""
        ids, items = set(ids), set(items)
        if self._attempt_windows.get((key, level), 0) is None or not (ids or items):
            return
        found = self.conn.execute(select(item_attempts).where(
            *self._where_key(item_attempts, key), item_attempts.c.mastery_level == level,
            or_(item_attempts.c.attempt_id.in_(ids), item_attempts.c.item.in_(items)))
        ).mappings()
        for row in found:
            a = rows.item_attempt_from_row(row)
            self._item_attempts.setdefault((key, level), {})[a.attempt_id] = a

    def try_at(self, key: SummaryKey, level: int) -> Try | None:
        return next((t for t in self.tries_of(key) if t.level == level), None)

    def put_try(self, t: Try) -> None:
        self._cmd.tries[(t.key, t.level)] = t

    def item_attempts_of(self, key: SummaryKey, level: int, window: int | None = None
                         ) -> list[ItemAttempt]:
        """The item attempts of one try (stored and staged): at least its latest `window`
        ones, or all of them when the window is None (plus any loaded by name)."""
        if not self._has_window((key, level), window):
            self.load_item_attempts([(key, level, window)])
        return self.named_attempts(key, level)

    def put_item_attempt(self, attempt: ItemAttempt) -> None:
        self._cmd.item_attempts[
            (attempt.key.dataset, attempt.key.user_id, attempt.attempt_id)] = attempt
        self._cmd.tried.add((attempt.key, attempt.level))

    # -- small whole records: users, groups, memberships ----------------------------------
    def record(self, table: Table, pk: tuple[Any, ...]) -> dict[str, Any] | None:
        """A record by primary key, as stored plus staged (None when absent or deleted)."""
        ident = (table.name, pk)
        for staged in (self._cmd, self._done):
            if ident in staged.records:
                return staged.records[ident][1]
            if ident in staged.local:
                return staged.local[ident][1]
        names = [c.name for c in table.primary_key.columns]
        row = self._one(table, dict(zip(names, pk, strict=True)))
        return None if row is None else {k: v for k, v in row.items()
                                         if k not in SYNC_COLUMNS}

    def put_record(self, table: Table, partition: str, row: dict[str, Any]) -> None:
        pk = tuple(row[c.name] for c in table.primary_key.columns)
        self._cmd.records[(table.name, pk)] = (partition, row)

    def put_row(self, table: Table, row: dict[str, Any]) -> None:
        """Stage a whole row of a local table (never synced: no version, no tombstone)."""
        pk = tuple(row[c.name] for c in table.primary_key.columns)
        self._cmd.local[(table.name, pk)] = (table, row)

    def delete_record(self, table: Table, partition: str, pk: tuple[Any, ...]) -> None:
        self._cmd.records[(table.name, pk)] = (partition, None)

    # -- group aggregates ----------------------------------------------------------------
    def in_group_activities(self, dataset: str, user_id: str) -> bool:
        """Whether the learner is a learner of a group that has activities (as stored;
        looked up once per learner and batch)."""
        key = (dataset, user_id)
        if key not in self._in_groups:
            self._in_groups[key] = self.conn.execute(
                _in_group_activities_stmt(), {"dataset": dataset, "user_id": user_id}
            ).first() is not None
        return self._in_groups[key]

    def guard_aggregates(self, *, exclusive: bool = False) -> None:
        """Before reading group figures that this transaction will change: on PostgreSQL
        take the aggregate tables' lock — shared among refreshers (which serialise per
        learner anyway), exclusive for a rebuild — so no refresher reads figures from
        before a rebuild and applies its change after it. Once per transaction."""
        if self._aggregates_guarded or self.conn.dialect.name != "postgresql":
            return
        mode = "EXCLUSIVE" if exclusive else "ROW EXCLUSIVE"
        self.conn.execute(text(f"LOCK TABLE member_activity_agg, group_activity_agg "
                               f"IN {mode} MODE"))
        self._aggregates_guarded = True

    def add_totals(self, dataset: str, activity: tuple[str, str, str], delta: Totals) -> None:
        """Stage a change to a group's totals for an activity (group, type, id)."""
        key = (dataset, *activity)
        held = self._cmd.totals.get(key)
        self._cmd.totals[key] = delta if held is None else held.combined(delta)

    def put_member_figures(self, dataset: str, user_id: str, activity: tuple[str, str, str],
                           figures: MemberFigures | None) -> None:
        """Stage what a learner now adds to a group activity (None: it adds nothing)."""
        self._cmd.member_figures[(dataset, user_id, *activity)] = figures

    def _flush_aggregates(self, done: _Staged) -> None:
        t = member_activity_agg
        for (dataset, user_id, group_id, kind, activity_id), f in done.member_figures.items():
            pk = {"dataset": dataset, "user_id": user_id, "group_id": group_id,
                  "activity_type": kind, "activity_id": activity_id}
            if f is None:
                self.conn.execute(_delete_by_columns(t, tuple(pk)), _keyed(pk))
                continue
            upsert(self.conn, t, [{**pk, "enrolled": f.enrolled, "started": f.started,
                                   "completed": f.completed, "progress": f.progress,
                                   "score_micro": f.score_micro, "updated_at": self.now}])
        # Key order: two batches adding to the same groups' totals at once (PostgreSQL
        # writer lanes, or two processes) lock those rows in one order, never crosswise.
        for (dataset, group_id, kind, activity_id), d in sorted(done.totals.items()):
            self._add_totals(dataset, group_id, kind, activity_id, d)

    def _add_totals(self, dataset: str, group_id: str, kind: str, activity_id: str,
                    d: Totals) -> None:
        """Add a delta to a group's totals in one statement (concurrent adders compose);
        a metric's time moves when one of its inputs changed."""
        params = {"dataset": dataset, "group_id": group_id, "activity_type": kind,
                  "activity_id": activity_id, "now": self.now, "now_set": self.now,
                  **{name: getattr(d, name) for name in TOTAL_SUMS}}
        self.conn.execute(_add_totals_stmt(self.conn.dialect.name, frozenset(d.moved())),
                          params)

    # -- enrolments ---------------------------------------------------------------------
    def enrolment(self, dataset: str, user_id: str, collection_id: str, context_id: str
                  ) -> Enrolment | None:
        pk = (dataset, user_id, collection_id, context_id)
        for staged in (self._cmd, self._done):
            if pk in staged.enrolments:
                return staged.enrolments[pk]
        if pk not in self._enrolments and (dataset, user_id) in self._user_enrolments:
            return None  # every stored enrolment of the learner is loaded: not one of them
        if pk not in self._enrolments:
            row = self._one(enrolments, {"dataset": dataset, "user_id": user_id,
                                         "collection_id": collection_id,
                                         "context_id": context_id})
            self._enrolments[pk] = None if row is None else self._loaded_enrolment(row)
        return self._enrolments[pk]

    def _loaded_enrolment(self, row: Any) -> Enrolment:
        e = rows.enrolment_from_row(row)
        self._enrolment_versions.setdefault(e.pk, (
            rows.enrolment_fact(e), row["instance_id"], row["counter"], row["updated_at"]))
        return e

    def enrolments_of(self, dataset: str, user_id: str) -> list[Enrolment]:
        """Every enrolment of a learner (stored and staged)."""
        if (dataset, user_id) not in self._user_enrolments:
            for row in self.conn.execute(select(enrolments).where(
                    enrolments.c.dataset == dataset, enrolments.c.user_id == user_id)).mappings():
                e = self._loaded_enrolment(row)
                self._enrolments.setdefault(e.pk, e)
            self._user_enrolments.add((dataset, user_id))
        found = {pk: e for pk, e in self._enrolments.items()
                 if e is not None and pk[:2] == (dataset, user_id)}
        for staged in (self._done, self._cmd):
            for pk, e in staged.enrolments.items():
                if pk[:2] == (dataset, user_id):
                    found[pk] = e
        return list(found.values())

    def enrolments_in(self, dataset: str, collection_id: str) -> list[Enrolment]:
        """Every enrolment in a collection (structure changes; not a hot path)."""
        return [rows.enrolment_from_row(r) for r in self.conn.execute(select(enrolments).where(
            enrolments.c.dataset == dataset, enrolments.c.collection_id == collection_id)
        ).mappings()]

    def put_enrolment(self, enrolment: Enrolment) -> None:
        self._cmd.enrolments[enrolment.pk] = enrolment

    # -- collections and contexts -------------------------------------------------------
    def _one(self, table: Table, where: dict[str, str]) -> Any:
        """One row by its primary key (a cold path: Core, not the batch loads)."""
        return self.conn.execute(_by_columns(table, tuple(where)), _keyed(where)
                                 ).mappings().first()

    def collection(self, dataset: str, collection_id: str) -> CollectionRecord | None:
        pk = (dataset, collection_id)
        for staged in (self._cmd, self._done):
            if pk in staged.collections:
                return staged.collections[pk]
        if pk not in self._collections:
            row = self._one(collections, {"dataset": dataset, "collection_id": collection_id})
            self._collections[pk] = None if row is None else rows.collection_from_row(row)
        return self._collections[pk]

    def put_collection(self, record: CollectionRecord) -> None:
        self._cmd.collections[(record.dataset, record.collection_id)] = record

    def context(self, dataset: str, context_id: str) -> ContextRecord | None:
        pk = (dataset, context_id)
        for staged in (self._cmd, self._done):
            if pk in staged.contexts:
                return staged.contexts[pk]
        if pk not in self._contexts:
            row = self._one(contexts, {"dataset": dataset, "context_id": context_id})
            self._contexts[pk] = None if row is None else ContextRecord(
                row["dataset"], row["context_id"], row["collection_id"], row["name"],
                row["start_date"], row["end_date"])
        return self._contexts[pk]

    def put_context(self, record: ContextRecord) -> None:
        self._cmd.contexts[(record.dataset, record.context_id)] = record

    # -- outbox, erasure, after-commit --------------------------------------------------
    def emit(self, dataset: str, topic: str, payload: Any, *, once: bool = False) -> None:
        """Queue work that may lag; it is committed with the batch (the outbox). With
        `once`, the same work already queued in this batch is not queued again."""
        work = (dataset, topic, payload)
        if once and (work in self._cmd.outbox or work in self._done.outbox):
            return
        self._cmd.outbox.append(work)

    def erase(self, dataset: str, user_id: str, scope: tuple[str, str] | None,
              enrolment: tuple[str, str] | None) -> None:
        """Delete a learner's records and leave a tombstone.

        Both None: everything of the learner. Else the summaries, sessions and attempts
        under `scope` (collection key, context key) and the `enrolment` (collection,
        context).
        """
        self._cmd.erasures.append((dataset, user_id, scope, enrolment))

    def after_commit(self, action: Callable[[], None]) -> None:
        self._cmd.after_commit.append(action)

    @property
    def after_commit_actions(self) -> list[Callable[[], None]]:
        return self._done.after_commit

    # -- flush --------------------------------------------------------------------------
    def allocate(self, n: int) -> Iterator[int]:
        """n fresh counters of this instance, for facts written outside the staging
        (sync's joins); see `_allocate`."""
        return self._allocate(n)

    def drop_summary(self, key: SummaryKey) -> None:
        """Delete a summary now (a sync erasure left it no session)."""
        self.conn.execute(delete(summaries).where(
            *(summaries.c[k] == v for k, v in rows.key_columns(key).items())))
        self.changed_summaries[key] = None
        self._summaries[key] = None

    def _allocate(self, n: int) -> Iterator[int]:
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
        d = self._done
        return not (d.erasures or d.records or d.local or d.collections or d.contexts
                    or d.outbox or d.totals or d.member_figures)

    def flush(self, commit: Callable[[], None] | None = None) -> None:
        """Write everything the committed commands staged, one statement per table.
        `commit` (PostgreSQL, `pipelinable` work only): the writes and the COMMIT go out
        together and come back together (psycopg's pipeline mode): one wait for all."""
        done = self._done
        for erasure in done.erasures:
            self._apply_erasure(*erasure)
        facts = (len(done.sessions) + len(done.attempts) + len(done.enrolments)
                 + len(done.collections) + len(done.contexts) + len(done.tries)
                 + len(done.item_attempts) + len(done.records)
                 + (1 if done.summaries else 0))
        counters = self._allocate(facts)
        now = self.now
        session_rows = [
            rows.session_to_row(s, partition_of(s.key.dataset, s.key.user_id), next(counters),
                                now) for s in done.sessions.values()]
        attempt_rows = [
            rows.attempt_to_row(a, partition_of(a.key.dataset, a.key.user_id), self.instance_id,
                                next(counters)) for a in done.attempts.values()]
        enrolment_rows = [self._enrolment_row(e, counters) for e in done.enrolments.values()]
        collection_rows = [
            rows.collection_to_row(c, shared_partition(c.dataset), self.instance_id,
                                   next(counters), now) for c in done.collections.values()]
        context_rows = [{
            "dataset": x.dataset, "context_id": x.context_id, "collection_id": x.collection_id,
            "name": x.name, "start_date": x.start_date, "end_date": x.end_date,
            "partition": shared_partition(x.dataset), "instance_id": self.instance_id,
            "counter": next(counters), "updated_at": now} for x in done.contexts.values()]
        try_rows = [
            rows.try_to_row(t, partition_of(t.key.dataset, t.key.user_id), self.instance_id,
                            next(counters), now) for t in done.tries.values()]
        item_attempt_rows = [
            rows.item_attempt_to_row(a, partition_of(a.key.dataset, a.key.user_id),
                                     self.instance_id, next(counters), now)
            for a in done.item_attempts.values()]
        # One revision for every summary this batch writes (the cache keeps the newest).
        rev = next(counters) if done.summaries else 0
        summary_rows = [rows.summary_to_row(s, sid, rev, now)
                        for s, sid in done.summaries.values()]
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
            self._flush_records(done.records, counters)
            for table, row in done.local.values():
                upsert(self.conn, table, [row])
            self.fast.upsert(item_attempts, item_attempt_rows)
            self._flush_aggregates(done)
            if done.outbox:
                self.conn.execute(outbox.insert(), [
                    {"dataset": d, "topic": t, "payload": rows.dumps(p), "created_at": now,
                     "available_at": now, "attempts": 0} for d, t, p in done.outbox])
            if commit is not None:
                commit()
        self.queued_work = bool(done.outbox)
        for summary, _ in done.summaries.values():
            self.changed_summaries[summary.key] = (summary, rev)

    def _enrolment_row(self, e: Enrolment, counters: Iterator[int]) -> dict[str, Any]:
        partition = partition_of(e.dataset, e.user_id)
        held = self._enrolment_versions.get(e.pk)
        if held is not None and held[0] == rows.enrolment_fact(e):
            return rows.enrolment_to_row(e, partition, held[1], held[2], held[3])
        return rows.enrolment_to_row(e, partition, self.instance_id, next(counters), self.now)

    def _flush_records(self, staged: dict[tuple[str, tuple[Any, ...]],
                                          tuple[str, dict[str, Any] | None]],
                       counters: Iterator[int]) -> None:
        """Write staged records; a deletion removes the row and leaves a tombstone."""
        by_table = {t.name: t for t in RECORD_TABLES}
        for (name, pk), (partition, row) in staged.items():
            table = by_table[name]
            version = {"partition": partition, "instance_id": self.instance_id,
                       "counter": next(counters), "updated_at": self.now}
            if row is not None:
                upsert(self.conn, table, [{**row, **version}])
                continue
            names = [c.name for c in table.primary_key.columns]
            self.conn.execute(delete(table).where(
                *(table.c[n] == v for n, v in zip(names, pk, strict=True))))
            upsert(self.conn, tombstones, [{
                "dataset": pk[0], "kind": name, "record_id": "\x1f".join(map(str, pk[1:])),
                **version}])

    def _apply_erasure(self, dataset: str, user_id: str, scope: tuple[str, str] | None,
                       enrolment: tuple[str, str] | None) -> None:
        everything = scope is None and enrolment is None
        if everything or scope is not None:
            for table in (sessions, summaries, attempts, tries, item_attempts):
                cond = [table.c.dataset == dataset, table.c.user_id == user_id]
                if scope is not None:
                    cond += [table.c.collection_key == scope[0], table.c.context_key == scope[1]]
                if table is summaries:
                    for row in self.conn.execute(select(summaries).where(*cond)).mappings():
                        key = rows.key_of(row)
                        self.changed_summaries[key] = None
                        self._summaries[key] = None
                self.conn.execute(delete(table).where(*cond))
        econd = [enrolments.c.dataset == dataset, enrolments.c.user_id == user_id]
        if enrolment is not None:
            econd += [enrolments.c.collection_id == enrolment[0],
                      enrolments.c.context_id == enrolment[1]]
        self.conn.execute(delete(enrolments).where(*econd))
        for pk in [pk for pk in self._enrolments if pk[:2] == (dataset, user_id)]:
            del self._enrolments[pk]
        self._user_enrolments.discard((dataset, user_id))
        record = erasure_record(scope, enrolment)
        upsert(self.conn, tombstones, [{
            "dataset": dataset, "partition": partition_of(dataset, user_id), "kind": "erasure",
            "record_id": record, "instance_id": self.instance_id,
            "counter": next(self._allocate(1)), "updated_at": self.now}])


def erasure_record(scope: tuple[str, str] | None, enrolment: tuple[str, str] | None) -> str:
    """The record id of an erasure's tombstone: "*" (all of a learner's records) or JSON
    naming the summaries' scope (collection key, context key) and the enrolment."""
    if scope is None and enrolment is None:
        return "*"
    return rows.dumps({"scope": None if scope is None else list(scope),
                       "enrolment": None if enrolment is None else list(enrolment)}) or ""


def parse_erasure(record_id: str) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """The (scope, enrolment) an erasure tombstone names (both None: everything)."""
    if record_id == "*":
        return None, None
    raw = rows.loads(record_id)
    scope, enrolment = raw.get("scope"), raw.get("enrolment")
    return (None if scope is None else (scope[0], scope[1]),
            None if enrolment is None else (enrolment[0], enrolment[1]))


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """`items` in consecutive slices of at most `size`."""
    for i in range(0, len(items), size):
        yield items[i:i + size]

