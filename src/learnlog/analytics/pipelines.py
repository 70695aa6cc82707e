"""The statistics of SPEC §6 as Ibis expressions, written once for every engine.

Input: the parsed events of a log (`RAW_COLUMNS`, what `analytics.engines` reads from the
files), normalised by `events`. Output: small relations the ingester writes into the
learnlog database. Nothing here touches files or connections.

Ids follow `domain.tracking` (course ids in the `course-v1:` form, video ids as the bare
hash); a test holds these expressions equal to those functions.
"""

from __future__ import annotations

from typing import Any

import ibis
from ibis import _
from ibis.expr.types import Table

from ..domain.tracking import MAX_VIDEO_SECONDS, SEGMENT_SECONDS

# The columns every engine's reader produces, before normalisation.
RAW_COLUMNS = {
    "ts": "int64",  # epoch microseconds, UTC
    "username": "string",
    "course_raw": "string",  # context.course_id
    "page": "string",
    "event_type": "string",
    "name": "string",
    "event_source": "string",
    "referer": "string",
    "usage_key": "string",  # context.module.usage_key
    "raw_id": "string",  # the payload's id (a video, a sequential or a unit)
    "current_time": "float64",
    "old_time": "float64",
    "new_time": "float64",
    "duration": "float64",
    "nav_old": "int64",
    "nav_new": "int64",
    "problem_id": "string",
    "grade": "float64",
    "max_grade": "float64",
    "attempts": "int64",
    "target_id": "string",
}

VIDEO_EVENTS = ("play_video", "pause_video", "seek_video", "stop_video")
OLD_COURSE = r"^[^/+:\s]+/[^/+:\s]+/[^/+:\s]+$"
COURSE_IN_URL = r"/courses/(course-v1:[^/]+|[^/]+/[^/]+/[^/]+)/"
VIDEO_HASH = r"(?:^i4x-.+-video-|^block-v1:.+\+type@video\+block@)([^\s/+@]+)$"


def _trim(value: Any) -> Any:
    """Whitespace off both ends (ibis's `strip` trims 'v' and 'f' on Spark: its escapes
    `\\v` and `\\f` become letters in Spark SQL)."""
    return value.re_replace(r"^\s+|\s+$", "")


def _blank_to_null(value: Any) -> Any:
    return ibis.ifelse(value == "", ibis.null("string"), value)


def course_expr(raw: Any) -> Any:
    """`domain.tracking.course_id` as an expression."""
    text = _trim(raw)
    return _blank_to_null(ibis.ifelse(text.re_search(OLD_COURSE),
                                      "course-v1:" + text.replace("/", "+"), text))


def video_expr(raw: Any) -> Any:
    """`domain.tracking.video_id` as an expression."""
    text = _trim(raw)
    bare = text.re_extract(VIDEO_HASH, 1)
    return _blank_to_null(ibis.ifelse(bare.isnull() | (bare == ""), text, bare))


def events(raw: Table) -> Table:
    """Normalised events: the course from the context, else from the page or the path; ids
    in one form; events without a user or a course left out (the reader counts them)."""
    from_url = _blank_to_null(raw.page.re_extract(COURSE_IN_URL, 1))
    from_path = _blank_to_null(raw.event_type.re_extract(COURSE_IN_URL, 1))
    course = course_expr(_blank_to_null(_trim(raw.course_raw)).coalesce(from_url,
                                                                          from_path))
    is_video = raw.event_type.isin(VIDEO_EVENTS)
    out = raw.mutate(
        course_id=course,
        video_id=ibis.ifelse(is_video, video_expr(raw.raw_id), ibis.null("string")),
        username=_trim(raw.username),
    )
    return out.filter(out.username.notnull() & (out.username != "") & out.course_id.notnull()
                      & out.ts.notnull()).drop("course_raw")


def staff(evs: Table) -> Table:
    """Users with an instructor-dashboard or course-team (studio) event: course staff."""
    return evs.filter(evs.event_type.contains("/instructor")
                      | evs.event_type.startswith("edx.instructor.")
                      | (evs.event_source == "studio")).select("username").distinct()


def learners(evs: Table, named: list[str]) -> Table:
    """The events of everyone but staff: the `named` users and those `staff` finds."""
    kept = evs.filter(~evs.username.isin(named)) if named else evs
    return kept.anti_join(staff(evs), "username")


# -- video -----------------------------------------------------------------------------

def _valid_time(value: Any) -> Any:
    return value.notnull() & ~value.isnan() & ~value.isinf() & (value >= 0) & (
        value <= MAX_VIDEO_SECONDS)


def viewings(evs: Table) -> Table:
    """One row per viewing (SPEC §6): a play opens it at `currentTime` (at the seek's
    `new_time` when the user's event just before on that video is a seek); the next
    pause or stop ends it at `currentTime`, a seek at `old_time`; a play while it is open
    drops it. Viewings with no end, ending before they start, shorter than 0.25 s or
    ending after the duration + 1 s are left out."""
    kind = evs.event_type
    video = evs.filter(kind.isin(VIDEO_EVENTS) & evs.video_id.notnull())
    good = ibis.ifelse(video.event_type == "seek_video",
                       _valid_time(video.old_time) & _valid_time(video.new_time),
                       _valid_time(video.current_time))
    video = video.filter(good)
    w = ibis.window(group_by=[video.course_id, video.username, video.video_id],
                    order_by=[video.ts, video.event_type])
    steps = video.mutate(
        prev_kind=video.event_type.lag().over(w),
        prev_new=video.new_time.lag().over(w),
        next_kind=video.event_type.lead().over(w),
        next_time=video.current_time.lead().over(w),
        next_old=video.old_time.lead().over(w),
    )
    plays = steps.filter(steps.event_type == "play_video")
    start = ibis.ifelse(plays.prev_kind == "seek_video", plays.prev_new, plays.current_time)
    end = plays.next_kind.cases(
        ("pause_video", plays.next_time), ("stop_video", plays.next_time),
        ("seek_video", plays.next_old), else_=ibis.null("float64"))
    found = plays.select("course_id", "username", "video_id", "ts", start=start, end=end)
    durations = video_durations(evs)
    joined = found.left_join(durations, ["course_id", "video_id"]).select(
        found.course_id, found.username, found.video_id, found.ts, found.start, found.end,
        durations.duration)
    return joined.filter(
        joined.end.notnull() & (joined.end >= joined.start)
        & (joined.end - joined.start >= 0.25)
        & (joined.duration.isnull() | (joined.end <= joined.duration + 1.0)))


def video_durations(evs: Table) -> Table:
    """A video's duration: the largest one its events carry (None when none does)."""
    video = evs.filter(evs.event_type.isin(VIDEO_EVENTS) & evs.video_id.notnull())
    carried = video.duration.notnull() & ~video.duration.isnan() & (video.duration > 0)
    return video.group_by(["course_id", "video_id"]).aggregate(
        duration=video.duration.max(where=carried))


def video_users(views: Table, completed_at: float) -> Table:
    """Per (course, video, user): watch time (every viewing counts), the union of the
    viewings, coverage = union / duration (the largest end seen when the duration is
    unknown) clamped to [0, 1], and whether the user completed the video."""
    w = ibis.window(group_by=[views.course_id, views.video_id, views.username],
                    order_by=[views.start, views.end],
                    preceding=None, following=0)
    reach = views.mutate(reach=views.end.max().over(w))
    w2 = ibis.window(group_by=[reach.course_id, reach.video_id, reach.username],
                     order_by=[reach.start, reach.end])
    flagged = reach.mutate(new=ibis.ifelse(
        reach.reach.lag().over(w2).isnull() | (reach.start > reach.reach.lag().over(w2)),
        1, 0))
    w3 = ibis.window(group_by=[flagged.course_id, flagged.video_id, flagged.username],
                     order_by=[flagged.start, flagged.end], preceding=None, following=0)
    islands = flagged.mutate(island=flagged.new.sum().over(w3))
    spans = islands.group_by(["course_id", "video_id", "username", "island"]).aggregate(
        low=islands.start.min(), high=islands.end.max())
    union = spans.group_by(["course_id", "video_id", "username"]).aggregate(
        covered=(spans.high - spans.low).sum())
    per_user = views.group_by(["course_id", "video_id", "username"]).aggregate(
        watch_time=(views.end - views.start).sum(), viewings=views.count(),
        duration=views.duration.max(), last_end=views.end.max())
    longest = views.group_by(["course_id", "video_id"]).aggregate(
        seen_end=views.end.max())
    out = per_user.join(union, ["course_id", "video_id", "username"]).join(
        longest, ["course_id", "video_id"])
    length = out.duration.coalesce(out.seen_end)
    coverage = ibis.ifelse(length > 0, out.covered / length, 0.0)
    coverage = ibis.greatest(ibis.least(coverage, 1.0), 0.0)
    return out.select("course_id", "video_id", "username", "watch_time", "viewings",
                      "duration", covered=out.covered, coverage=coverage,
                      completed=coverage >= completed_at)


def timeline(views: Table) -> Table:
    """Per (course, video, 5-second segment): the viewings and distinct users that
    covered it; a viewing covers every segment from int(start)//5 to int(end)//5."""
    # floor, not a cast: DuckDB rounds a float cast to an integer, Spark truncates.
    first = views.start.floor().cast("int64") // SEGMENT_SECONDS
    last = views.end.floor().cast("int64") // SEGMENT_SECONDS
    spread = views.mutate(segment=ibis.range(first, last + 1).unnest())
    return spread.group_by(["course_id", "video_id", "segment"]).aggregate(
        num_views=spread.count(), num_users=spread.username.nunique())


__all__ = ["RAW_COLUMNS", "_", "events", "learners", "timeline", "video_users", "viewings"]
