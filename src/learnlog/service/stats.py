"""Reading the tracking-log statistics (SPEC §6) in the response shapes of the stats API.

The figures are computed by `analytics.ingest` and stored per course; these reads only
select and shape them. Course ids are stored in their `course-v1:` form and video ids as
the bare hash: a query may use either form of each.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from ..domain.errors import NotFound
from ..domain.tracking import ACTIVITY_LABELS, SEGMENT_SECONDS
from ..store.schema import (
    course_units,
    stats_activity,
    stats_problems,
    stats_timeline,
    stats_times,
    stats_video_users,
    stats_videos,
    stats_visits,
)


def videos(conn: Connection, dataset: str, course: str, shown: str,
           user: str | None = None) -> dict[str, Any]:
    """Per video of the course: duration, viewers, watch time, completed viewers and the
    average coverage (of one user's viewings with `user`)."""
    rows = conn.execute(select(stats_videos).where(
        stats_videos.c.dataset == dataset, stats_videos.c.course_id == course
    ).order_by(stats_videos.c.video_id)).mappings().all()
    if user is None:
        return {"course_id": shown, "videos": [
            {"video_id": r["video_id"], "duration": r["duration"], "viewers": r["viewers"],
             "watch_time": r["watch_time"], "completed_viewers": r["completed_viewers"],
             "avg_coverage": r["avg_coverage"]} for r in rows]}
    durations = {r["video_id"]: r["duration"] for r in rows}
    mine = conn.execute(select(stats_video_users).where(
        stats_video_users.c.dataset == dataset, stats_video_users.c.course_id == course,
        stats_video_users.c.username == user).order_by(stats_video_users.c.video_id)
    ).mappings().all()
    return {"course_id": shown, "videos": [
        {"video_id": r["video_id"], "duration": durations.get(r["video_id"]), "viewers": 1,
         "watch_time": r["watch_time"], "completed_viewers": int(r["completed"]),
         "avg_coverage": r["coverage"]} for r in mine]}


def timeline(conn: Connection, dataset: str, course: str, shown: str,
             video: str) -> dict[str, Any]:
    """A video's 5-second timeline with its audience at the start and at the end."""
    head = conn.execute(select(stats_videos).where(
        stats_videos.c.dataset == dataset, stats_videos.c.course_id == course,
        stats_videos.c.video_id == video)).mappings().first()
    if head is None:
        raise NotFound(f"No viewing of video {video!r} in course {shown!r} is recorded.",
                       code="VIDEO_NOT_FOUND", field="video_id")
    segments = conn.execute(select(stats_timeline).where(
        stats_timeline.c.dataset == dataset, stats_timeline.c.course_id == course,
        stats_timeline.c.video_id == video).order_by(stats_timeline.c.segment)).mappings()
    return {"course_id": shown, "video_id": video, "duration": head["duration"],
            "segment_seconds": SEGMENT_SECONDS, "users_at_start": head["users_at_start"],
            "users_at_end": head["users_at_end"],
            "total_viewed_seconds": head["total_viewed_seconds"],
            "segments": [{"segment": s["segment"], "num_users": s["num_users"],
                          "num_views": s["num_views"]} for s in segments]}


def _select(table: Any, dataset: str, course: str, query: dict[str, str]) -> Any:
    """A course's rows matching the filters (user, unit, days from start to end)."""
    cond = [table.c.dataset == dataset, table.c.course_id == course]
    if "user" in query:
        cond.append(table.c.username == query["user"])
    if "unit" in query:
        cond.append(table.c.unit_id == query["unit"])
    if "unit_id" in table.c:  # units gone from the course structure drop out
        cond.append(table.c.unit_id.notin_(select(course_units.c.unit_id).where(
            course_units.c.dataset == dataset, course_units.c.course_id == course,
            course_units.c.active.is_(False))))
    if "start" in query:
        cond.append(table.c.day >= query["start"])
    if "end" in query:
        cond.append(table.c.day <= query["end"])
    return select(table).where(*cond).order_by(*table.primary_key.columns)


def times(conn: Connection, dataset: str, course: str, shown: str,
          query: dict[str, str]) -> dict[str, Any]:
    """Seconds on each unit per user and day, with the sessions they span."""
    found = conn.execute(_select(stats_times, dataset, course, query)).mappings()
    return {"course_id": shown, "rows": [
        {"user": r["username"], "unit": r["unit_id"], "day": r["day"],
         "seconds": r["seconds"], "sessions": r["sessions"]} for r in found]}


def visits(conn: Connection, dataset: str, course: str, shown: str,
           query: dict[str, str]) -> dict[str, Any]:
    """Navigation events into each unit per user and day."""
    found = conn.execute(_select(stats_visits, dataset, course, query)).mappings()
    return {"course_id": shown, "rows": [
        {"user": r["username"], "unit": r["unit_id"], "day": r["day"],
         "visits": r["visits"]} for r in found]}


def problems(conn: Connection, dataset: str, course: str, shown: str,
             query: dict[str, str]) -> dict[str, Any]:
    """Attempts per problem, user and day, with the grade of the day's last one."""
    found = conn.execute(_select(stats_problems, dataset, course, query)).mappings()
    return {"course_id": shown, "rows": [
        {"user": r["username"], "problem": r["problem_id"], "day": r["day"],
         "attempts": r["attempts"], "grade": r["grade"], "max_grade": r["max_grade"]}
        for r in found]}


def activity(conn: Connection, dataset: str, course: str, shown: str,
             query: dict[str, str]) -> dict[str, Any]:
    """Distinct users per week (Monday to Monday, UTC) and label; weeks that touch
    [start, end] when given."""
    cond = [stats_activity.c.dataset == dataset, stats_activity.c.course_id == course]
    if "end" in query:
        cond.append(stats_activity.c.week_start <= query["end"])
    if "start" in query:  # the week holding `start` starts at most 6 days before it
        first = dt.date.fromisoformat(query["start"]) - dt.timedelta(days=6)
        cond.append(stats_activity.c.week_start >= first.isoformat())
    weeks: dict[str, dict[str, Any]] = {}
    for r in conn.execute(select(stats_activity).where(*cond)).mappings():
        start = dt.date.fromisoformat(r["week_start"])
        week = weeks.setdefault(r["week_start"], {
            "week_start": r["week_start"],
            "week_end": (start + dt.timedelta(days=7)).isoformat(),
            **{label: 0 for label in ACTIVITY_LABELS}})
        week[r["label"]] = r["users"]
    return {"course_id": shown, "weeks": [weeks[k] for k in sorted(weeks)]}
