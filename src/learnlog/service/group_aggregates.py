"""Group activity aggregates (SPEC §2.7, §4.2), kept incrementally through the outbox.

Anything that can move a learner's figures in a group activity — its enrolments in a
collection, a completion, a score, joining or leaving a group, a group gaining or losing
an activity — queues `group.member` for that learner. Its handler recomputes what the
learner adds to each (group, activity) it belongs to as a learner, compares with what it
added before (`member_activity_agg`) and applies the difference to the group's totals
(`group_activity_agg`, additive upserts). The rows it reads are the learner's own
(memberships, the groups' activities, its enrolments and summaries): the work per event
does not grow with the size of the group. Applying an event twice changes nothing the
second time, so at-least-once delivery is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from sqlalchemy import Connection, bindparam, func, select, union

from ..domain.enrolment import content_key
from ..domain.group_aggregates import (
    METRICS,
    NOBODY,
    ContentFigures,
    ContextFigures,
    MemberFigures,
    Totals,
    content_figures,
    enrolment_standing,
    member_figures,
    member_row,
    single_content,
)
from ..domain.keys import SummaryKey, resolve_key
from ..domain.summary import Summary
from ..store import rows
from ..store.fastsql import Fetch, Plan, param_mark, run_plan
from ..store.schema import (
    AGG_TIMES,
    enrolments,
    group_activities,
    group_activity_agg,
    member_activity_agg,
    memberships,
    summaries,
)
from ..store.sqlkit import chunks
from ..store.uow import BatchUnitOfWork
from .commands import Command, LearnerCommand
from .ports import ServiceContext
from .reads import collection_records
from .topics import GROUP_MEMBER

READ_CHUNK = 1000  # learners a check reads through one cache
MEMBER_CHUNK = 500  # members whose rows one pair of queries reads


def queue_member(uow: BatchUnitOfWork, dataset: str, user_id: str, *,
                 always: bool = False) -> None:
    """Queue a refresh of the learner's group figures (committed with the batch): after a
    change to its progress only when it is a learner of a group with activities (one
    indexed lookup per learner and batch); `always` after a change to its groups."""
    if always or uow.group_figures.in_group_activities(dataset, user_id):
        uow.emit(dataset, GROUP_MEMBER, {"userId": user_id}, once=True)


@cache
def _pairs_stmt() -> Any:
    mine = select(memberships.c.group_id).where(
        memberships.c.dataset == bindparam("dataset"),
        memberships.c.user_id == bindparam("user_id"), memberships.c.role == "learner")
    return select(group_activities.c.group_id, group_activities.c.activity_type,
                  group_activities.c.activity_id).where(
        group_activities.c.dataset == bindparam("dataset"),
        group_activities.c.group_id.in_(mine))


def _pairs(conn: Connection, dataset: str, user_id: str) -> list[tuple[str, str, str]]:
    """(group, activity type, activity id) of every activity of the learner's groups."""
    return [(g, t, a) for g, t, a in conn.execute(
        _pairs_stmt(), {"dataset": dataset, "user_id": user_id})]


def _single(summary: Summary) -> ContextFigures:
    return single_content(summary.status, summary.best_score, summary.best_max_score)


def _collection(uow: BatchUnitOfWork, ctx: ServiceContext, dataset: str, user_id: str,
                collection_id: str) -> MemberFigures:
    """A learner in a collection: one standing per context it is enrolled under."""
    record = uow.enrolments.collection(dataset, collection_id)
    leaves = record.structure.leaves if record is not None else ()
    held = [e for e in uow.enrolments.of_learner(dataset, user_id)
            if e.collection_id == collection_id and e.active]
    keys = [[content_key(ctx.mode, e, c) for c in leaves] for e in held]
    uow.summaries.load([k for each in keys for k in each])  # one query, not one per leaf
    return member_figures([enrolment_standing(e.figures, [uow.summaries.get(k) for k in each])
                           for e, each in zip(held, keys, strict=True)])


def _content(uow: BatchUnitOfWork, ctx: ServiceContext, dataset: str, user_id: str,
             content_id: str) -> MemberFigures:
    """A learner on one content (or quiz) consumed on its own: its summary's figures."""
    summary = uow.summaries.get(resolve_key(ctx.mode, dataset=dataset, user_id=user_id,
                                      content_id=content_id))
    return NOBODY if summary is None else member_figures([_single(summary)])


def figures_for(uow: BatchUnitOfWork, ctx: ServiceContext, dataset: str, user_id: str,
                activity_type: str, activity_id: str) -> MemberFigures:
    if activity_type == "Collection":
        return _collection(uow, ctx, dataset, user_id, activity_id)
    return _content(uow, ctx, dataset, user_id, activity_id)


def _stored(row: Any) -> MemberFigures:
    return MemberFigures(bool(row["enrolled"]), bool(row["started"]), bool(row["completed"]),
                         row["progress"], row["score_micro"])


@dataclass(frozen=True, slots=True)
class RefreshMember(LearnerCommand):
    """Bring one learner's contributions to its groups' totals up to date."""

    dataset: str
    user_id: str

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        uow.group_figures.guard()
        wanted = _wanted(uow, ctx, self.dataset, self.user_id)
        changed = 0
        for pair, old, new in _differences(_held(uow.conn, self.dataset, self.user_id),
                                           wanted):
            delta = Totals()
            if old is not None:
                delta = delta.minus(old)
            if new is not None:
                delta = delta.plus(new)
            uow.group_figures.add_totals(self.dataset, pair, delta)
            uow.group_figures.put_member(self.dataset, self.user_id, pair, new)
            changed += 1
        return {"changed": changed}


Pair = tuple[str, str, str]  # (group, activity type, activity id)


def _wanted(uow: BatchUnitOfWork, ctx: ServiceContext, dataset: str, user_id: str
            ) -> dict[Pair, MemberFigures]:
    """What the learner should add to each activity of its groups, from the facts."""
    return {pair: figures_for(uow, ctx, dataset, user_id, pair[1], pair[2])
            for pair in _pairs(uow.conn, dataset, user_id)}


def _held(conn: Connection, dataset: str, user_id: str) -> dict[Pair, MemberFigures]:
    """What the learner adds now, as stored."""
    return {(r["group_id"], r["activity_type"], r["activity_id"]): _stored(r)
            for r in conn.execute(_held_stmt(), {"dataset": dataset, "user_id": user_id}
                                  ).mappings()}


@cache
def _held_stmt() -> Any:
    t = member_activity_agg
    return select(t).where(t.c.dataset == bindparam("dataset"),
                           t.c.user_id == bindparam("user_id"))


def _differences(held: dict[Pair, MemberFigures], wanted: dict[Pair, MemberFigures]
                 ) -> list[tuple[Pair, MemberFigures | None, MemberFigures | None]]:
    return [(pair, held.get(pair), wanted.get(pair))
            for pair in sorted(held.keys() | wanted.keys())
            if held.get(pair) != wanted.get(pair)]


@dataclass
class AggregateReport:
    """What a check (or rebuild) of the group figures found."""

    learners: int = 0
    activities: int = 0  # (group, activity) totals compared
    problems: list[str] = field(default_factory=list)


def check_aggregates(uow: BatchUnitOfWork, ctx: ServiceContext, *, fix: bool = False,
                     progress: Callable[[int], None] | None = None) -> AggregateReport:
    """Recompute every learner's figures and every group's totals from the facts and
    compare them with the stored ones; with `fix`, stage the corrections in `uow` (the
    totals through the same additive path as the upkeep, so a metric's lastUpdatedOn
    moves only when it changes). Reads one learner at a time, through a cache renewed
    every READ_CHUNK learners; memory holds the totals and the corrections."""
    report = AggregateReport()
    expected: dict[tuple[str, Pair], Totals] = {}
    reader = uow
    for n, (dataset, user_id) in enumerate(_learners(uow.conn)):
        if n % READ_CHUNK == 0:  # what was read for earlier learners is let go
            reader = BatchUnitOfWork(uow.conn, uow.instance_id, uow.now)
        wanted = _wanted(reader, ctx, dataset, user_id)
        for pair, old, new in _differences(_held(uow.conn, dataset, user_id), wanted):
            report.problems.append(f"group member {dataset}/{user_id} in {'/'.join(pair)}: "
                                   f"stored {old}, facts say {new}")
            if fix:
                uow.group_figures.put_member(dataset, user_id, pair, new)
        for pair, figures in wanted.items():
            expected[(dataset, pair)] = expected.get((dataset, pair), Totals()).plus(figures)
        report.learners += 1
        if progress is not None:
            progress(1)
    stored = {(r["dataset"], (r["group_id"], r["activity_type"], r["activity_id"])):
              _totals(r) for r in uow.conn.execute(select(group_activity_agg)).mappings()}
    for key in sorted(stored.keys() | expected.keys()):
        want, have = expected.get(key, Totals()), stored.get(key, Totals())
        report.activities += 1
        if want != have:
            report.problems.append(f"group totals {key[0]}/{'/'.join(key[1])}: stored "
                                   f"{have}, facts say {want}")
            if fix:
                uow.group_figures.add_totals(key[0], key[1], want.less(have))
    return report


def learner_count(conn: Connection) -> int:
    """How many learners `check_aggregates` goes through (for a progress bar)."""
    return int(conn.execute(select(func.count()).select_from(
        _learner_query().subquery())).scalar_one())


def _learner_query() -> Any:
    m, a, t = memberships, group_activities, member_activity_agg
    in_groups = select(m.c.dataset, m.c.user_id).where(
        m.c.role == "learner", select(a.c.group_id).where(
            a.c.dataset == m.c.dataset, a.c.group_id == m.c.group_id).exists())
    return union(in_groups, select(t.c.dataset, t.c.user_id))


def _learners(conn: Connection) -> list[tuple[str, str]]:
    """Every learner with figures to keep or to remove, in key order."""
    q = _learner_query().subquery()
    return [(d, u) for d, u in conn.execute(select(q.c.dataset, q.c.user_id)
                                            .order_by(q.c.dataset, q.c.user_id))]


@dataclass(frozen=True, slots=True)
class RebuildAggregates(Command):
    """`learnlog recompute`: every group figure rebuilt from the facts, in one transaction
    that keeps refreshers out until it commits."""

    exclusive: ClassVar[bool] = True  # the writer runs it alone

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> AggregateReport:
        uow.group_figures.guard(exclusive=True)
        return check_aggregates(uow, ctx, fix=True)


def _totals(row: Any) -> Totals:
    return Totals(row["member_count"], row["enrolled_count"], row["started_count"],
                  row["completed_count"], row["progress_sum"], row["scored_count"],
                  row["score_micro_sum"])


def _ms_map(row: Any) -> dict[str, int]:
    """When each metric last changed (its column in `AGG_TIMES`, in the same order)."""
    return {m: row[column] for m, column in zip(METRICS, AGG_TIMES, strict=True)}


def activity_view(conn: Connection, dataset: str, group_id: str, activity_type: str,
                  activity_id: str) -> dict[str, Any]:
    """A group's figures for one activity: every metric with its lastUpdatedOn."""
    held = run_plan(conn, group_figures_plan(conn.dialect.name, dataset, group_id)) or {}
    return activity_views(held, [(activity_type, activity_id)])[0]


def group_figures_plan(dialect: str, dataset: str, group_id: str
                       ) -> Plan[dict[tuple[str, str], Any] | None]:
    """A group's figure rows by (activity type, id), read with the group in one query
    (a dashboard polls them); None when the group is not registered."""
    found = yield Fetch(_group_figures_sql(dialect), (dataset, group_id), mapping=True)
    if not found:
        return None
    return {(r["activity_type"], r["activity_id"]): r for r in found
            if r["activity_id"] is not None}


@cache
def _group_figures_sql(dialect: str) -> str:
    mark = param_mark(dialect)
    return ("SELECT a.* FROM groups g LEFT JOIN group_activity_agg a "
            "ON a.dataset = g.dataset AND a.group_id = g.group_id "
            f"WHERE g.dataset = {mark} AND g.group_id = {mark}")


def activity_views(held: dict[tuple[str, str], Any], wanted: Sequence[tuple[str, str]]
                   ) -> list[dict[str, Any]]:
    """`activity_view` of each wanted (type, id), in that order, from the group's rows."""
    views = []
    for activity_type, activity_id in wanted:
        row = held.get((activity_type, activity_id))
        totals = Totals() if row is None else _totals(row)
        when = {} if row is None else _ms_map(row)
        views.append({"id": activity_id, "type": activity_type, "agg": [
            {"metric": m, "value": v, "lastUpdatedOn": when.get(m)}
            for m, v in totals.metrics().items()]})
    return views


def _summaries_of(conn: Connection, dataset: str, user_ids: Sequence[str],
                  content_ids: Sequence[str], wanted: set[SummaryKey]
                  ) -> dict[SummaryKey, Summary]:
    """The wanted summaries of these learners: one range read per learner through the
    primary key (dataset, user, …), filtered by content, then by key here."""
    if not wanted:
        return {}
    found = conn.execute(select(summaries).where(
        summaries.c.dataset == dataset, summaries.c.user_id.in_(user_ids),
        summaries.c.content_id.in_(sorted(set(content_ids))))).mappings()
    return {s.key: s for s in map(rows.summary_from_row, found) if s.key in wanted}


def member_rows(conn: Connection, ctx: ServiceContext, dataset: str, activity_type: str,
                activity_id: str, user_ids: Sequence[str]
                ) -> dict[str, list[dict[str, Any]]]:
    """Each member's own row for an activity, computed from its enrolments and summaries
    as they are now (read-after-write, SPEC §2.7): two queries per MEMBER_CHUNK members."""
    standings: dict[str, list[ContextFigures]] = {u: [] for u in user_ids}
    contents: dict[str, list[list[ContentFigures]]] = {u: [] for u in user_ids}
    leaves: tuple[str, ...] = (activity_id,)
    if activity_type == "Collection":
        record = collection_records(conn, dataset, [activity_id]).get(activity_id)
        leaves = tuple(record.structure.leaves) if record is not None else ()
    for chunk in chunks(user_ids, MEMBER_CHUNK):
        if activity_type != "Collection":
            keys = {u: resolve_key(ctx.mode, dataset=dataset, user_id=u,
                                   content_id=activity_id) for u in chunk}
            loaded = _summaries_of(conn, dataset, chunk, leaves, set(keys.values()))
            for u, key in keys.items():
                if key in loaded:
                    standings[u].append(_single(loaded[key]))
                    contents[u].append([content_figures(loaded[key])])
            continue
        found = [rows.enrolment_from_row(r) for r in conn.execute(select(enrolments).where(
            enrolments.c.dataset == dataset, enrolments.c.user_id.in_(chunk),
            enrolments.c.collection_id == activity_id, enrolments.c.active.is_(True))
            .order_by(enrolments.c.user_id, enrolments.c.context_id)).mappings()]
        loaded = _summaries_of(conn, dataset, chunk, leaves, {
            content_key(ctx.mode, e, c) for e in found for c in leaves})
        for e in found:
            mine = [loaded.get(content_key(ctx.mode, e, c)) for c in leaves]
            standings[e.user_id].append(enrolment_standing(e.figures, mine))
            contents[e.user_id].append([content_figures(x) for x in mine if x is not None])
    return {u: [{"metric": m, "value": v, "lastUpdatedOn": t}
                for m, v, t in member_row(standings[u], contents[u])] for u in user_ids}
