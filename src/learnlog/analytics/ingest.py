"""Ingesting tracking logs (SPEC §6): find the files, read what is new in them, keep the
parsed events, recompute the statistics of every course they touch, store the results.

Incremental and replay-safe:
- a file is known by its path; its size and a fingerprint of the bytes read say whether
  it changed: the same size and fingerprint is skipped, a plain file that grew (the same
  fingerprint over the bytes read before) is read from where it stopped, anything else
  is read again as a new file;
- the parsed events of one run are one Parquet batch (a folder of part files, one per log
  file on DuckDB), registered in `log_batches` in the same transaction as the files' new
  state and the courses' new statistics: a run that dies half-way leaves an unregistered
  batch, which is ignored and removed next time;
- a course's statistics are always recomputed from all its registered events, so they
  equal a from-scratch run whatever order the files came in.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, Protocol

import ibis
from sqlalchemy import Connection, Engine, delete, insert, select

from ..domain.tracking import SEGMENT_SECONDS, course_of_root, units_of, users_at_end
from ..service.course_units import places_of, store_units
from ..store.fastsql import FastSql
from ..store.schema import (
    log_batches,
    log_files,
    stats_activity,
    stats_problems,
    stats_timeline,
    stats_times,
    stats_video_users,
    stats_videos,
    stats_visits,
)
from ..store.sqlkit import chunks
from . import pipelines
from .engines import Counts, Piece

PROBE = 1 << 20  # bytes hashed at each end of a file for its fingerprint


class AnalyticsEngine(Protocol):
    name: str

    def parse(self, pieces: Sequence[Piece], out: Path,
              done: Callable[[Piece], None] | None = None) -> list[Counts]: ...
    def events(self, files: Sequence[Path]) -> Any: ...
    def execute(self, expr: Any) -> list[dict[str, Any]]: ...
    def arrow(self, expr: Any) -> Any: ...
    def count(self, files: Sequence[Path]) -> tuple[int, list[str]]: ...


@dataclass
class Report:
    """What an ingestion did."""

    files: int = 0
    skipped: int = 0  # unchanged since the last run
    grown: int = 0  # read from where the last run stopped
    counts: Counts = field(default_factory=Counts)
    accepted: int = 0  # events kept: with a user and a course
    courses: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return self.counts.malformed + self.counts.events - self.accepted


def discover(paths: Iterable[Path]) -> list[Path]:
    """Log files named or inside the named directories (`*.log`, `*.log.gz`, `*.json`,
    `*.gz`, and rotated `tracking.log-*`), in name order; hidden files are not logs."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and _is_log(p))
        elif path.is_file():
            found.add(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return sorted(p.resolve() for p in found)


def _is_log(path: Path) -> bool:
    name = path.name
    return not name.startswith(".") and (
        name.endswith((".log", ".gz", ".json", ".jsonl")) or ".log" in name)


def fingerprint(path: Path, size: int) -> str:
    """SHA-256 of the first and last MiB of the file's first `size` bytes (and the size):
    enough to tell a grown file from a replaced one without reading gigabytes."""
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(min(size, PROBE)))
        if size > PROBE:
            f.seek(max(PROBE, size - PROBE))
            digest.update(f.read(size - max(PROBE, size - PROBE)))
    return digest.hexdigest()


@dataclass(frozen=True)
class Plan:
    """What to read, and the state each file will have once read."""

    pieces: list[Piece]
    state: list[dict[str, Any]]
    skipped: int
    grown: int


def plan(conn: Connection, dataset: str, files: Sequence[Path], scratch: Path) -> Plan:
    held = {r.path: r for r in conn.execute(
        select(log_files).where(log_files.c.dataset == dataset))}
    pieces: list[Piece] = []
    state: list[dict[str, Any]] = []
    skipped = grown = 0
    for path in files:
        size = path.stat().st_size
        mark = fingerprint(path, size)
        before = held.get(str(path))
        lines_before = 0
        if before is not None and before.size == size and before.fingerprint == mark:
            skipped += 1
            continue
        if before is not None and size > before.size and fingerprint(
                path, before.size) == before.fingerprint:
            grown += 1
            lines_before = before.lines
            if path.suffix == ".gz":
                pieces.append(Piece(_gzip_tail(path, before.lines, scratch)))
            else:
                pieces.append(Piece(path, before.size))
        else:
            pieces.append(Piece(path))
        state.append({"dataset": dataset, "path": str(path), "size": size,
                      "fingerprint": mark, "lines": lines_before})
    return Plan(pieces, state, skipped, grown)


def _gzip_tail(path: Path, skip: int, scratch: Path) -> Path:
    """The lines of a grown gzip file after the first `skip`, as a plain file."""
    out = scratch / f"{uuid.uuid4().hex}.log"
    scratch.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "rb") as f, open(out, "wb") as tail:
        for i, line in enumerate(f):
            if i >= skip:
                tail.write(line)
    return out


Progress = Callable[[str, int, int], None]  # (step, done, total)


def time_rules(settings: Any) -> pipelines.TimeRules:
    """The time-on-page thresholds of these settings."""
    return pipelines.TimeRules(
        session_gap=settings.session_gap_seconds, login_gap=settings.login_gap_seconds,
        dashboard_gap=settings.dashboard_gap_seconds,
        outlier_gap=settings.outlier_gap_seconds,
        outlier_credit=settings.outlier_credit_seconds,
        last_credit=settings.last_event_seconds, min_run=settings.min_run_seconds)


def ingest(db: Engine, engine: AnalyticsEngine, store: Path, paths: Sequence[Path], *,
           dataset: str = "default", staff: Sequence[str] = (),
           completed_at: float = 0.9, rules: pipelines.TimeRules | None = None,
           progress: Progress | None = None) -> Report:
    """Read what is new in the log files and recompute the courses it touches."""
    started = time.perf_counter()
    report = Report()
    files = discover(paths)
    report.files = len(files)
    batches_dir = store / engine.name / "events"
    batches_dir.mkdir(parents=True, exist_ok=True)
    scratch = store / engine.name / "scratch"
    with _one_at_a_time(store / engine.name):
        with db.connect() as conn:
            todo = plan(conn, dataset, files, scratch)
            registered = [Path(r.path) for r in conn.execute(
                select(log_batches).where(log_batches.c.dataset == dataset,
                                          log_batches.c.engine == engine.name))]
            every = [Path(r.path) for r in conn.execute(  # of every dataset
                select(log_batches.c.path).where(log_batches.c.engine == engine.name))]
        _forget_unregistered(batches_dir, every)
        return _ingest_planned(db, engine, todo, registered, batches_dir, report, started,
                               dataset=dataset, staff=staff, completed_at=completed_at,
                               rules=rules, progress=progress)


@contextmanager
def _one_at_a_time(folder: Path) -> Iterator[None]:
    """One ingestion per engine store at a time on this machine (an OS file lock): two
    at once would read the same new lines twice, and each would take the other's batch
    in progress for a dead run's leftovers."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".ingest-lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run waits for the first
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ingest_planned(db: Engine, engine: AnalyticsEngine, todo: Plan,
                    registered: list[Path], batches_dir: Path, report: Report,
                    started: float, *, dataset: str, staff: Sequence[str],
                    completed_at: float, rules: pipelines.TimeRules | None,
                    progress: Progress | None) -> Report:
    report.skipped, report.grown = todo.skipped, todo.grown
    total = sum(_size(p) for p in todo.pieces)
    read = 0

    def piece_done(piece: Piece) -> None:
        nonlocal read
        read += _size(piece)
        if progress is not None:
            progress("read", read, total)
    if progress is not None:
        progress("read", 0, total)
    batch_id = uuid.uuid4().hex
    batch = batches_dir / f"{batch_id}.parquet"
    parsed = engine.parse(todo.pieces, batch, piece_done) if todo.pieces else []
    for entry, found in zip(todo.state, parsed, strict=True):
        entry["lines"] += found.lines
        report.counts.add(found)
    accepted, courses = engine.count([batch]) if batch.exists() else (0, [])
    report.accepted, report.courses = accepted, sorted(courses)
    now = int(time.time() * 1000)
    files_now = [*registered, batch] if accepted else registered
    with db.connect() as conn:
        places = places_of(conn, dataset, report.courses)
    results = _recompute(engine, files_now, report.courses, dataset, staff, completed_at,
                         rules or pipelines.TimeRules(), places, progress)
    with db.begin() as conn:
        for entry in todo.state:
            conn.execute(delete(log_files).where(log_files.c.dataset == dataset,
                                                 log_files.c.path == entry["path"]))
            conn.execute(insert(log_files).values(**entry, ingested_at=now))
        if accepted:
            conn.execute(insert(log_batches).values(
                dataset=dataset, batch_id=batch_id, engine=engine.name, path=str(batch),
                events=accepted, courses=json.dumps(report.courses), created_at=now))
        _store(conn, dataset, report.courses, results)
    if not accepted:
        _remove(batch)
    report.seconds = time.perf_counter() - started
    return report


def recompute_courses(db: Engine, engine: AnalyticsEngine, store: Path,
                      courses: Sequence[str], *,
                      dataset: str = "default", staff: Sequence[str] = (),
                      completed_at: float = 0.9,
                      rules: pipelines.TimeRules | None = None) -> None:
    """Recompute these courses from the events already kept (after a structure import)."""
    with _one_at_a_time(store / engine.name):
        with db.connect() as conn:
            registered = [Path(r.path) for r in conn.execute(
                select(log_batches).where(log_batches.c.dataset == dataset,
                                          log_batches.c.engine == engine.name))]
            places = places_of(conn, dataset, courses)
        results = _recompute(engine, registered, courses, dataset, staff, completed_at,
                             rules or pipelines.TimeRules(), places, None)
        with db.begin() as conn:
            _store(conn, dataset, courses, results)


def ingested_courses(conn: Connection, dataset: str, engine: str) -> set[str]:
    """The courses whose events this engine keeps for the dataset."""
    return {course for r in conn.execute(select(log_batches.c.courses).where(
        log_batches.c.dataset == dataset, log_batches.c.engine == engine))
        for course in json.loads(r.courses)}


def import_structure(conn: Connection, dataset: str, document: Any,
                     course: str | None = None) -> tuple[str, int, int]:
    """Store a course's units from an Open edX Blocks API document; units of an earlier
    structure that this one lacks become inactive (their rows stay). Returns the course
    id, the units stored and the units made inactive. Raises ValueError for a document
    that is not a Blocks API answer."""
    if not isinstance(document, dict) or not isinstance(document.get("blocks"), dict) or (
            not isinstance(document.get("root"), str)):
        raise ValueError("not an Open edX Blocks API document (it needs \"root\" and "
                         "\"blocks\")")
    course_id = course or course_of_root(document["root"])
    if course_id is None:
        raise ValueError(f"the root {document['root']!r} is not a course block: give "
                         "--course-id")
    stored, gone = store_units(conn, dataset, course_id,
                               units_of(document["blocks"], document["root"]))
    return course_id, stored, gone


def _size(piece: Piece) -> int:
    return piece.path.stat().st_size - piece.offset


def _forget_unregistered(batches_dir: Path, registered: Sequence[Path]) -> None:
    """Remove batches a run wrote but never committed (it died before its commit)."""
    keep = {p.resolve() for p in registered}
    for found in batches_dir.glob("*.parquet"):
        if found.resolve() not in keep:
            _remove(found)


def _remove(path: Path) -> None:
    """A batch: a directory of Parquet part files (one file, in stores written before)."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


Rows = list[tuple[Any, ...]]  # a statistics table's rows, its columns in table order


@dataclass
class Results:
    """The statistics of some courses, as rows of their tables, in key order."""

    videos: Rows = field(default_factory=list)
    video_users: Rows = field(default_factory=list)
    timeline: Rows = field(default_factory=list)
    times: Rows = field(default_factory=list)
    visits: Rows = field(default_factory=list)
    problems: Rows = field(default_factory=list)
    activity: Rows = field(default_factory=list)


def _day(value: Any) -> Any:
    """A date as YYYY-MM-DD text (every engine casts a date to text that way)."""
    return value.cast("string")


def _number(value: Any) -> Any:
    """A float, or null for a missing one (engines give null or NaN)."""
    value = value.cast("float64")
    return ibis.ifelse(value.isnan(), ibis.null("float64"), value)


def _rows(engine: AnalyticsEngine, table: Any, dataset: str, expr: Any) -> Rows:
    """The rows of statistics table `table` from an expression with its other columns
    (by name), sorted by the table's key by the engine (so each row lands at the end of
    the index when inserted)."""
    names = [c.name for c in table.columns if c.name != "dataset"]
    keys = [c.name for c in table.primary_key.columns if c.name != "dataset"]
    return _tuples(engine.arrow(expr.select(*names).order_by(keys)), table, dataset)


def _tuples(found: Any, table: Any, dataset: str) -> Rows:
    """An Arrow table's rows as rows of `table` (its columns by name, in table order,
    after the dataset), turned into tuples a column at a time."""
    columns = [found.column(c.name).to_pylist() for c in table.columns if c.name != "dataset"]
    return list(zip(repeat(dataset, found.num_rows), *columns, strict=False))


def _recompute(engine: AnalyticsEngine, files: Sequence[Path], courses: Sequence[str],
               dataset: str, staff: Sequence[str], completed_at: float,
               rules: pipelines.TimeRules, places: list[dict[str, str]],
               progress: Progress | None) -> Results:
    out = Results()
    if not courses or not files:
        return out
    if progress is not None:
        progress("compute", 0, 1)
    known = None
    if places:
        import pyarrow as pa

        known = ibis.memtable(pa.Table.from_pylist(places))
    evs = engine.events(files)
    evs = evs.filter(evs.course_id.isin(list(courses)))
    # Read once, used by every statistic: the courses' events of everyone but staff.
    learners = pipelines.learners(evs, list(staff)).cache()
    t = pipelines.times(learners, rules, known)
    out.times = _rows(engine, stats_times, dataset, t.mutate(
        unit_id=t.unit, day=_day(t.day), seconds=t.seconds.cast("float64"),
        sessions=t.sessions.cast("int64")))
    v = pipelines.visits(learners, known)
    out.visits = _rows(engine, stats_visits, dataset, v.mutate(
        unit_id=v.unit, day=_day(v.day), visits=v.visits.cast("int64")))
    p = pipelines.problems(learners)
    out.problems = _rows(engine, stats_problems, dataset, p.mutate(
        problem_id=p.problem, day=_day(p.day), attempts=p.attempts.cast("int64"),
        grade=_number(p.grade), max_grade=_number(p.max_grade)))
    a = pipelines.activity(learners)
    out.activity = _rows(engine, stats_activity, dataset, a.mutate(
        week_start=_day(a.week), users=a.users.cast("int64")))
    views = pipelines.viewings(learners).cache()
    u = pipelines.video_users(views, completed_at)
    users = engine.arrow(u.mutate(
        viewings=u.viewings.cast("int64"), watch_time=u.watch_time.cast("float64"),
        covered=u.covered.cast("float64"), coverage=u.coverage.cast("float64"),
        duration=_number(u.duration)).order_by(["course_id", "video_id", "username"]))
    segments = pipelines.timeline(views)
    out.timeline = _rows(engine, stats_timeline, dataset, segments.mutate(
        segment=segments.segment.cast("int64"), num_users=segments.num_users.cast("int64"),
        num_views=segments.num_views.cast("int64")))
    views.release()
    learners.release()
    out.video_users = _tuples(users, stats_video_users, dataset)
    out.videos = _videos(dataset, users.to_pylist(), out.timeline)
    if progress is not None:
        progress("compute", 1, 1)
    return out


def _videos(dataset: str, users: list[dict[str, Any]], timeline: Rows) -> Rows:
    """Per video: its viewers' figures and its timeline's audience (`users`: the
    video_users rows with each video's duration; `timeline`: stats_timeline rows)."""
    by_video: dict[tuple[str, str], dict[str, Any]] = {}
    for u in users:
        v = by_video.setdefault((u["course_id"], u["video_id"]),
                                {"duration": None, "users": []})
        v["users"].append(u)
        if u["duration"] is not None:
            v["duration"] = u["duration"]
    line: dict[tuple[str, str], list[tuple[int, int]]] = {}
    views: dict[tuple[str, str], int] = {}
    for _, course, video, segment, num_users, num_views in timeline:
        line.setdefault((course, video), []).append((segment, num_users))
        views[(course, video)] = views.get((course, video), 0) + num_views
    out = []
    for (course, video), v in sorted(by_video.items()):
        viewers = v["users"]
        segments = sorted(line.get((course, video), []))
        out.append((
            dataset, course, video, v["duration"], len(viewers),
            sum(u["watch_time"] for u in viewers),
            sum(1 for u in viewers if u["completed"]),
            sum(u["coverage"] for u in viewers) / len(viewers),
            dict(segments).get(0, 0), users_at_end(segments, v["duration"]),
            SEGMENT_SECONDS * views.get((course, video), 0)))
    return out


def _store(conn: Connection, dataset: str, courses: Sequence[str], results: Results) -> None:
    """Replace the courses' statistics with the new ones (rows already in key order: each
    lands at the end of the index, which halves SQLite's insert time)."""
    for table, found in ((stats_videos, results.videos),
                         (stats_video_users, results.video_users),
                         (stats_timeline, results.timeline),
                         (stats_times, results.times), (stats_visits, results.visits),
                         (stats_problems, results.problems),
                         (stats_activity, results.activity)):
        for part in chunks(list(courses), 500):
            conn.execute(delete(table).where(table.c.dataset == dataset,
                                             table.c.course_id.in_(list(part))))
        FastSql(conn).insert_tuples(table, found)
