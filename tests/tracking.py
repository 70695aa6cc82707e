"""Helpers for tracking-log tests: events written as Open edX writes them, and an
ingestion into a real database with the stored statistics read back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from learnlog.analytics.engines import open_engine
from learnlog.analytics.ingest import Report, ingest
from learnlog.store.schema import (
    stats_activity,
    stats_problems,
    stats_timeline,
    stats_times,
    stats_video_users,
    stats_videos,
    stats_visits,
)

COURSE = "course-v1:LearnX+T1+2025"


def edx_logs() -> Path:
    """The real Open edX logs beside the checkout (`../shared/edx/`; never copied into the
    repository): LEARNLOG_EDX_LOGS, else `shared/edx` beside this checkout or one of its
    parents, else the workplace's `/work/shared/edx`. Missing: a failure that says so."""
    import os

    candidates = [Path(os.environ["LEARNLOG_EDX_LOGS"])] if os.environ.get(
        "LEARNLOG_EDX_LOGS") else []
    here = Path(__file__).resolve()
    candidates += [parent / "shared" / "edx" for parent in here.parents]
    candidates.append(Path("/work/shared/edx"))
    for found in candidates:
        if (found / "video_timeline.log").is_file():
            return found
    raise AssertionError("the Open edX tracking logs are not beside the checkout: set "
                         "LEARNLOG_EDX_LOGS to the folder that holds video_timeline.log")
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)  # a Monday


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def event(user: str, kind: str, seconds: float, payload: Any = None, *,
          course: str | None = COURSE, source: str = "browser", as_string: bool = True,
          page: str | None = None, **envelope: Any) -> str:
    """One log line; a browser payload is a JSON string, a server one an object."""
    body = payload if payload is not None else {}
    return json.dumps({
        "username": user, "event_type": kind, "event_source": source,
        "event": json.dumps(body) if as_string and source == "browser" else body,
        "context": {"course_id": course or "", "user_id": 1, "path": "/event"},
        "time": at(seconds), "page": page, **envelope})


def video(user: str, kind: str, seconds: float, *, vid: str = "v1",
          duration: float | None = None, **fields: Any) -> str:
    """A video event: fields like currentTime=, old_time=, new_time=."""
    payload = {"id": vid, "code": "html5", **fields}
    if duration is not None:
        payload["duration"] = duration
    return event(user, kind, seconds, payload)


def write(path: Path, lines: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def run(db: Engine, store: Path, paths: Sequence[Path], *, engine: str = "duckdb",
        staff: Sequence[str] = ()) -> Report:
    """Ingest with a fresh engine (as the CLI does)."""
    runner = open_engine(engine, store / engine / "work")
    try:
        return ingest(db, runner, store, paths, staff=staff)
    finally:
        runner.close()


def stored(db: Engine) -> dict[str, Any]:
    """The stored video statistics, keyed for easy assertions."""
    with db.connect() as conn:
        videos = {(r.course_id, r.video_id): r._asdict() for r in conn.execute(
            select(stats_videos))}
        users = {(r.video_id, r.username): r._asdict() for r in conn.execute(
            select(stats_video_users))}
        segments: dict[str, list[tuple[int, int, int]]] = {}
        for r in conn.execute(select(stats_timeline).order_by(
                stats_timeline.c.video_id, stats_timeline.c.segment)):
            segments.setdefault(r.video_id, []).append((r.segment, r.num_users, r.num_views))
        per_day = {table.name: sorted(tuple(r) for r in conn.execute(select(table)))
                   for table in (stats_times, stats_visits, stats_problems, stats_activity)}
    return {"videos": videos, "users": users, "timeline": segments, **per_day}
