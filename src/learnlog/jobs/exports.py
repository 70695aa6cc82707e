"""CSV exports of the logger family, streamed: rows come from the database a chunk at a
time (a server-side cursor on PostgreSQL) and go to the file as they come, so ten million
rows take the memory of one chunk. The outbox handler and `learnlog export` share
`write_file`; nothing here may collect the rows of an export in a list.
"""

from __future__ import annotations

import csv
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, Select, and_, func, select

from ..domain import exports as rules
from ..domain.collection import Node
from ..service import exports as svc
from ..service.logs import iso
from ..service.reads import collection_records
from ..store.schema import sessions, summaries, users
from .context import Jobs

log = logging.getLogger(__name__)
CHUNK = 2_000  # rows fetched (and progress reported) at a time
# With a byte order mark, spreadsheet programs read the UTF-8 names right.
ENCODING = "utf-8-sig"
KEY = ("dataset", "user_id", "collection_key", "context_key", "content_id")


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What one export holds: a dataset's session or summary logs started in a window."""

    dataset: str
    log_type: str
    since: int | None = None
    until: int | None = None


def _query(spec: ExportSpec) -> Select[Any]:
    """The rows of an export in primary-key order (learner first), without quiz logs."""
    order: tuple[str, ...]
    if spec.log_type == rules.SUMMARY:
        table, order = summaries, KEY
        # A summary's kind is its sessions' (one indexed lookup on the summary key).
        kind: Any = select(func.max(sessions.c.kind)).where(
            *(sessions.c[name] == summaries.c[name] for name in KEY)).scalar_subquery()
        first, last = summaries.c.first_access, summaries.c.last_access
    else:
        table, order = sessions, ("dataset", "user_id", "session_id")
        kind = sessions.c.kind
        first, last = sessions.c.started_at, sessions.c.ended_at
    where = [table.c.dataset == spec.dataset,
             func.coalesce(kind, "") != rules.EXCLUDED_KIND]
    if spec.since is not None:
        where.append(first >= spec.since)
    if spec.until is not None:
        where.append(first < spec.until)
    joined = table.outerjoin(users, and_(users.c.dataset == table.c.dataset,
                                         users.c.user_id == table.c.user_id))
    return (select(table.c.dataset, table.c.user_id, users.c.username,
                   users.c.kind.label("user_kind"), table.c.collection_key,
                   table.c.content_id, first.label("first"), last.label("last"),
                   table.c.completed_at, table.c.time_spent, table.c.progress,
                   kind.label("content_kind"))
            .select_from(joined).where(*where).order_by(*(table.c[n] for n in order)))


@contextmanager
def _unmapped(conn: Connection) -> Iterator[None]:
    """SQLite readers map the database file; an export reads every page once, and mapping
    them would grow this process's resident set by the size of the file."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA mmap_size").scalar()
    conn.exec_driver_sql("PRAGMA mmap_size=0")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA mmap_size={int(before or 0)}")


def count(conn: Connection, spec: ExportSpec) -> int:
    """How many rows an export has now (for a progress bar)."""
    with _unmapped(conn):
        return int(conn.execute(select(func.count()).select_from(_query(spec).subquery()))
                   .scalar_one())


def _titles(nodes: Sequence[Node]) -> Iterator[tuple[str, str]]:
    for node in nodes:
        if node.name is not None and node.type == "content":
            yield node.identifier, node.name
        yield from _titles(node.children)


class _Names:
    """Collection names and content titles, read once per collection per export."""

    def __init__(self, conn: Connection, dataset: str) -> None:
        self._conn, self._dataset = conn, dataset
        self._known: dict[str, tuple[str, dict[str, str]]] = {}

    def __call__(self, collection_id: str, content_id: str) -> tuple[str, str]:
        if not collection_id:
            return "", ""
        if collection_id not in self._known:
            self._known[collection_id] = self._load(collection_id)
        name, titles = self._known[collection_id]
        return name, titles.get(content_id, "")

    def _load(self, collection_id: str) -> tuple[str, dict[str, str]]:
        record = collection_records(self._conn, self._dataset, [collection_id]).get(
            collection_id)
        if record is None:
            return "", {}
        titles: dict[str, str] = {}
        for identifier, title in _titles(record.structure.children):
            titles.setdefault(identifier, title)
        return record.name, titles


def _cells(row: Sequence[Any], names: _Names, summary: bool) -> list[str | None]:
    # Unpacked once: attribute access on result rows took a third of the export's time.
    (dataset, user_id, username, user_kind, collection_key, content_id, first, last,
     completed_at, time_spent, progress, content_kind) = row
    channel = rules.channel_of(collection_key, content_id)
    channel_name, title = names(channel, content_id)
    completion = [iso(completed_at)] if summary else []
    return [dataset, user_id if username is None else username,
            "learner" if user_kind is None else user_kind, channel, channel_name, content_id,
            title, iso(first), iso(last), *completion, rules.seconds_cell(time_spent),
            rules.progress_cell(progress), "" if content_kind is None else content_kind]


def write_csv(conn: Connection, spec: ExportSpec, out: TextIO,
              advance: Callable[[int], None] | None = None) -> int:
    """Write an export's header and rows to `out` as they are fetched; returns the rows.
    `advance` hears how many rows were written, a chunk at a time."""
    summary = spec.log_type == rules.SUMMARY
    names = _Names(conn, spec.dataset)
    writer = csv.writer(out)
    writer.writerow(rules.headers(spec.log_type))
    written = 0
    with _unmapped(conn):
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(
            _query(spec))
        for row in result:
            writer.writerow(_cells(row, names, summary))
            written += 1
            if advance is not None and written % CHUNK == 0:
                advance(CHUNK)
    if advance is not None and written % CHUNK:
        advance(written % CHUNK)
    return written


def write_file(engine: Engine, spec: ExportSpec, path: Path,
               advance: Callable[[int], None] | None = None) -> int:
    """Write an export to `path` whole or not at all: to a temporary name beside it, synced,
    then renamed over it (two writers of the same export never share a temporary file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with engine.connect() as conn, temp.open("w", encoding=ENCODING, newline="") as out:
            written = write_csv(conn, spec, out, advance)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return written


def export_requested(jobs: Jobs, dataset: str, payload: Any) -> None:
    """The outbox handler: write the export's file, then mark the export done with its row
    count, or failed with the error. Delivered at least once: a second delivery writes the
    same file again and ends in the same state (a done export stays done meanwhile)."""
    export_id = str(payload["exportId"])
    with jobs.read_engine.connect() as conn:
        row = svc.find(conn, dataset, export_id)
    if row is None:
        return
    if row["state"] != rules.DONE:
        jobs.writer.run_sync(svc.SetExportState(dataset, export_id, rules.RUNNING))
    path = jobs.exports_dir / f"{export_id}.csv"
    spec = ExportSpec(dataset, row["log_type"], row["since"], row["until"])
    try:
        written = write_file(jobs.read_engine, spec, path)
    except Exception as error:  # the export fails visibly; the admin may request it again
        log.exception("export %s failed", export_id)
        jobs.writer.run_sync(svc.SetExportState(
            dataset, export_id, rules.FAILED, error=f"{type(error).__name__}: {error}"))
        return
    jobs.writer.run_sync(svc.SetExportState(dataset, export_id, rules.DONE, rows=written,
                                            path=str(path)))
