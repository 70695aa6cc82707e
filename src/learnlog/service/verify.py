"""`learnlog verify`: recompute every summary from its sessions and compare (SPEC §2.3).

Streams the summaries in key order, a chunk at a time, so memory does not grow with the
table. Enrolment figures are checked against their summaries the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, tuple_

from ..domain.collection import enrolment_progress
from ..domain.enrolment import content_key
from ..domain.keys import ContextMode, SummaryKey
from ..domain.summary import differences, fold
from ..store import rows
from ..store.fastsql import SUMMARY_PK
from ..store.schema import enrolments, sessions, summaries
from ..store.sqlkit import select_by_keys
from .reads import collection_records, load_summaries

CHUNK = 500


@dataclass
class Report:
    """What verify found."""

    summaries: int = 0
    enrolments: int = 0
    problems: list[str] = field(default_factory=list)


def _chunks(conn: Connection, table: Any, order: list[Any]) -> Iterator[list[Any]]:
    last: tuple[Any, ...] | None = None
    while True:
        query = select(table).order_by(*order).limit(CHUNK)
        if last is not None:
            query = query.where(tuple_(*order) > last)
        batch = conn.execute(query).mappings().all()
        if not batch:
            return
        yield list(batch)
        last = tuple(batch[-1][c.name] for c in order)


def verify(conn: Connection, mode: ContextMode,
           progress: Callable[[int], None] | None = None) -> Report:
    """Compare stored summaries and enrolments with what the facts say."""
    report = Report()
    pk = [summaries.c[n] for n in ("dataset", "user_id", "collection_key", "context_key",
                                   "content_id")]
    for batch in _chunks(conn, summaries, pk):
        stored = [rows.summary_from_row(r) for r in batch]
        keys = [(s.key.dataset, s.key.user_id, s.key.collection_key, s.key.context_key,
                 s.key.content_id) for s in stored]
        by_key: dict[SummaryKey, list[Any]] = {}
        # Sessions by summary key through the key index (a VALUES join, see select_by_keys).
        for r in conn.execute(select_by_keys(sessions, SUMMARY_PK, keys)).mappings():
            s = rows.session_from_row(r)
            by_key.setdefault(s.key, []).append(s)
        for summary in stored:
            diff = differences(summary, fold(summary.key, by_key.get(summary.key, []), summary))
            if diff:
                report.problems.append(f"summary {summary.key}: {diff}")
        report.summaries += len(stored)
        if progress is not None:
            progress(len(stored))
    epk = [enrolments.c[n] for n in ("dataset", "user_id", "collection_id", "context_id")]
    for batch in _chunks(conn, enrolments, epk):
        found = [rows.enrolment_from_row(r) for r in batch]
        for e in found:
            record = collection_records(conn, e.dataset, [e.collection_id]).get(e.collection_id)
            if record is None:
                continue
            keys_by_content = {c: content_key(mode, e, c) for c in record.structure.leaves}
            loaded = load_summaries(conn, list(keys_by_content.values()))
            present = {c: loaded[k] for c, k in keys_by_content.items() if k in loaded}
            statuses = {c: summary.status for c, summary in present.items()}
            times = {c: summary.completed_at for c, summary in present.items()}
            expected = enrolment_progress(e.figures, record.structure.required, statuses, times)
            if expected.completed_count != e.figures.completed_count or (
                    expected.status != e.figures.status):
                report.problems.append(f"enrolment {e.pk}: stored {e.figures}, "
                                       f"facts say {expected}")
        report.enrolments += len(found)
    return report
