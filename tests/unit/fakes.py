"""An in-memory stand-in for `store.uow.BatchUnitOfWork`, for unit tests of the services.

`FakeUnitOfWork` is the real unit of work over in-memory repositories: it subclasses
`BatchUnitOfWork` (the command boundaries, `emit` and `erase` are the real
ones) and each fake repository subclasses the real one, replacing only what reads the
database. So a read sees the running command's staging, then the batch's committed
commands', then what is "stored"; a key looked up and not stored is known absent; a
rolled-back command leaves nothing — by the same code the writer runs. What is "stored"
is plain dicts the test seeds (`Stored`).

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table

from learnlog.domain.assessment import Attempt
from learnlog.domain.enrolment import CollectionRecord, ContextRecord, Enrolment
from learnlog.domain.group_aggregates import MemberFigures, Totals
from learnlog.domain.keys import SummaryKey
from learnlog.domain.mastery import ItemAttempt, Mark, Try, mark_of
from learnlog.domain.summary import Session, Summary
from learnlog.store.repositories import (
    Assessments,
    Enrolments,
    GroupFigures,
    Records,
    Summaries,
    Tries,
)
from learnlog.store.uow import BatchUnitOfWork

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


class FakeSummaries(Summaries):
    """`repositories.Summaries` over `Stored`: the real staging, the loads from dicts."""

    def __init__(self, stored: Stored, changed: dict[SummaryKey, tuple[Summary, int] | None]
                 ) -> None:
        super().__init__(None, None, changed)  # type: ignore[arg-type]  # no SQL here
        self.stored = stored
        self.loads: list[list[SummaryKey]] = []  # what was asked to load, in order

    def load(self, keys: Iterable[SummaryKey]) -> None:
        wanted = [k for k in dict.fromkeys(keys) if k not in self.entries.loaded]
        self.loads.append(wanted)
        for k in wanted:
            entry = self.stored.summaries.get(k)
            self.entries.keep(k, entry)
            if entry is not None and entry[1] is not None:
                self.load_sessions([(k.dataset, k.user_id, entry[1])])

    def drop(self, key: SummaryKey) -> None:
        self.stored.summaries.pop(key, None)
        self.changed[key] = None
        self.entries.forget(key)

    def load_sessions(self, ids: Sequence[SessionId],
                      keys: dict[SessionId, SummaryKey] | None = None) -> None:
        for i in dict.fromkeys(ids):
            self.sessions.keep(i, self.stored.sessions.get(i))

    def forget_learner(self, dataset: str, user_id: str, scope: tuple[str, str] | None
                       ) -> None:
        for key in list(self.stored.summaries):
            if (key.dataset, key.user_id) == (dataset, user_id) and (
                    scope is None or (key.collection_key, key.context_key) == scope):
                self.changed[key] = None
                self.entries.forget(key)


class FakeAssessments(Assessments):
    """`repositories.Assessments` over `Stored`."""

    def __init__(self, stored: Stored) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # no SQL here
        self.stored = stored

    def _stored(self, key: SummaryKey) -> list[Attempt]:
        return [a for (k, _), a in self.stored.attempts.items() if k == key]


class FakeTries(Tries):
    """`repositories.Tries` over `Stored`: the real staging; a try's attempts and marks
    are all of them."""

    def __init__(self, stored: Stored) -> None:
        super().__init__(None, None)  # type: ignore[arg-type]  # no SQL here
        self.stored = stored

    def load(self, keys: Iterable[SummaryKey]) -> None:
        """Nothing to load: `of` reads the stored tries."""

    def of(self, key: SummaryKey) -> list[Try]:
        found = {level: t for (k, level), t in self.stored.tries.items() if k == key}
        found.update((level, t) for (k, level), t in self.tries.staged() if k == key)
        return list(found.values())

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



class FakeEnrolments(Enrolments):
    """`repositories.Enrolments` over `Stored`: the real staging, the loads from dicts."""

    def __init__(self, stored: Stored) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # no SQL here
        self.stored = stored

    def _load_one(self, pks: list[EnrolmentPk]) -> None:
        for pk in pks:
            self.enrolments.keep(pk, self.stored.enrolments.get(pk))

    def of_learner(self, dataset: str, user_id: str) -> list[Enrolment]:
        for pk, e in self.stored.enrolments.items():
            if pk[:2] == (dataset, user_id):
                self.enrolments.keep(pk, e)
        return [e for pk, e in self.enrolments.known() if pk[:2] == (dataset, user_id)]

    def in_collection(self, dataset: str, collection_id: str) -> list[Enrolment]:
        """As stored, like the real one (it reads the table)."""
        return [e for e in self.stored.enrolments.values()
                if (e.dataset, e.collection_id) == (dataset, collection_id)]

    def _load_collection(self, pks: list[tuple[str, str]]) -> None:
        for pk in pks:
            self.collections.keep(pk, self.stored.collections.get(pk))

    def _load_context(self, pks: list[tuple[str, str]]) -> None:
        for pk in pks:
            self.contexts.keep(pk, self.stored.contexts.get(pk))


class FakeRecords(Records):
    """`repositories.Records` over `Stored.records`: the real staging, reads from dicts."""

    def __init__(self, stored: Stored) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # no SQL here
        self.stored = stored

    def _stored(self, table: Table, pk: tuple[Any, ...]) -> dict[str, Any] | None:
        return self.stored.records.get((table.name, pk))

    def _stored_children(self, dataset: str, group_id: str) -> list[str]:
        return [pk[1] for (name, pk), row in self.stored.records.items()
                if name == "groups" and pk[0] == dataset and row.get("parent_id") == group_id]

    def _stored_latest_session(self, dataset: str, user_id: str) -> dict[str, Any] | None:
        return max((row for (name, pk), row in self.stored.records.items()
                    if name == "user_sessions" and pk[:2] == (dataset, user_id)),
                   key=lambda row: row["last_interaction_at"], default=None)


class FakeGroupFigures(GroupFigures):
    """`repositories.GroupFigures`: the real staging; `in_group_activities` and
    `members_of` read the stored memberships and group activities (`Stored.records`), as
    the real ones read the tables; `guard` only counts calls."""

    def __init__(self, stored: Stored) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # no SQL here
        self.stored = stored
        self.guarded: list[bool] = []  # `exclusive` of every `guard` call

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


class FakeUnitOfWork(BatchUnitOfWork):
    """`BatchUnitOfWork` over in-memory repositories (see the module): the real command
    boundaries, outbox, erasure and after-commit staging; no connection."""

    def __init__(self, stored: Stored | None = None, *, instance_id: str = "inst-1",
                 now: int = 1_700_000_000_000) -> None:
        self.stored = stored if stored is not None else Stored()
        changed: dict[SummaryKey, tuple[Summary, int] | None] = {}
        self._start(instance_id, now, changed, FakeSummaries(self.stored, changed),
                    FakeAssessments(self.stored), FakeTries(self.stored),
                    FakeEnrolments(self.stored), FakeRecords(self.stored),
                    FakeGroupFigures(self.stored))
        self._ids = itertools.count(1)

    # -- what the real one has and this one refuses ---------------------------------------
    @property  # type: ignore[override]
    def conn(self) -> Any:
        raise ReachedPastTheUnitOfWork("the command used uow.conn (SQL past the repositories)")

    @property  # type: ignore[override]
    def fast(self) -> Any:
        raise ReachedPastTheUnitOfWork("the command used uow.fast (driver statements)")

    def new_id(self) -> str:  # type: ignore[override]
        """Deterministic ids: id-1, id-2, … (the real one is random)."""
        return f"id-{next(self._ids)}"

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
