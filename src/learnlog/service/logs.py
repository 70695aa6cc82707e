"""The logger family's listings (SPEC §4.3): content sessions, content summaries, tries
(Kolibri's masterylog) and item attempts (attemptlog), quiz tries (examlog) and their
item attempts (examattemptlog), user sessions; filtered and paginated.

Pages follow each table's key order (learner first), so a page is one index range scan
that resumes where the previous page stopped (keyset pagination, an opaque cursor), at the
same cost on page 1 and page 10,000.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Column, Connection, Integer, Table, func, select, tuple_

from ..domain import mastery
from ..domain.errors import InvalidInput
from ..store import rows
from ..store.schema import (
    item_attempts,
    memberships,
    sessions,
    summaries,
    tries,
    user_sessions,
)
from .identity import within


@dataclass(frozen=True, slots=True)
class LogQuery:
    """What a listing asks for. Times are epoch ms: `since` inclusive, `until` exclusive."""

    dataset: str
    user_id: str | None = None
    content_id: str | None = None
    group_id: str | None = None
    since: int | None = None
    until: int | None = None
    limit: int = 100
    cursor: str | None = None


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def parse_time(text: str, field: str) -> int:
    """An ISO 8601 date or date-time (UTC unless it says otherwise) as epoch ms."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 date or date-time.",
                           code="INVALID_PARAMETER_VALUE", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _key(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"user_id": row["user_id"], "content_id": row["content_id"],
            "collection_id": row["collection_key"], "context_id": row["context_key"]}


def _session(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["session_id"], **_key(row), "kind": row["kind"],
            "start_timestamp": iso(row["started_at"]), "end_timestamp": iso(row["ended_at"]),
            "completion_timestamp": iso(row["completed_at"]), "time_spent": row["time_spent"],
            "progress": row["progress"], "extra_fields": rows.loads(row["extra_fields"]) or {},
            "mastery_level": row["mastery_level"]}


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**_key(row), "start_timestamp": iso(row["first_access"]),
            "end_timestamp": iso(row["last_access"]),
            "completion_timestamp": iso(row["completed_at"]), "time_spent": row["time_spent"],
            "progress": row["progress"], "extra_fields": rows.loads(row["extra_fields"]) or {},
            "view_count": row["view_count"]}


def _try(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**_key(row), "mastery_level": row["mastery_level"],
            "mastery_criterion": rows.loads(row["criterion"]),
            "start_timestamp": iso(row["started_at"]), "end_timestamp": iso(row["ended_at"]),
            "completion_timestamp": iso(row["completed_at"]), "time_spent": row["time_spent"],
            "complete": bool(row["complete"])}


def _attempt(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["attempt_id"], **_key(row), "mastery_level": row["mastery_level"],
            "session_id": row["session_id"], "item": row["item"], "correct": row["correct"],
            "complete": bool(row["complete"]), "hinted": bool(row["hinted"]),
            "error": bool(row["error"]), "answer": rows.loads(row["answer"]),
            "simple_answer": row["simple_answer"], "time_spent": row["time_spent"],
            "start_timestamp": iso(row["started_at"]), "end_timestamp": iso(row["ended_at"]),
            "completion_timestamp": iso(row["completed_at"]),
            "interaction_history": rows.loads(row["history"])}


def _exam(row: Mapping[str, Any]) -> dict[str, Any]:
    """A quiz try as Kolibri's ExamLog showed it: `closed` once submitted."""
    criterion = rows.loads(row["criterion"])
    return {"quiz_id": row["content_id"], "user_id": row["user_id"],
            "mastery_level": row["mastery_level"],
            "coach_assigned": bool(criterion.get("coach_assigned")),
            "closed": bool(row["complete"]), "start_timestamp": iso(row["started_at"]),
            "completion_timestamp": iso(row["completed_at"]), "time_spent": row["time_spent"]}


def _exam_attempt(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**_attempt(row), "quiz_id": row["content_id"]}


def _user_session(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["session_id"], "user_id": row["user_id"],
            "start_timestamp": iso(row["started_at"]),
            "last_interaction_timestamp": iso(row["last_interaction_at"]),
            "device_info": row["device_info"], "pages": rows.loads(row["pages"]),
            "channels": rows.loads(row["channels"])}


@dataclass(frozen=True, slots=True)
class Listing:
    """One log type: its table, page order (after dataset), time column and row shape."""

    table: Table
    order: tuple[str, ...]
    time: str
    shape: Callable[[Any], dict[str, Any]]
    quizzes_only: bool = False  # rows of quiz tries (negative levels) only

    def columns(self) -> list[Column[Any]]:
        return [self.table.c[name] for name in self.order]


LISTINGS = {
    "contentsessionlog": Listing(sessions, ("user_id", "session_id"), "started_at", _session),
    "contentsummarylog": Listing(
        summaries, ("user_id", "collection_key", "context_key", "content_id"), "last_access",
        _summary),
    "masterylog": Listing(
        tries, ("user_id", "collection_key", "context_key", "content_id", "mastery_level"),
        "started_at", _try),
    "attemptlog": Listing(item_attempts, ("user_id", "attempt_id"), "started_at", _attempt),
    "examlog": Listing(
        tries, ("user_id", "collection_key", "context_key", "content_id", "mastery_level"),
        "started_at", _exam, quizzes_only=True),
    "examattemptlog": Listing(item_attempts, ("user_id", "attempt_id"), "started_at",
                              _exam_attempt, quizzes_only=True),
    "usersessionlog": Listing(user_sessions, ("user_id", "session_id"), "started_at",
                              _user_session),
}


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def _decode(cursor: str, columns: list[Column[Any]]) -> list[Any]:
    """The key a cursor resumes after; its values must have the columns' types."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        values = None
    if not (isinstance(values, list) and len(values) == len(columns) and all(
            type(v) is c.type.python_type for v, c in zip(values, columns, strict=True))):
        raise InvalidInput("cursor is not one this listing gave: start again without it.",
                           code="INVALID_PARAMETER_VALUE", field="cursor")
    return values


def page(conn: Connection, kind: str, query: LogQuery) -> dict[str, Any]:
    """One page of a listing: `{"results": [...], "next": cursor or null}`."""
    listing = LISTINGS[kind]
    table = listing.table
    where = [table.c.dataset == query.dataset]
    if query.user_id is not None:
        where.append(table.c.user_id == query.user_id)
    if query.group_id is not None:
        where.append(table.c.user_id.in_(members(query.dataset, query.group_id)))
    if listing.quizzes_only:
        where.append(table.c.mastery_level < 0)
    if query.content_id is not None:
        if "content_id" not in table.c:
            raise InvalidInput(f"{kind} has no content_id to filter on.",
                               code="INVALID_PARAMETER_VALUE", field="content_id")
        where.append(table.c.content_id == query.content_id)
    if query.since is not None:
        where.append(table.c[listing.time] >= query.since)
    if query.until is not None:
        where.append(table.c[listing.time] < query.until)
    order = listing.columns()
    if query.cursor is not None:
        where.append(tuple_(*order) > tuple_(*_decode(query.cursor, order)))
    found = conn.execute(select(table).where(*where).order_by(*order)
                         .limit(query.limit + 1)).mappings().all()
    shown = found[:query.limit]
    more = len(found) > query.limit
    return {"results": [listing.shape(r) for r in shown],
            "next": _encode([shown[-1][n] for n in listing.order]) if more else None}


def members(dataset: str, group_id: str) -> Any:
    """The users of a group and of its learner groups (a subquery)."""
    return select(memberships.c.user_id).where(
        memberships.c.dataset == dataset, within(memberships.c.group_id, dataset, [group_id]))


def user_progress(conn: Connection, dataset: str, user_id: str) -> int:
    """Kolibri's total of a learner's progress (`mastery.total_progress`), from one query
    over the learner's summaries and one over its tries."""
    key = (summaries.c.collection_key, summaries.c.context_key, summaries.c.content_id)
    completed_tries = {
        (r[0], r[1], r[2]): int(r[3]) for r in conn.execute(
            select(tries.c.collection_key, tries.c.context_key, tries.c.content_id,
                   func.sum(func.cast(tries.c.complete, Integer)))
            .where(tries.c.dataset == dataset, tries.c.user_id == user_id)
            .group_by(tries.c.collection_key, tries.c.context_key, tries.c.content_id))}
    return mastery.total_progress(
        (progress, completed_tries.get((collection_key, context_key, content_id)))
        for collection_key, context_key, content_id, progress in conn.execute(
            select(*key, summaries.c.progress).where(
                summaries.c.dataset == dataset, summaries.c.user_id == user_id)))
