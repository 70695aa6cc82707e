"""Read use cases (SPEC §4.1 routes 5 to 8 and 10): single indexed lookups by (dataset, user, …).

Freshness: read-after-write. A write's response is sent after its commit, and the cache is
written through before that response, so the next read sees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from ..domain.collection import unit_progress
from ..domain.enrolment import CollectionRecord, Enrolment, content_scopes
from ..domain.keys import ContextMode, SummaryKey, scope_keys
from ..domain.progress import to_percent
from ..domain.summary import Summary
from ..store import rows
from ..store.cache import Lookup, StatusCache
from ..store.fastsql import (
    SUMMARY_PK,
    FastSql,
    Plan,
    fetch_enrolments,
    fetch_view,
    fetch_where,
)
from ..store.schema import attempts, collections, summaries
from ..store.sqlkit import select_by_keys

ATTEMPTS_SHOWN = 25


def cached_fields(summary: Summary | None) -> dict[str, Any]:
    """What the cache and view/read keep of a summary ({} = never started)."""
    if summary is None:
        return {}
    return {
        "status": summary.status, "progress": summary.progress,
        "score": summary.best_score, "max_score": summary.best_max_score,
        "timeSpent": summary.time_spent, "viewCount": summary.view_count,
        "lastAccessTime": summary.last_access, "completedOn": summary.completed_at,
        "progressDetails": summary.progress_details,
    }


def _summary_rows(conn: Connection, keys: Sequence[SummaryKey]) -> list[Any]:
    """Summary rows by key: one indexed query per distinct (dataset, user, scope)."""
    found: list[Any] = []
    by_scope: dict[tuple[str, str, str, str], list[str]] = {}
    for k in keys:
        by_scope.setdefault(k.scope, []).append(k.content_id)
    if len(by_scope) <= 2:
        for (dataset, user_id, coll, ctx), contents in by_scope.items():
            found += conn.execute(select(summaries).where(
                summaries.c.dataset == dataset, summaries.c.user_id == user_id,
                summaries.c.collection_key == coll, summaries.c.context_key == ctx,
                summaries.c.content_id.in_(contents))).mappings().all()
        return found
    return list(conn.execute(select_by_keys(summaries, SUMMARY_PK, [
        (k.dataset, k.user_id, k.collection_key, k.context_key, k.content_id) for k in keys])
    ).mappings())


def load_summaries(conn: Connection, keys: Sequence[SummaryKey]) -> dict[SummaryKey, Summary]:
    """Summaries by key (absent keys are left out)."""
    return {s.key: s for s in map(rows.summary_from_row, _summary_rows(conn, keys))}


def view_fields(conn: Connection, cache: StatusCache | None, keys: list[SummaryKey],
                lookup: Lookup | None = None) -> dict[SummaryKey, dict[str, Any]]:
    """Read fields of these summaries from the database; with a cache and the `lookup`
    that missed in it (made before this call), back-filled into the cache when that is
    safe (the cache's epoch is read first, on this connection; see store/cache.py).

    The hot read: one indexed range query per scope on the driver connection, only the
    columns view/read shows (see store/fastsql.py for why not Core here).
    """
    ticket = cache.ticket(conn, lookup) if cache is not None and lookup is not None else None
    by_scope: dict[tuple[str, str, str, str], list[SummaryKey]] = {}
    for k in keys:
        by_scope.setdefault(k.scope, []).append(k)
    fast = FastSql(conn)
    fields: dict[SummaryKey, dict[str, Any]] = {k: {} for k in keys}
    revs: dict[SummaryKey, int] = dict.fromkeys(keys, 0)
    for scope, scoped in by_scope.items():
        for (content_id, status, progress, score, max_score, time_spent, views, last_access,
             completed_at, details, rev) in fast.view_rows(scope, [k.content_id for k in scoped]):
            key = SummaryKey(*scope, content_id)
            fields[key] = {
                "status": status, "progress": progress, "score": score, "max_score": max_score,
                "timeSpent": time_spent, "viewCount": views, "lastAccessTime": last_access,
                "completedOn": completed_at, "progressDetails": rows.loads(details)}
            revs[key] = int(rev)
    if cache is not None and ticket is not None:
        # Each row's revision rides along: a field never goes back to an older value.
        cache.backfill(ticket, ((k, revs[k], v) for k, v in fields.items()))
    return fields


def view_row(content_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """One content of a view/read answer (percent progress, Sunbird names)."""
    return {
        "identifier": content_id, "contentId": content_id,
        "status": fields.get("status", 0),
        "progress": to_percent(fields.get("progress", 0.0)),
        "score": fields.get("score"), "max_score": fields.get("max_score"),
        "timeSpent": fields.get("timeSpent", 0.0), "viewCount": fields.get("viewCount", 0),
        "lastAccessTime": fields.get("lastAccessTime"),
        "completedOn": fields.get("completedOn"),
        "progressDetails": fields.get("progressDetails"),
    }


def assessment_rows(conn: Connection, keys: list[SummaryKey]) -> list[dict[str, Any]]:
    """Best score, count and the latest attempts of each content."""
    loaded = load_summaries(conn, keys)
    out = []
    for k in keys:
        s = loaded.get(k)
        recent = conn.execute(select(
            attempts.c.attempt_id, attempts.c.total_score, attempts.c.total_max_score,
            attempts.c.grand_total, attempts.c.last_attempted_on).where(
            attempts.c.dataset == k.dataset, attempts.c.user_id == k.user_id,
            attempts.c.collection_key == k.collection_key,
            attempts.c.context_key == k.context_key, attempts.c.content_id == k.content_id,
        ).order_by(attempts.c.last_attempted_on.desc()).limit(ATTEMPTS_SHOWN)).mappings().all()
        out.append({
            "contentId": k.content_id,
            "score": None if s is None else s.best_score,
            "max_score": None if s is None else s.best_max_score,
            "attempts_count": 0 if s is None else s.attempts_count,
            "attempts": [{"attemptId": r["attempt_id"], "score": r["total_score"],
                          "max_score": r["total_max_score"], "grandTotal": r["grand_total"],
                          "lastAttemptedOn": r["last_attempted_on"]} for r in recent],
        })
    return out


def collection_records(conn: Connection, dataset: str,
                       ids: Iterable[str]) -> dict[str, CollectionRecord]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(collections).where(collections.c.dataset == dataset,
                                      collections.c.collection_id.in_(wanted))
    return {r["collection_id"]: rows.collection_from_row(r)
            for r in conn.execute(query).mappings()}


class Structures:
    """Parsed collections, cached per process by their fact counter (which every change
    bumps), so a structure is parsed once per version, not once per read."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._parsed: dict[tuple[str, str, int], CollectionRecord] = {}

    def get(self, dialect: str, dataset: str, collection_id: str, counter: int | None
            ) -> Plan[CollectionRecord | None]:
        """A collection's record at fact counter `counter` (None: not registered), as a
        read plan: the structure is read only for a version not parsed yet."""
        if counter is None:
            return None
        record = self._parsed.get((dataset, collection_id, counter))
        if record is None:
            whole = yield fetch_where(dialect, collections, {
                "dataset": dataset, "collection_id": collection_id})
            if not whole:
                return None
            if len(self._parsed) >= self._size:
                self._parsed.clear()
            record = rows.collection_from_row(whole[0])
            self._parsed[(dataset, collection_id, int(whole[0]["counter"]))] = record
        return record


def enrolment_summaries_plan(dialect: str, mode: ContextMode, structures: Structures,
                             dataset: str, user_id: str, collection_id: str | None = None,
                             context_id: str | None = None) -> Plan[list[dict[str, Any]]]:
    """Enrolment summaries of a learner (all, or one collection/context), as a read plan
    (for either driver)."""
    where = {"dataset": dataset, "user_id": user_id}
    if collection_id is not None:
        where["collection_id"] = collection_id
    if context_id is not None:
        where["context_id"] = context_id
    found = yield fetch_enrolments(dialect, where)
    held = sorted(((rows.enrolment_from_row(r), r["collection_counter"]) for r in found),
                  key=lambda pair: (pair[0].collection_id, pair[0].context_id))
    out = []
    for e, counter in held:
        record = yield from structures.get(dialect, dataset, e.collection_id,
                                           None if counter is None else int(counter))
        leaves = record.structure.leaves if record is not None else ()
        statuses: dict[str, tuple[int, float | None, float | None]] = {}
        for (collection_key, context_key), contents in content_scopes(mode, e, leaves).items():
            scope = (dataset, e.user_id, collection_key, context_key)
            # The scope holds the collection's leaves (one of them in the content mode):
            # read it whole; a row of a content no longer a leaf is not looked at.
            for row in (yield fetch_view(dialect, scope, contents, whole_scope=True)):
                statuses[row[0]] = (row[1], row[3], row[4])  # status, score, max score
        out.append(_enrolment_summary(e, record, statuses))
    return out


def _enrolment_summary(e: Enrolment, record: CollectionRecord | None,
                       statuses: dict[str, tuple[int, float | None, float | None]]
                       ) -> dict[str, Any]:
    content_status: dict[str, int] = {}
    assessment_status: dict[str, dict[str, float | None]] = {}
    for content_id in (record.structure.leaves if record is not None else ()):
        status, score, max_score = statuses.get(content_id, (0, None, None))
        content_status[content_id] = status
        if score is not None:
            assessment_status[content_id] = {"score": score, "max_score": max_score}
    units = {} if record is None else {
        unit_id: {"completedCount": u.completed_count, "requiredCount": u.required_count,
                  "progress": u.progress, "status": u.status}
        for unit_id, u in unit_progress(record.structure, content_status).items()}
    return {
        "userId": e.user_id, "collectionId": e.collection_id, "contextId": e.context_id,
        "enrolledDate": e.enrolled_at, "active": e.active,
        "contentStatus": content_status, "assessmentStatus": assessment_status,
        "collection": None if record is None else {
            "identifier": record.collection_id, "name": record.name, "logo": record.logo,
            "leafNodesCount": record.structure.leaf_count,
            "requiredCount": len(record.structure.required),
            "description": record.description, "version": record.structure.version},
        "issuedCertificates": [{"name": c.name, "id": c.id, "token": c.token,
                                "lastIssuedOn": c.issued_on} for c in e.certificates],
        "units": units,
        "completedOn": e.figures.completed_on, "completedCount": e.figures.completed_count,
        "progress": e.figures.progress, "status": e.figures.status,
    }


def view_contents_plan(dialect: str, mode: ContextMode, dataset: str, user_id: str,
                       content_ids: Sequence[str], collection_id: str | None,
                       context_id: str | None) -> Plan[list[dict[str, Any]]]:
    """view/read's `contents` in the order asked (unknown contents status 0), as a read
    plan: one indexed range per scope (a single one except in the content mode), each
    answer row built once, the stored progressDetails passed on as the JSON text it
    already is. The same answers as `view_row` over `view_fields`."""
    scopes: dict[tuple[str, str], list[str]] = {}
    for content_id in content_ids:
        scopes.setdefault(scope_keys(mode, content_id, collection_id, context_id),
                          []).append(content_id)
    found: dict[str, tuple[Any, ...]] = {}
    for (collection_key, context_key), scoped in scopes.items():
        for row in (yield fetch_view(dialect, (dataset, user_id, collection_key, context_key),
                                     scoped)):
            found[row[0]] = row
    return [_content(content_id, found.get(content_id)) for content_id in content_ids]


def _content(content_id: str, row: tuple[Any, ...] | None) -> dict[str, Any]:
    if row is None:
        return {"identifier": content_id, "contentId": content_id, "status": 0,
                "progress": 0, "score": None, "max_score": None, "timeSpent": 0.0,
                "viewCount": 0, "lastAccessTime": None, "completedOn": None,
                "progressDetails": None}
    (_, status, progress, score, max_score, time_spent, views, last_access, completed_at,
     details, _) = row
    return {"identifier": content_id, "contentId": content_id, "status": status,
            "progress": to_percent(progress), "score": score, "max_score": max_score,
            "timeSpent": time_spent, "viewCount": views, "lastAccessTime": last_access,
            "completedOn": completed_at, "progressDetails": rows.fragment(details)}
