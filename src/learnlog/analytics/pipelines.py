"""The statistics of SPEC §6 as Ibis expressions, written once for every engine.

Input: the parsed events of a log (`RAW_COLUMNS`, what `analytics.engines` reads from the
files), normalised by `events`. Output: small relations the ingester writes into the
learnlog database. Nothing here touches files or connections.

Ids follow `domain.tracking` (course ids in the `course-v1:` form, video ids as the bare
hash); a test holds these expressions equal to those functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
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
    "shape": "int8",  # what the line was: EVENT, UNTIMED (no time) or EMPTY (no fields)
}

# What a read line became (the `status` of a normalised row): an accepted event; an event
# without a user, a course or a readable time; JSON without a time; a line with no field
# read (a comment or a broken line). Only ACCEPTED rows take part in the statistics.
ACCEPTED, UNPLACED, UNTIMED, EMPTY = 0, 1, 2, 3

VIDEO_EVENTS = ("play_video", "pause_video", "seek_video", "stop_video")
OLD_COURSE = r"^[^/+:\s]+/[^/+:\s]+/[^/+:\s]+$"
COURSE_IN_URL = r"/courses/(course-v1:[^/]+|[^/]+/[^/]+/[^/]+)/"
VIDEO_HASH = r"(?:^i4x-.+-video-|^block-v1:.+\+type@video\+block@)([^\s/+@]+)$"


def _blank_to_null(value: Any) -> Any:
    """Empty text as null (what a regular expression that found nothing gives)."""
    return value.nullif("")


def course_expr(text: Any) -> Any:
    """`domain.tracking.course_id` as an expression (of text already trimmed)."""
    return ibis.cases(
        (text.isnull() | (text == ""), ibis.null("string")),
        (text.startswith("course-v1:"), text),
        (text.re_search(OLD_COURSE), "course-v1:" + text.replace("/", "+")),
        else_=text)


def video_expr(text: Any) -> Any:
    """`domain.tracking.video_id` as an expression (of text already trimmed)."""
    return ibis.cases(
        (text.isnull() | (text == ""), ibis.null("string")),
        (text.startswith("i4x-") | text.startswith("block-v1:"),
         _blank_to_null(text.re_extract(VIDEO_HASH, 1)).fill_null(text)),
        else_=text)


def events(raw: Table) -> Table:
    """Normalised rows: the course from the context, else from the page or the path; ids
    in one form; each event's place (`with_places`); and each row's `status` (ACCEPTED
    for an event with a user, a course and a time; the reader's `shape` otherwise).
    Readers deliver `username`, `course_raw` and `raw_id` trimmed of whitespace."""
    given = raw.course_raw
    found = _blank_to_null(raw.page.re_extract(COURSE_IN_URL, 1)).coalesce(
        _blank_to_null(raw.event_type.re_extract(COURSE_IN_URL, 1)))
    course = ibis.ifelse(given.isnull() | (given == ""), course_expr(found),
                         course_expr(given))
    out = raw.mutate(
        course_id=course,
        video_id=ibis.ifelse(raw.event_type.isin(VIDEO_EVENTS), video_expr(raw.raw_id),
                             ibis.null("string")))
    kept = (out.username.notnull() & (out.username != "") & out.course_id.notnull()
            & out.ts.notnull())
    status = ibis.ifelse(out.shape != ACCEPTED, out.shape,
                         ibis.ifelse(kept, ACCEPTED, UNPLACED)).cast("int8")
    return with_places(out.mutate(status=status).drop("course_raw", "shape"))


def accepted(rows: Table) -> Table:
    """The accepted events of normalised rows."""
    return rows.filter(rows.status == ACCEPTED).drop("status")


def staff(evs: Table) -> Table:
    """Users with an instructor-dashboard or course-team (studio) event: course staff."""
    return evs.filter(evs.event_type.contains("/instructor")
                      | evs.event_type.startswith("edx.instructor.")
                      | (evs.event_source == "studio")).select("username").distinct()


# What the statistics read of an event (page, name and the raw ids served `events`).
STATISTICS_COLUMNS = ("ts", "username", "course_id", "event_type", "event_source",
                      "referer", "place", "navigation", "video_id", "current_time",
                      "old_time", "new_time", "duration", "problem_id", "usage_key",
                      "grade", "max_grade")


def learners(evs: Table, named: list[str]) -> Table:
    """The events of everyone but staff (the `named` users and those `staff` finds),
    with the columns the statistics read."""
    kept = evs.filter(~evs.username.isin(named)) if named else evs
    kept = kept.anti_join(staff(evs), "username").select(*STATISTICS_COLUMNS)
    # `who`: a number per (course, user), a cheaper key to sort and part events by than
    # the two texts (which share long prefixes).
    people = kept.select("course_id", "username").distinct()
    people = people.mutate(who=ibis.row_number().over(
        order_by=[people.course_id, people.username]))
    return kept.join(people, ["course_id", "username"]).select(*STATISTICS_COLUMNS, "who")


# -- when and where ----------------------------------------------------------------------

DAY_SECONDS = 86_400


def with_time(evs: Table) -> Table:
    """Events with their UTC day and the Monday of their week, as days since 1970-01-01
    (integer arithmetic: far cheaper than dates on every event; `dated` turns the
    aggregated ones into dates). 1970-01-01 was a Thursday."""
    day = evs.ts // (DAY_SECONDS * 1_000_000)
    return evs.mutate(day=day, week=day - (day + 3) % 7)


def dated(rel: Table, *names: str) -> Table:
    """These day-number columns (of `with_time`) as dates."""
    return rel.mutate(**{n: (rel[n] * DAY_SECONDS).as_timestamp("s").date() for n in names})


PAGE_CLASSES = ("info", "progress", "course", "wiki", "discussion", "bookmarks", "dates")
COURSE_PATH = r"^/courses/(?:course-v1:[^/]+|[^/]+/[^/]+/[^/]+)/"
NAVIGATION = ("seq_next", "seq_prev", "seq_goto", "edx.ui.lms.sequence.next_selected",
              "edx.ui.lms.sequence.previous_selected", "edx.ui.lms.sequence.tab_selected")
UNRESOLVED = "unresolved"


def _block_name(usage_key: Any) -> Any:
    """The last part of a usage key (`…+block@<name>` or `i4x://…/<name>`)."""
    return usage_key.re_extract(r"([^/@+]+)$", 1)


def with_places(evs: Table) -> Table:
    """Events with the place each one opens, or null when it opens none (it inherits),
    and whether it is a navigation event; a function of the event alone, so `events`
    computes it once, when the log is read:
    - a courseware page (`/courses/<id>/courseware/<chapter>/<sequential>/<n>/`): the unit
      `<sequential>#<n>` (n = 1 when missing);
    - another course page (info, progress, wiki, discussion, …): `page:<kind>`;
    - legacy navigation (`seq_next|prev|goto`, payload {old, new, id=<sequential>}): the
      unit `<sequential>#<new>`;
    - Learning-MFE navigation (`edx.ui.lms.sequence.*` whose id is a unit): that unit's
      block name; the legacy move across subsections (id = a sequential) is
      `next:<sequential>` (or `prev:`), placed by `locations` from the course structure;
    - other MFE or legacy navigation: `unresolved`."""
    path = evs.event_type
    # Only server events whose path is a course page pay for the regular expressions.
    page = (evs.event_source == "server") & path.startswith("/courses/")
    rest = ibis.ifelse(page, path.re_extract(COURSE_PATH + r"(.*)$", 1),
                       ibis.null("string"))
    rest = _blank_to_null(rest)
    kind = rest.re_extract(r"^([^/]+)", 1)
    courseware = _blank_to_null(rest.re_extract(r"^courseware/[^/]+/([^/]+)", 1))
    position = rest.re_extract(r"^courseware/[^/]+/[^/]+/(\d+)", 1)
    unit_page = courseware + "#" + ibis.ifelse(position == "", "1", position)
    legacy = path.isin(NAVIGATION[:3])
    mfe = path.isin(NAVIGATION[3:])
    vertical = evs.raw_id.contains("vertical")
    across = ibis.ifelse(path == "edx.ui.lms.sequence.previous_selected", "prev:", "next:")
    place = ibis.cases(
        (rest.isnull() & ~legacy & ~mfe, ibis.null("string")),
        (courseware.notnull() & (kind == "courseware"), unit_page),
        (kind.isin(PAGE_CLASSES), "page:" + kind),
        (legacy & evs.nav_new.notnull() & evs.raw_id.notnull(),
         _block_name(evs.raw_id) + "#" + evs.nav_new.cast("string")),
        (mfe & vertical, _block_name(evs.raw_id)),
        (mfe & (path != "edx.ui.lms.sequence.tab_selected") & evs.raw_id.notnull(),
         across + _block_name(evs.raw_id)),
        (mfe | legacy, ibis.literal(UNRESOLVED)),
        else_=ibis.null("string"))
    return evs.mutate(place=place, navigation=legacy | mfe)


def locations(evs: Table, places: Table | None = None) -> Table:
    """Events whose places (`with_places`) are unit ids where the course structure knows
    them: with `places` (course_id, place, unit_id: `domain.tracking.places`) each place
    it maps becomes its unit id; a move across subsections it cannot place (or any, with
    no structure) is `unresolved`."""
    def placed(place: Any) -> Any:  # a move across subsections left unplaced
        crossing = place.startswith("next:") | place.startswith("prev:")
        return ibis.ifelse(crossing, UNRESOLVED, place)
    if places is None:
        return evs.mutate(place=placed(evs.place))
    known = places.rename(known_course="course_id", known_place="place")
    joined = evs.left_join(known, [evs.course_id == known.known_course,
                                   evs.place == known.known_place])
    return joined.mutate(place=joined.unit_id.coalesce(placed(joined.place))).drop(
        "known_course", "known_place", "unit_id")


def visits(evs: Table, places: Table | None = None) -> Table:
    """Navigation events into a unit, once per event, per (course, user, unit, day)."""
    nav = with_time(locations(evs, places))
    nav = nav.filter(nav.navigation)
    return dated(nav.group_by(["course_id", "username", "place", "day"]).aggregate(
        visits=nav.count()).rename(unit="place"), "day")


# -- time on page ------------------------------------------------------------------------

@dataclass(frozen=True)
class TimeRules:
    """The thresholds of time on page (SPEC §6), in seconds; each is a setting."""

    session_gap: float = 3 * 3600 + 30 * 60  # a longer gap ends the session
    login_gap: float = 10 * 60  # … or this, when the next event comes from the login page
    dashboard_gap: float = 15 * 60  # … or this, from the dashboard
    outlier_gap: float = 30 * 60  # a longer gap inside a session …
    outlier_credit: float = 10 * 60  # … counts as this
    last_credit: float = 10 * 60  # the last event of a session (0 after page_close)
    min_run: float = 15.0  # shorter runs on a unit are navigation passing by
    login_referer: str = r"/login([/?#]|$)"
    dashboard_referer: str = r"/dashboard/?([?#]|$)"


def times(evs: Table, rules: TimeRules, places: Table | None = None) -> Table:
    """Seconds on each unit per (course, user, unit, day), with the sessions they span.

    Per user and course, events in time order; the gap to the next event is credited to
    the place last opened (`locations`; events before any are `unresolved`). A session
    ends on a long gap (see TimeRules); longer gaps inside one are capped; the last event
    of a session gets `last_credit`, or 0 if it is `page_close`. Runs of consecutive
    events on one place shorter than `min_run` are dropped. Sessions are not cut at
    midnight: a run counts on the day it started.

    Two passes over the events in time order (a sort each), then small ones over spans:
    1. each event's gaps to the events before and after it: whether it starts a session
       and what it is credited;
    2. running counts: its session, and its span (a new one at each place opened and at
       each session start); a span has one place at most, its first event's;
    3. spans in order: consecutive spans of a session on the same place make one run."""
    placed = locations(evs, places)
    # How a gap into this event may end a session (the referer's kind), read once.
    referer = placed.referer
    cut = ibis.cases((referer.isnull(), 0),
                     (referer.re_search(rules.login_referer), 1),
                     (referer.re_search(rules.dashboard_referer), 2), else_=0)
    # Through the sorts, as few columns as will do: names come back at the end.
    people = placed.select("who", "course_id", "username").distinct()
    placed = placed.select("who", "ts", "event_type", "place", cut=cut)
    w = ibis.window(group_by=placed.who, order_by=[placed.ts, placed.event_type])

    def ends_session(gap: Any, kind: Any) -> Any:  # a gap (s) into an event of that kind
        return ((gap > rules.session_gap) | ((kind == 1) & (gap > rules.login_gap))
                | ((kind == 2) & (gap > rules.dashboard_gap)))
    next_ts, prev_ts = placed.ts.lead().over(w), placed.ts.lag().over(w)
    gap_after = (next_ts - placed.ts) / 1_000_000
    last = next_ts.isnull() | ends_session(gap_after, placed.cut.lead().over(w))
    credited = ibis.ifelse(
        last, ibis.ifelse(placed.event_type == "page_close", 0.0, rules.last_credit),
        ibis.ifelse(gap_after > rules.outlier_gap, rules.outlier_credit, gap_after))
    starts = prev_ts.notnull() & ends_session((placed.ts - prev_ts) / 1_000_000, placed.cut)
    step = placed.select("who", "ts", "event_type", "place",
                         starts=starts.cast("int64"), credited=credited.cast("float64"))
    upto = ibis.window(group_by=step.who, order_by=[step.ts, step.event_type],
                       preceding=None, following=0)
    step = step.mutate(
        session=step.starts.sum().over(upto),
        span=ibis.ifelse((step.starts == 1) | step.place.notnull(), 1, 0).sum().over(upto))
    spans = step.group_by(["who", "session", "span"]).aggregate(
        where=step.place.max(), began=step.ts.min(), seconds=step.credited.sum())
    spans = spans.mutate(where=spans.where.fill_null(UNRESOLVED))
    ws = ibis.window(group_by=spans.who, order_by=spans.span)
    before = spans.where.lag().over(ws)
    spans = spans.mutate(moved=ibis.ifelse(
        before.isnull() | (before != spans.where)
        | (spans.session != spans.session.lag().over(ws)), 1, 0))
    upto_span = ibis.window(group_by=spans.who, order_by=spans.span, preceding=None,
                            following=0)
    spans = spans.mutate(run=spans.moved.sum().over(upto_span))
    runs = spans.group_by(["who", "session", "run", "where"]).aggregate(
        began=spans.began.min(), seconds=spans.seconds.sum())
    runs = with_time(runs.rename(ts="began").filter(runs.seconds >= rules.min_run))
    out = runs.group_by(["who", "where", "day"]).aggregate(
        seconds=runs.seconds.sum(), sessions=runs.session.nunique())
    out = out.join(people, "who")
    return dated(out.select("course_id", "username", "day", "seconds", "sessions",
                            unit=out.where), "day")


# -- problems and weekly activity ------------------------------------------------------

def problems(evs: Table) -> Table:
    """Server `problem_check` events per (course, user, problem, day): attempts, and the
    grade and max grade of the day's last one."""
    checks = with_time(evs.filter((evs.event_type == "problem_check")
                                  & (evs.event_source == "server")))
    checks = checks.mutate(problem=checks.problem_id.coalesce(checks.usage_key))
    checks = checks.filter(checks.problem.notnull())
    return dated(checks.group_by(["course_id", "username", "problem", "day"]).aggregate(
        attempts=checks.count(), grade=checks.grade.argmax(checks.ts),
        max_grade=checks.max_grade.argmax(checks.ts)), "day")


def activity(evs: Table) -> Table:
    """Distinct users per course, week (Monday 00:00 UTC) and label: ACTIVE (any event but
    `task` ones and enrollment events), PLAYED_VIDEO (browser or mobile `play_video`),
    ATTEMPTED_PROBLEM (server `problem_check`), POSTED_FORUM (server
    `edx.forum.*.created`)."""
    e = with_time(evs)
    source = e.event_source.fill_null("")
    label = {
        "ACTIVE": (source != "task") & ~e.event_type.startswith("edx.course.enrollment"),
        "PLAYED_VIDEO": (e.event_type == "play_video") & source.isin(["browser", "mobile"]),
        "ATTEMPTED_PROBLEM": (e.event_type == "problem_check") & (source == "server"),
        "POSTED_FORUM": e.event_type.re_search(r"^edx\.forum\..+\.created$")
        & (source == "server"),
    }
    # One pass over the events for every label, then a row per (course, week, label).
    weeks = dated(e.group_by(["course_id", "week"]).aggregate(
        **{name: e.username.nunique(where=cond) for name, cond in label.items()}), "week")
    parts = [weeks.select("course_id", "week", users=weeks[name].cast("int64"),
                          label=ibis.literal(name)) for name in label]
    out = ibis.union(*parts, distinct=False)
    return out.filter(out.users > 0)


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


def _islands(spans: Table, low: str, high: str) -> Table:
    """Per (course, video, user), the union of their [low, high] spans as disjoint
    islands (course_id, video_id, username, first, last): a span opens a new island when
    it starts after every span before it (in low, high order) has ended."""
    # Distinct spans only: both windows must see one order, and identical spans could
    # come in either.
    own = spans.select("course_id", "video_id", "username", first=spans[low],
                       last=spans[high]).distinct()
    keys = ["course_id", "video_id", "username"]
    before = own.last.max().over(ibis.window(
        group_by=keys, order_by=["first", "last"], preceding=(None, 1)))
    own = own.mutate(new=ibis.ifelse(before.isnull() | (own.first > before), 1, 0))
    own = own.mutate(island=own.new.sum().over(ibis.window(
        group_by=keys, order_by=["first", "last"], preceding=None, following=0)))
    return own.group_by([*keys, "island"]).aggregate(
        first=own.first.min(), last=own.last.max())


def video_users(views: Table, completed_at: float) -> Table:
    """Per (course, video, user): watch time (every viewing counts), the union of the
    viewings, coverage = union / duration (the largest end seen when the duration is
    unknown) clamped to [0, 1], and whether the user completed the video."""
    spans = _islands(views, "start", "end")
    union = spans.group_by(["course_id", "video_id", "username"]).aggregate(
        covered=(spans.last - spans.first).sum())
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
    covered it; a viewing covers every segment from int(start)//5 to int(end)//5.

    Counted at the segments where a figure changes, not segment by segment: a viewing
    adds one view from its first segment and takes it away after its last; a user's
    viewings are merged into runs of segments first, so a user adds one user from a
    run's first segment and takes it away after its last. Running sums over the points
    of change give each stretch's figures; only the stretches with views become
    segments."""
    # floor, not a cast: DuckDB rounds a float cast to an integer, Spark truncates.
    spans = views.select(
        "course_id", "video_id", "username",
        first=views.start.floor().cast("int64") // SEGMENT_SECONDS,
        last=views.end.floor().cast("int64") // SEGMENT_SECONDS)
    runs = _islands(spans, "first", "last")

    def change(rel: Table, at: Any, add_views: int, add_users: int) -> Table:
        return rel.select("course_id", "video_id", point=at,
                          views=ibis.literal(add_views, "int64"),
                          users=ibis.literal(add_users, "int64"))
    changes = ibis.union(
        change(spans, spans.first, 1, 0), change(spans, spans.last + 1, -1, 0),
        change(runs, runs.first, 0, 1), change(runs, runs.last + 1, 0, -1), distinct=False)
    points = changes.group_by(["course_id", "video_id", "point"]).aggregate(
        views=changes.views.sum(), users=changes.users.sum())
    w = ibis.window(group_by=[points.course_id, points.video_id], order_by=points.point,
                    preceding=None, following=0)
    stretch = points.mutate(num_views=points.views.sum().over(w),
                            num_users=points.users.sum().over(w),
                            until=points.point.lead().over(ibis.window(
                                group_by=[points.course_id, points.video_id],
                                order_by=points.point)))
    stretch = stretch.filter(stretch.num_views > 0)  # `until` is set: views end somewhere
    out = stretch.mutate(segment=ibis.range(stretch.point, stretch.until).unnest())
    return out.select("course_id", "video_id", "segment", "num_views", "num_users")


__all__ = ["RAW_COLUMNS", "TimeRules", "activity", "events", "learners", "problems",
           "timeline", "times", "video_users", "viewings", "visits"]
