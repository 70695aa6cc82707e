"""An in-memory stand-in for `store.uow.BatchUnitOfWork`, for unit tests of the services.

`FakeUnitOfWork` offers what the write commands in `service/` use of the real unit of
work: the repositories `summaries`, `assessments`, `tries`, `enrolments`, `records` and
`group_figures`, `instance_id`, `now`, `changed_summaries`, the command boundaries
(`begin_command` / `commit_command` / `rollback_command`), `emit`, `erase`,
`after_commit`, `after_commit_actions` and `new_id`. Its repositories keep their rows in
the real `store.staged.StagedMap`, so a read sees the running command's staging, then the
batch's committed commands', then what is "stored"; a key looked up and not stored is
known absent; a rolled-back command leaves nothing. What is "stored" is plain dicts the
test seeds (`Stored`), read the first time a key is asked for, as the real one loads it.

What it fakes loosely (contracts allow it): `Tries.attempts_of`, `named_attempts` and
`marks` answer every stored and staged attempt of the try (a superset of any window);
`Enrolments.in_collection` and `GroupFigures.in_group_activities` read the stored rows only,
as the real ones read the database.

What it does not fake: SQL, the connection (`uow.conn` and `uow.fast` raise
`ReachedPastTheUnitOfWork`: a command that needs them cannot be unit-tested on this
fake), `flush` (nothing is written anywhere; `committed` shows what a flush would write),
the sync counters and versions, the application of erasures (they are recorded in
`committed.erasures`, not carried out), `guard`'s table lock (it only counts calls), and
the order of writes between tables.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table

from learnlog.domain.assessment import Attempt
from learnlog.domain.enrolment import CollectionRecord, ContextRecord, Enrolment
from learnlog.domain.group_aggregates import MemberFigures, Totals
from learnlog.domain.keys import SummaryKey
from learnlog.domain.mastery import ItemAttempt, Mark, Try, mark_of
from learnlog.domain.summary import Session, Summary
from learnlog.store.staged import StagedMap

SessionId = tuple[str, str, str]  # dataset, user, session id
EnrolmentPk = tuple[str, str, str, str]  # dataset, user, collection, context
RecordKey = tuple[str, tuple[Any, ...]]  # table name, primary key
GroupActivity = tuple[str, str, str]  # group, activity type, activity id
Erasure = tuple[str, str, tuple[str, str] | None, tuple[str, str] | None]

_KEEP: Any = object()  # `FakeSummaries.put`: the open session id stays as it is


class ReachedPastTheUnitOfWork(AssertionError):
    """A command used the connection (or the driver) directly, past the repositories."""


@dataclass
class Stored:
    """What the fake "database" holds: seed it before applying commands."""

    summaries: dict[SummaryKey, tuple[Summary, str | None]] = field(default_factory=dict)
    sessions: dict[SessionId, Session] = field(default_factory=dict)
    attempts: dict[tuple[SummaryKey, str], Attempt] = field(default_factory=dict)
    tries: dict[tuple[SummaryKey, int], Try] = field(default_factory=dict)
    item_attempts: dict[tuple[str, str, str], ItemAttempt] = field(default_factory=dict)
    enrolments: dict[EnrolmentPk, Enrolment] = field(default_factory=dict)
    collections: dict[tuple[str, str], CollectionRecord] = field(default_factory=dict)
    contexts: dict[tuple[str, str], ContextRecord] = field(default_factory=dict)
    # (table name, primary key) → the row without its sync columns.
    records: dict[RecordKey, dict[str, Any]] = field(default_factory=dict)

    def summary(self, summary: Summary, open_session: Session | None = None) -> None:
        """Store a summary (and the open session it names)."""
        sid = None if open_session is None else open_session.session_id
        self.summaries[summary.key] = (summary, sid)
        if open_session is not None:
            self.session(open_session)

    def session(self, session: Session) -> None:
        self.sessions[(session.key.dataset, session.key.user_id, session.session_id)] = session

    def enrolment(self, enrolment: Enrolment) -> None:
        self.enrolments[enrolment.pk] = enrolment

    def collection(self, record: CollectionRecord) -> None:
        self.collections[(record.dataset, record.collection_id)] = record

    def record(self, table: Table, row: dict[str, Any]) -> None:
        pk = tuple(row[c.name] for c in table.primary_key.columns)
        self.records[(table.name, pk)] = dict(row)


class FakeSummaries:
    """`repositories.Summaries` over `Stored`."""

    def __init__(self, stored: Stored, changed: dict[SummaryKey, tuple[Summary, int] | None]
                 ) -> None:
        self.stored, self.changed = stored, changed
        self.entries: StagedMap[SummaryKey, tuple[Summary, str | None]] = StagedMap()
        self.sessions: StagedMap[SessionId, Session] = StagedMap()
        self.loads: list[list[SummaryKey]] = []  # what was asked to load, in order

    def load(self, keys: Iterable[SummaryKey]) -> None:
        wanted = [k for k in dict.fromkeys(keys) if k not in self.entries.loaded]
        self.loads.append(wanted)
        for k in wanted:
            entry = self.stored.summaries.get(k)
            self.entries.keep(k, entry)
            if entry is not None and entry[1] is not None:
                self.load_sessions([(k.dataset, k.user_id, entry[1])])

    def _entry(self, key: SummaryKey) -> tuple[Summary, str | None] | None:
        return self.entries.get(key, self.load)

    def get(self, key: SummaryKey) -> Summary | None:
        entry = self._entry(key)
        return None if entry is None else entry[0]

    def open_session(self, key: SummaryKey) -> Session | None:
        entry = self._entry(key)
        if entry is None or entry[1] is None:
            return None
        return self.session(key.dataset, key.user_id, entry[1])

    def put(self, summary: Summary, *, open_session_id: str | None = _KEEP) -> None:
        if open_session_id is _KEEP:
            entry = self._entry(summary.key)
            open_session_id = None if entry is None else entry[1]
        self.entries.put(summary.key, (summary, open_session_id))

    def drop(self, key: SummaryKey) -> None:
        self.stored.summaries.pop(key, None)
        self.changed[key] = None
        self.entries.forget(key)

    def load_sessions(self, ids: Sequence[SessionId],
                      keys: dict[SessionId, SummaryKey] | None = None) -> None:
        for i in dict.fromkeys(ids):
            self.sessions.keep(i, self.stored.sessions.get(i))

    def session(self, dataset: str, user_id: str, session_id: str) -> Session | None:
        return self.sessions.get((dataset, user_id, session_id), self.load_sessions)

    def put_session(self, session: Session) -> None:
        self.sessions.put((session.key.dataset, session.key.user_id, session.session_id),
                          session)

    def forget_learner(self, dataset: str, user_id: str, scope: tuple[str, str] | None
                       ) -> None:
        for key in list(self.stored.summaries):
            if (key.dataset, key.user_id) == (dataset, user_id) and (
                    scope is None or (key.collection_key, key.context_key) == scope):
                self.changed[key] = None
                self.entries.forget(key)


class FakeAssessments:
    """`repositories.Assessments` over `Stored`."""

    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self.attempts: StagedMap[tuple[SummaryKey, str], Attempt] = StagedMap()

    def of(self, key: SummaryKey) -> list[Attempt]:
        for (k, aid), a in self.stored.attempts.items():
            if k == key:
                self.attempts.keep((k, aid), a)
        merged = {aid: a for (k, aid), a in self.attempts.loaded.items()
                  if k == key and a is not None}
        merged.update((aid, a) for (k, aid), a in self.attempts.staged() if k == key)
        return list(merged.values())

    def get(self, key: SummaryKey, attempt_id: str) -> Attempt | None:
        return next((a for a in self.of(key) if a.attempt_id == attempt_id), None)

    def put(self, attempt: Attempt) -> None:
        self.attempts.put((attempt.key, attempt.attempt_id), attempt)


class FakeTries:
    """`repositories.Tries` over `Stored`: a try's attempts and marks are all of them."""

    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self.tries: StagedMap[tuple[SummaryKey, int], Try] = StagedMap()
        self.item_attempts: StagedMap[tuple[str, str, str], ItemAttempt] = StagedMap()
        self.tried: StagedMap[tuple[SummaryKey, int], bool] = StagedMap()

    def load(self, keys: Iterable[SummaryKey]) -> None:
        """Nothing to load: `of` reads the stored tries."""

    def of(self, key: SummaryKey) -> list[Try]:
        found = {level: t for (k, level), t in self.stored.tries.items() if k == key}
        found.update((level, t) for (k, level), t in self.tries.staged() if k == key)
        return list(found.values())

    def at(self, key: SummaryKey, level: int) -> Try | None:
        return next((t for t in self.of(key) if t.level == level), None)

    def put(self, t: Try) -> None:
        self.tries.put((t.key, t.level), t)

    def load_attempts(self, tries_wanted: Iterable[tuple[SummaryKey, int, int | None]]
                      ) -> None:
        """Nothing to load: every stored attempt is always at hand."""

    def load_marks(self, tries_wanted: Iterable[tuple[SummaryKey, int, int | None]]
                   ) -> None:
        """Nothing to load: every stored attempt is always at hand."""

    def load_named_attempts(self, key: SummaryKey, level: int, ids: Iterable[str],
                            items: Iterable[str]) -> None:
        """Nothing to load: every stored attempt is always at hand."""

    def named_attempts(self, key: SummaryKey, level: int) -> list[ItemAttempt]:
        found = {a.attempt_id: a for a in self.stored.item_attempts.values()
                 if a.key == key and a.level == level}
        found.update((a.attempt_id, a) for _, a in self.item_attempts.staged()
                     if a.key == key and a.level == level)
        return list(found.values())

    def attempts_of(self, key: SummaryKey, level: int, window: int | None = None
                    ) -> list[ItemAttempt]:
        return self.named_attempts(key, level)

    def marks(self, key: SummaryKey, level: int, window: int | None) -> list[Mark]:
        return [mark_of(a) for a in self.named_attempts(key, level)]

    def put_attempt(self, attempt: ItemAttempt) -> None:
        self.item_attempts.put(
            (attempt.key.dataset, attempt.key.user_id, attempt.attempt_id), attempt)
        self.tried.put((attempt.key, attempt.level), True)


class FakeEnrolments:
    """`repositories.Enrolments` over `Stored`."""

    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self.enrolments: StagedMap[EnrolmentPk, Enrolment] = StagedMap()
        self.collections: StagedMap[tuple[str, str], CollectionRecord] = StagedMap()
        self.contexts: StagedMap[tuple[str, str], ContextRecord] = StagedMap()

    def _load(self, pks: list[EnrolmentPk]) -> None:
        for pk in pks:
            self.enrolments.keep(pk, self.stored.enrolments.get(pk))

    def get(self, dataset: str, user_id: str, collection_id: str, context_id: str
            ) -> Enrolment | None:
        return self.enrolments.get((dataset, user_id, collection_id, context_id), self._load)

    def of_learner(self, dataset: str, user_id: str) -> list[Enrolment]:
        for pk, e in self.stored.enrolments.items():
            if pk[:2] == (dataset, user_id):
                self.enrolments.keep(pk, e)
        return [e for pk, e in self.enrolments.known() if pk[:2] == (dataset, user_id)]

    def in_collection(self, dataset: str, collection_id: str) -> list[Enrolment]:
        """As stored, like the real one (it reads the table)."""
        return [e for e in self.stored.enrolments.values()
                if (e.dataset, e.collection_id) == (dataset, collection_id)]

    def put(self, enrolment: Enrolment) -> None:
        self.enrolments.put(enrolment.pk, enrolment)

    def forget_learner(self, dataset: str, user_id: str) -> None:
        for pk in [pk for pk in self.enrolments.loaded if pk[:2] == (dataset, user_id)]:
            del self.enrolments.loaded[pk]

    def collection(self, dataset: str, collection_id: str) -> CollectionRecord | None:
        return self.collections.get((dataset, collection_id), lambda pks: [
            self.collections.keep(pk, self.stored.collections.get(pk)) for pk in pks])

    def put_collection(self, record: CollectionRecord) -> None:
        self.collections.put((record.dataset, record.collection_id), record)

    def context(self, dataset: str, context_id: str) -> ContextRecord | None:
        return self.contexts.get((dataset, context_id), lambda pks: [
            self.contexts.keep(pk, self.stored.contexts.get(pk)) for pk in pks])

    def put_context(self, record: ContextRecord) -> None:
        self.contexts.put((record.dataset, record.context_id), record)


class FakeRecords:
    """`repositories.Records` over `Stored.records` (staged wins; None: deleted)."""

    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self.records: StagedMap[RecordKey, tuple[str, dict[str, Any] | None]] = StagedMap()
        self.local: StagedMap[RecordKey, tuple[Table, dict[str, Any]]] = StagedMap()

    def get(self, table: Table, pk: tuple[Any, ...]) -> dict[str, Any] | None:
        ident = (table.name, pk)
        if self.records.is_staged(ident):
            staged = self.records.get(ident, _never)
            return None if staged is None else staged[1]
        if self.local.is_staged(ident):
            local = self.local.get(ident, _never)
            return None if local is None else local[1]
        return self.stored.records.get(ident)

    def child_groups(self, dataset: str, group_id: str) -> list[str]:
        found = {pk: row for (name, pk), row in self.stored.records.items()
                 if name == "groups" and pk[0] == dataset}
        for (name, pk), (_, row) in self.records.staged():
            if name == "groups" and pk[0] == dataset:
                found[pk] = row
        return [pk[1] for pk, row in found.items()
                if row is not None and row.get("parent_id") == group_id]

    def latest_user_session(self, dataset: str, user_id: str) -> dict[str, Any] | None:
        found = {pk: row for (name, pk), row in self.stored.records.items()
                 if name == "user_sessions" and pk[:2] == (dataset, user_id)}
        for (name, pk), (_, row) in self.records.staged():
            if name == "user_sessions" and pk[:2] == (dataset, user_id):
                found[pk] = row
        live = [row for row in found.values() if row is not None]
        return max(live, key=lambda row: row["last_interaction_at"], default=None)

    def put(self, table: Table, partition: str, row: dict[str, Any]) -> None:
        pk = tuple(row[c.name] for c in table.primary_key.columns)
        self.records.put((table.name, pk), (partition, row))

    def put_local(self, table: Table, row: dict[str, Any]) -> None:
        pk = tuple(row[c.name] for c in table.primary_key.columns)
        self.local.put((table.name, pk), (table, row))

    def delete(self, table: Table, partition: str, pk: tuple[Any, ...]) -> None:
        self.records.put((table.name, pk), (partition, None))

    def count(self) -> int:
        return len(self.records.done)


def _never(keys: list[Any]) -> None:  # pragma: no cover - only asked for staged keys
    raise AssertionError(f"not staged: {keys}")


class FakeGroupFigures:
    """`repositories.GroupFigures`; `in_group_activities` reads the stored memberships and
    group activities (`Stored.records`), as the real one reads the tables."""

    def __init__(self, stored: Stored) -> None:
        self.stored = stored
        self.guarded: list[bool] = []  # `exclusive` of every `guard` call
        self.totals: StagedMap[tuple[str, str, str, str], Totals] = StagedMap()
        self.members: StagedMap[tuple[str, str, str, str, str], MemberFigures | None] = (
            StagedMap())

    def in_group_activities(self, dataset: str, user_id: str) -> bool:
        groups = {pk[1] for (name, pk), row in self.stored.records.items()
                  if name == "memberships" and pk[0] == dataset and pk[2] == user_id
                  and row["role"] == "learner"}
        return any(name == "group_activities" and pk[0] == dataset and pk[1] in groups
                   for name, pk in self.stored.records)

    def members_of(self, dataset: str, group_id: str) -> list[str]:
        return [pk[2] for (name, pk) in self.stored.records
                if name == "memberships" and pk[0] == dataset and pk[1] == group_id]

    def guard(self, *, exclusive: bool = False) -> None:
        self.guarded.append(exclusive)

    def add_totals(self, dataset: str, activity: GroupActivity, delta: Totals) -> None:
        key = (dataset, *activity)
        held = self.totals.running.get(key)
        self.totals.put(key, delta if held is None else held.combined(delta))

    def put_member(self, dataset: str, user_id: str, activity: GroupActivity,
                   figures: MemberFigures | None) -> None:
        self.members.put((dataset, user_id, *activity), figures)

    def commit(self) -> None:
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


@dataclass(frozen=True)
class Committed:
    """What the batch's committed commands staged: what a flush would write."""

    summaries: dict[SummaryKey, tuple[Summary, str | None]]
    sessions: dict[SessionId, Session]
    attempts: dict[tuple[SummaryKey, str], Attempt]
    tries: dict[tuple[SummaryKey, int], Try]
    item_attempts: dict[tuple[str, str, str], ItemAttempt]
    enrolments: dict[EnrolmentPk, Enrolment]
    collections: dict[tuple[str, str], CollectionRecord]
    contexts: dict[tuple[str, str], ContextRecord]
    records: dict[RecordKey, tuple[str, dict[str, Any] | None]]
    local: dict[RecordKey, tuple[Table, dict[str, Any]]]
    totals: dict[tuple[str, str, str, str], Totals]
    members: dict[tuple[str, str, str, str, str], MemberFigures | None]
    outbox: list[tuple[str, str, Any]]
    erasures: list[Erasure]

    def empty(self) -> bool:
        return not any(vars(self).values())


class FakeUnitOfWork:
    """The surface of `BatchUnitOfWork` the services use, in memory (see the module)."""

    def __init__(self, stored: Stored | None = None, *, instance_id: str = "inst-1",
                 now: int = 1_700_000_000_000) -> None:
        self.stored = stored if stored is not None else Stored()
        self.instance_id = instance_id
        self.now = now
        self.changed_summaries: dict[SummaryKey, tuple[Summary, int] | None] = {}
        self.summaries = FakeSummaries(self.stored, self.changed_summaries)
        self.assessments = FakeAssessments(self.stored)
        self.tries = FakeTries(self.stored)
        self.enrolments = FakeEnrolments(self.stored)
        self.records = FakeRecords(self.stored)
        self.group_figures = FakeGroupFigures(self.stored)
        self._outbox: StagedMap[int, tuple[str, str, Any]] = StagedMap()
        self._erasures: StagedMap[int, Erasure] = StagedMap()
        self._after_commit: StagedMap[int, Callable[[], None]] = StagedMap()
        self._staged_maps: tuple[StagedMap[Any, Any], ...] = (
            self.summaries.entries, self.summaries.sessions, self.assessments.attempts,
            self.tries.tries, self.tries.item_attempts, self.tries.tried,
            self.enrolments.enrolments, self.enrolments.collections,
            self.enrolments.contexts, self.records.records, self.records.local,
            self._outbox, self._erasures, self._after_commit)
        self._order = itertools.count(1)
        self._ids = itertools.count(1)

    # -- what the real one has and this one refuses ---------------------------------------
    @property
    def conn(self) -> Any:
        raise ReachedPastTheUnitOfWork("the command used uow.conn (SQL past the repositories)")

    @property
    def fast(self) -> Any:
        raise ReachedPastTheUnitOfWork("the command used uow.fast (driver statements)")

    # -- ids ------------------------------------------------------------------------------
    def new_id(self) -> str:
        """Deterministic ids: id-1, id-2, … (the real one is random)."""
        return f"id-{next(self._ids)}"

    # -- command boundaries ---------------------------------------------------------------
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

    # -- outbox, erasure, after-commit ----------------------------------------------------
    def emit(self, dataset: str, topic: str, payload: Any, *, once: bool = False) -> None:
        work = (dataset, topic, payload)
        if once and any(w == work for _, w in self._outbox.staged()):
            return
        self._outbox.put(next(self._order), work)

    def erase(self, dataset: str, user_id: str, scope: tuple[str, str] | None,
              enrolment: tuple[str, str] | None) -> None:
        self._erasures.put(next(self._order), (dataset, user_id, scope, enrolment))

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after_commit.put(next(self._order), action)

    @property
    def after_commit_actions(self) -> list[Callable[[], None]]:
        return list(self._after_commit.done.values())

    # -- what a test reads ----------------------------------------------------------------
    @property
    def emitted(self) -> list[tuple[str, str, Any]]:
        """Outbox work staged so far (committed commands first, then the running one)."""
        return [w for _, w in sorted(self._outbox.staged())]

    @property
    def committed(self) -> Committed:
        s, e, t, r, g = (self.summaries, self.enrolments, self.tries, self.records,
                         self.group_figures)
        return Committed(
            dict(s.entries.done), dict(s.sessions.done), dict(self.assessments.attempts.done),
            dict(t.tries.done), dict(t.item_attempts.done), dict(e.enrolments.done),
            dict(e.collections.done), dict(e.contexts.done), dict(r.records.done),
            dict(r.local.done), dict(g.totals.done), dict(g.members.done),
            [w for _, w in sorted(self._outbox.done.items())],
            [x for _, x in sorted(self._erasures.done.items())])

    def staged_anything(self) -> bool:
        """Whether the running command has staged anything (a failed one must not)."""
        return any(m.running for m in self._staged_maps) or bool(
            self.group_figures.totals.running or self.group_figures.members.running)

    def run(self, command: Any, ctx: Any) -> Any:
        """Apply one command as the writer does: begin, apply, commit, or roll back and
        raise."""
        self.begin_command()
        try:
            result = command.apply(self, ctx)
        except Exception:
            self.rollback_command()
            raise
        self.commit_command()
        return result
