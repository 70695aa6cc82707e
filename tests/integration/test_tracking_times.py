"""Time on page, visits, problems and weekly activity (SPEC §6), each rule on a small
hand-written log with its figures worked out by hand beside it; then the stats routes
that serve them. The log starts on Monday 2025-03-03 09:00 UTC (tests.tracking.T0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, select

from learnlog.bootstrap import Runtime
from learnlog.store.schema import stats_activity, stats_problems, stats_times, stats_visits
from tests.support import Api
from tests.tracking import COURSE, event, run, video, write

MIN = 60
HOUR = 3600
SEQ = "block-v1:LearnX+T1+2025+type@sequential+block@"
UNIT = "block-v1:LearnX+T1+2025+type@vertical+block@"


def page(user: str, seconds: float, where: str = "s1/1", *, referer: str | None = None,
         kind: str = "courseware") -> str:
    """A server page view: `where` is `<sequential>/<n>` of a courseware page, or the
    page's kind (`progress`, `info`, …) with kind=that."""
    path = (f"/courses/{COURSE}/courseware/ch1/{where}/" if kind == "courseware"
            else f"/courses/{COURSE}/{kind}/")
    extra = {"referer": referer} if referer else {}
    return event(user, path, seconds, {"GET": {}, "POST": {}}, source="server", **extra)


def times(db: Engine, tmp_path: Path, *lines: str) -> dict[tuple[str, str], tuple[float, int]]:
    """{(unit, day): (seconds, sessions)} of user ana."""
    run(db, tmp_path / "store", [write(tmp_path / "t.log", lines)])
    with db.connect() as conn:
        return {(r.unit_id, r.day): (pytest.approx(r.seconds), r.sessions)  # type: ignore[misc]
                for r in conn.execute(select(stats_times).where(
                    stats_times.c.username == "ana"))}


DAY = "2025-03-03"


def test_a_gap_is_credited_to_the_unit_last_opened_and_page_close_ends_with_nothing(
        db: Engine, tmp_path: Path) -> None:
    found = times(db, tmp_path,
                  page("ana", 0, "s1/1"),
                  video("ana", "play_video", 20, currentTime=0),  # on s1#1: inherits
                  page("ana", 100, "s1/2"),
                  event("ana", "page_close", 160))
    # s1#1: 20 + 80 = 100 s; s1#2: 60 s, then page_close (the session's last event) adds 0.
    assert found == {("s1#1", DAY): (100.0, 1), ("s1#2", DAY): (60.0, 1)}


def test_the_last_event_of_a_session_gets_10_minutes_and_a_long_gap_starts_another(
        db: Engine, tmp_path: Path) -> None:
    found = times(db, tmp_path,
                  page("ana", 0, "s1/1"),
                  page("ana", 4 * HOUR, "s1/1"))  # > 3 h 30 min later: a new session
    # Each session ends on its only event: 600 s each, two sessions.
    assert found == {("s1#1", DAY): (1200.0, 2)}


def test_a_gap_over_30_minutes_inside_a_session_counts_as_10(
        db: Engine, tmp_path: Path) -> None:
    found = times(db, tmp_path,
                  page("ana", 0, "s1/1"),
                  event("ana", "problem_graded", 40 * MIN),  # 40 min: counts 600 s
                  page("ana", 41 * MIN, "s1/2"))
    # s1#1: 600 (capped) + 60; s1#2: the last event, 600.
    assert found == {("s1#1", DAY): (660.0, 1), ("s1#2", DAY): (600.0, 1)}


def test_coming_back_from_the_login_page_or_the_dashboard_ends_the_session_sooner(
        db: Engine, tmp_path: Path) -> None:
    login, dashboard = "https://lms.example.org/login?next=/x", "https://lms.example.org/dashboard"
    found = times(db, tmp_path,
                  page("ana", 0, "a/1"),
                  page("ana", 11 * MIN, "b/1", referer=login),  # 11 min > 10: ends a/1
                  page("ana", 20 * MIN, "c/1", referer=login),  # 9 min: same session
                  page("ana", 36 * MIN, "d/1", referer=dashboard),  # 16 min > 15: ends c
                  page("ana", 50 * MIN, "e/1", referer=dashboard))  # 14 min: same session
    assert found == {("a#1", DAY): (600.0, 1), ("b#1", DAY): (540.0, 1),
                     ("c#1", DAY): (600.0, 1), ("d#1", DAY): (840.0, 1),
                     ("e#1", DAY): (600.0, 1)}


def test_runs_shorter_than_15_seconds_are_navigation_passing_by(
        db: Engine, tmp_path: Path) -> None:
    found = times(db, tmp_path,
                  page("ana", 0, "a/1"),
                  page("ana", 10, "b/1"),  # 10 s on a#1: dropped
                  page("ana", 100, "c/1"))
    assert found == {("b#1", DAY): (90.0, 1), ("c#1", DAY): (600.0, 1)}


def test_a_session_across_midnight_is_not_cut_and_counts_on_the_day_a_run_began(
        db: Engine, tmp_path: Path) -> None:
    evening = 14 * HOUR + 50 * MIN  # 09:00 + 14:50 = 23:50
    found = times(db, tmp_path,
                  page("ana", evening, "a/1"),
                  page("ana", evening + 20 * MIN, "b/1"))  # 00:10 the next day
    assert found == {("a#1", DAY): (1200.0, 1), ("b#1", "2025-03-04"): (600.0, 1)}


def test_time_before_any_unit_and_on_other_pages_is_reported_as_such(
        db: Engine, tmp_path: Path) -> None:
    found = times(db, tmp_path,
                  event("ana", "problem_graded", 0),  # nothing opened yet
                  page("ana", 60, kind="progress"),
                  page("ana", 180, "a/1"))
    assert found == {("unresolved", DAY): (60.0, 1), ("page:progress", DAY): (120.0, 1),
                     ("a#1", DAY): (600.0, 1)}


def test_visits_count_legacy_and_mfe_navigation_once_per_event(
        db: Engine, tmp_path: Path) -> None:
    def nav(kind: str, seconds: float, **payload: Any) -> str:
        return event("ana", kind, seconds, payload)
    log = write(tmp_path / "t.log", [
        page("ana", 0, "s9/1"),  # a page view is not a visit
        nav("seq_next", 10, old=1, new=2, id=SEQ + "s9"),
        nav("seq_next", 20, old=1, new=2, id=SEQ + "s9"),
        nav("seq_goto", 30, old=2, new=4, id=SEQ + "s9"),
        nav("seq_prev", 40, old=4, new=3, id=SEQ + "s9"),
        nav("edx.ui.lms.sequence.tab_selected", 50, current_tab=1, target_tab=3,
            tab_count=4, id=UNIT + "u3"),
        nav("edx.ui.lms.sequence.next_selected", 60, current_tab=3, tab_count=4,
            id=UNIT + "u4"),
        # The legacy move into the next subsection names a sequential, not a unit.
        nav("edx.ui.lms.sequence.next_selected", 70, current_tab=4, tab_count=4,
            id=SEQ + "s9"),
    ])
    run(db, tmp_path / "store", [log])
    with db.connect() as conn:
        found = {r.unit_id: r.visits for r in conn.execute(select(stats_visits))}
    assert found == {"s9#2": 2, "s9#4": 1, "s9#3": 1, "u3": 1, "u4": 1, "unresolved": 1}


def test_problems_count_server_checks_and_keep_the_days_last_grade(
        db: Engine, tmp_path: Path) -> None:
    usage = "block-v1:LearnX+T1+2025+type@problem+block@p1"

    def check(seconds: float, grade: float, source: str = "server") -> str:
        return event("ana", "problem_check", seconds,
                     {"problem_id": usage, "grade": grade, "max_grade": 3.0, "attempts": 1},
                     source=source)
    log = write(tmp_path / "t.log", [check(0, 1.0), check(60, 3.0),
                                     check(70, 0.0, source="browser"),  # not a grade
                                     check(24 * HOUR, 2.0)])
    run(db, tmp_path / "store", [log])
    with db.connect() as conn:
        found = [(r.day, r.attempts, r.grade, r.max_grade)
                 for r in conn.execute(select(stats_problems).order_by(stats_problems.c.day))]
    assert found == [(DAY, 2, 3.0, 3.0), ("2025-03-04", 1, 2.0, 3.0)]


def test_weekly_activity_labels_count_distinct_users_monday_to_monday(
        db: Engine, tmp_path: Path) -> None:
    sunday = 6 * 24 * HOUR + 10 * HOUR  # Sunday 2025-03-09 19:00: the same week
    next_monday = 7 * 24 * HOUR - 9 * HOUR  # Monday 2025-03-10 00:00: the next week
    log = write(tmp_path / "t.log", [
        video("ana", "play_video", 0, currentTime=0),  # ACTIVE, PLAYED_VIDEO
        event("ben", "problem_check", 10, {"grade": 1, "max_grade": 1,
                                           "problem_id": "p"}, source="server"),
        event("cy", "edx.forum.thread.created", sunday, {}, source="server"),
        event("dan", "edx.course.enrollment.activated", 20, {}, source="server"),
        event("eve", "problem_rescore", 30, {}, source="task"),  # not activity
        event("ben", "problem_check", 40, "input_1=2", source="browser"),  # browser: no
        event("ana", "page_close", next_monday),
    ])
    run(db, tmp_path / "store", [log])
    with db.connect() as conn:
        found = {(r.week_start, r.label): r.users for r in conn.execute(select(stats_activity))}
    assert found == {("2025-03-03", "ACTIVE"): 3, ("2025-03-03", "PLAYED_VIDEO"): 1,
                     ("2025-03-03", "ATTEMPTED_PROBLEM"): 1,
                     ("2025-03-03", "POSTED_FORUM"): 1, ("2025-03-10", "ACTIVE"): 1}


# -- the routes -------------------------------------------------------------------------

@pytest.fixture
def served(api: Api, runtime: Runtime, tmp_path: Path) -> Api:
    log = write(tmp_path / "t.log", [
        page("ana", 0, "a/1"), page("ana", 100, "b/1"),
        page("ben", 0, "a/1"),
        event("ana", "seq_next", 200, {"old": 1, "new": 2, "id": SEQ + "b"}),
        event("ana", "problem_check", 300, {"problem_id": "p1", "grade": 1.0,
                                            "max_grade": 2.0}, source="server"),
        event("ana", "page_close", 8 * 24 * HOUR),
    ])
    run(runtime.engine, tmp_path / "store", [log])
    return api


def stats(api: Api, route: str, query: str = "", status: int = 200) -> Any:
    response = api.client.get(f"/api/stats/{route}?course_id={quote(COURSE)}{query}",
                              headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == status, response.text
    return response.json()


def test_the_routes_serve_rows_per_user_unit_and_day_with_filters(served: Api) -> None:
    assert stats(served, "times", "&user=ana&unit=a%231") == {"course_id": COURSE, "rows": [
        {"user": "ana", "unit": "a#1", "day": DAY, "seconds": 100.0, "sessions": 1}]}
    assert [r["user"] for r in stats(served, "times", "&unit=a%231")["rows"]] == ["ana", "ben"]
    assert stats(served, "visits")["rows"] == [
        {"user": "ana", "unit": "b#2", "day": DAY, "visits": 1}]
    assert stats(served, "problems")["rows"] == [
        {"user": "ana", "problem": "p1", "day": DAY, "attempts": 1, "grade": 1.0,
         "max_grade": 2.0}]
    assert stats(served, "problems", "&start=2025-03-04")["rows"] == []
    weeks = stats(served, "activity")["weeks"]
    assert weeks == [
        {"week_start": "2025-03-03", "week_end": "2025-03-10", "ACTIVE": 2,
         "PLAYED_VIDEO": 0, "ATTEMPTED_PROBLEM": 1, "POSTED_FORUM": 0},
        {"week_start": "2025-03-10", "week_end": "2025-03-17", "ACTIVE": 1,
         "PLAYED_VIDEO": 0, "ATTEMPTED_PROBLEM": 0, "POSTED_FORUM": 0}]
    assert [w["week_start"] for w in stats(served, "activity", "&start=2025-03-12")[
        "weeks"]] == ["2025-03-10"]


@pytest.mark.parametrize(("route", "query", "field"), [
    ("times", "&start=03/03/2025", "start"),
    ("times", "&start=2025-03-05&end=2025-03-04", "start"),
    ("problems", "&unit=a%231", "unit"),
    ("activity", "&user=ana", "user"),
])
def test_bad_filters_are_a_400_naming_them(served: Api, route: str, query: str,
                                           field: str) -> None:
    assert field in stats(served, route, query, 400)["params"]["errmsg"]
