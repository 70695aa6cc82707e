"""Ingesting tracking logs (SPEC §6): the real Open edX logs of `shared/edx/` through the
CLI with figures worked out by hand, comments and broken lines counted, incremental runs
equal to a from-scratch run, and both databases."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from learnlog.analytics.engines import open_engine
from learnlog.analytics.ingest import recompute_courses
from learnlog.analytics.synthetic import generate
from learnlog.bootstrap import bootstrap
from learnlog.settings import Settings
from learnlog.store.schema import log_batches, stats_activity, stats_times
from tests.tracking import COURSE, edx_logs, event, run, stored, video, write

DEMO = "course-v1:edX+DemoX+Demo_Course"


@pytest.fixture
def db(settings: Settings) -> Iterator[Engine]:
    rt = bootstrap(settings)
    yield rt.engine
    rt.close()


def rounded(found: dict[str, Any]) -> dict[str, Any]:
    """Stored statistics with floats to 9 places (sums may add in another order)."""
    def fix(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 9)
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(fix(v) for v in value)
        return value
    return fix(found)  # type: ignore[no-any-return]


def test_the_edx_logs_ingest_through_the_cli_with_their_comments_counted(
        settings: Settings, db: Engine, tmp_path: Path) -> None:
    env = {**os.environ, "LEARNLOG_DATABASE_URL": settings.database_url,
           "LEARNLOG_ANALYTICS_DIR": str(tmp_path / "analytics")}
    edx = edx_logs()
    done = subprocess.run([sys.executable, "-m", "learnlog", "logs", "ingest", str(edx)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    summary = " ".join(done.stderr.split())
    # 29 + 207 + 126 lines; video_timeline.log has 7 '#' lines and 4 blank ones; 33 events
    # have no user (12 + 5) or no course (6 + 10).
    assert "ingested 3 files" in summary
    assert "362 lines read, 11 comments, 318 events accepted, 33 rejected" in summary
    s = stored(db)
    # video_timeline.log, video 3cb54a…: ana-like user 1 watches [0, 14.234121],
    # [7.345, 14.234121] (the play after the seek starts at its new_time), [17, 21.4]
    # (the play after the second seek reports a stale 14), [21.4, 24.9]; user 2 [0, 9.9];
    # user 3 [15.3, 24.9]. The file's own comment: "five segments: 1,2,2,1,2" for user 1.
    vid = "3cb54a11efae4ccc8a0aade24d14b255"
    assert s["timeline"][vid] == [(0, 2, 2), (1, 2, 3), (2, 1, 2), (3, 2, 2), (4, 2, 3)]
    row = s["videos"][(DEMO, vid)]
    assert row["viewers"] == 3 and row["duration"] is None
    assert row["watch_time"] == pytest.approx(29.023242 + 9.9 + 9.6)
    assert row["total_viewed_seconds"] == 5 * 12
    assert (row["users_at_start"], row["users_at_end"]) == (2, 2)
    # Unknown duration: coverage over the largest end seen (24.9); user 1 covers
    # [0, 14.234121] and [17, 24.9]: 22.134121 s.
    user1 = s["users"][(vid, "dummy_username_1")]
    assert user1["coverage"] == pytest.approx(22.134121 / 24.9)
    assert not user1["completed"]
    # The old course id form and the i4x video id form are the same course and video.
    assert (DEMO, vid) in s["videos"] and ("edX/DemoX/Demo_Course", vid) not in s["videos"]
    # The last two events carry a duration (444 s): coverage 4 / 444.
    timed = s["videos"][("course-v1:edX+DemoX+Test_2015", "0b9e39477cf34507a7a48f74be381fdd1")]
    assert timed["duration"] == 444.0
    assert s["users"][("0b9e39477cf34507a7a48f74be381fdd1", "dummy_username_1")][
        "coverage"] == pytest.approx(4 / 444)
    # module_engagement…log: honor checks problem a0effb… three times on the server on
    # 2015-04-16 (lines 46, 50, 54: grades 0/3, 2/3, 3/3); the browser's problem_check
    # and the xblock handler requests around them are not attempts.
    problem = "i4x://edX/DemoX/problem/a0effb954cca4759994f1ac9e9434bf4"
    assert ("default", DEMO, "honor", problem, "2015-04-16", 3, 3.0, 3.0) in s[
        "stats_problems"]
    # Again: every file is unchanged, nothing is read and nothing changes.
    again = subprocess.run([sys.executable, "-m", "learnlog", "logs", "ingest", str(edx)],
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert "ingested 3 files (3 unchanged, 0 grown)" in " ".join(again.stderr.split())
    assert stored(db) == s


def test_a_broken_line_never_takes_its_neighbour_with_it(db: Engine, tmp_path: Path) -> None:
    log = write(tmp_path / "t.log", [
        "# a comment", "",
        video("ana", "play_video", 0, currentTime=0),
        '{"username": "ana", "event_type": ',  # broken: the next line must survive
        video("ana", "pause_video", 10, currentTime=10),
        "not json at all",
        event("", "page_close", 11),  # no user
        event("ben", "page_close", 12, course=None),  # no course, nor in the page
        event("cy", "page_close", 13, course=None,
              page=f"https://lms/courses/{COURSE}/courseware/a/b/1/"),  # course from page
    ])
    report = run(db, tmp_path / "store", [log])
    c = report.counts
    assert (c.lines, c.comments, c.malformed, c.events) == (9, 2, 2, 5)
    assert (report.accepted, report.rejected) == (3, 4)
    assert stored(db)["users"][("v1", "ana")]["watch_time"] == pytest.approx(10.0)


def test_staff_are_left_out_by_name_and_by_their_instructor_events(
        db: Engine, tmp_path: Path) -> None:
    log = write(tmp_path / "t.log", [
        *(video(u, k, t, currentTime=t) for u in ("ana", "tim", "sue")
          for k, t in (("play_video", 0), ("pause_video", 10))),
        event("sue", f"/courses/{COURSE}/instructor", 20, source="server"),
    ])
    run(db, tmp_path / "store", [log], staff=["tim"])
    assert sorted(u for _, u in stored(db)["users"]) == ["ana"]


def test_appended_and_new_files_read_only_what_is_new_and_equal_a_fresh_run(
        settings: Settings, db: Engine, tmp_path: Path) -> None:
    full = generate(tmp_path / "full.log", event_count=3000, users=60, course_count=2)
    lines = full.path.read_text().splitlines()
    half = len(lines) // 2
    log = write(tmp_path / "logs" / "tracking.log", lines[:half])
    first = run(db, tmp_path / "store", [tmp_path / "logs"])
    assert first.counts.lines == half
    with open(log, "a") as f:  # the file grows
        f.write("".join(line + "\n" for line in lines[half:]))
    second = run(db, tmp_path / "store", [tmp_path / "logs"])
    assert (second.grown, second.counts.lines) == (1, len(lines) - half)
    third = run(db, tmp_path / "store", [tmp_path / "logs"])
    assert (third.skipped, third.counts.lines, third.accepted) == (1, 0, 0)
    # A from-scratch run over the whole file, into a fresh database.
    fresh_rt = bootstrap(settings.model_copy(update={
        "database_url": f"sqlite:///{tmp_path / 'fresh.db'}"}))
    try:
        run(fresh_rt.engine, tmp_path / "fresh-store", [full.path])
        assert rounded(stored(db)) == rounded(stored(fresh_rt.engine))
    finally:
        fresh_rt.close()
    assert stored(db)["videos"], "the synthetic log has video viewings"
    with db.connect() as conn:
        assert len(conn.execute(select(log_batches)).all()) == 2  # the third run added none


def test_gzip_logs_are_read_and_a_grown_gzip_file_only_from_its_new_lines(
        db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "tracking.log.gz"
    first = [video("ana", "play_video", 0, currentTime=0),
             video("ana", "pause_video", 10, currentTime=10)]
    with gzip.open(path, "wt") as f:
        f.write("# rotated\n" + "".join(line + "\n" for line in first))
    report = run(db, tmp_path / "store", [path])
    assert (report.counts.lines, report.counts.comments, report.accepted) == (3, 1, 2)
    with gzip.open(path, "at") as f:  # a second gzip member: the file grew
        f.write(video("ana", "play_video", 20, currentTime=10) + "\n"
                + video("ana", "pause_video", 30, currentTime=20) + "\n")
    again = run(db, tmp_path / "store", [path])
    assert (again.grown, again.counts.lines, again.accepted) == (1, 2, 2)
    assert stored(db)["users"][("v1", "ana")]["watch_time"] == pytest.approx(20.0)


def test_a_batch_a_run_never_committed_is_ignored_and_removed(
        db: Engine, tmp_path: Path) -> None:
    log = write(tmp_path / "t.log", [video("ana", "play_video", 0, currentTime=0),
                                     video("ana", "pause_video", 10, currentTime=10)])
    run(db, tmp_path / "store", [log])
    batches = tmp_path / "store" / "duckdb" / "events"
    # A run that died after writing its batch but before its commit left this behind.
    orphan = batches / "dead-run.parquet"
    (next(batches.glob("*.parquet"))).rename(orphan)
    with db.begin() as conn:
        conn.execute(log_batches.delete())
    write(tmp_path / "t2.log", [video("ben", "play_video", 0, currentTime=0),
                                video("ben", "pause_video", 5, currentTime=5)])
    run(db, tmp_path / "store", [tmp_path / "t2.log"])
    assert not orphan.exists()
    assert sorted(u for _, u in stored(db)["users"]) == ["ben"]


def test_line_counts_agree_with_splitting_the_text_for_any_block_size(tmp_path: Path) -> None:
    """The reader's own counts (lines, blank, comments) decide whether DuckDB's fast read
    can be trusted: they must be exact across block boundaries."""
    import random

    from learnlog.analytics.engines import line_counts

    def by_hand(data: bytes) -> tuple[int, int, int]:
        if not data:
            return 0, 0, 0
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines = lines[:-1]
        return (len(lines), sum(1 for line in lines if line == b""),
                sum(1 for line in lines if line.startswith(b"#")))
    rng = random.Random(1)
    path = tmp_path / "t.log"
    for _ in range(200):
        parts = [rng.choice([b"", b"#c", b"{}", b"x#", b"\n", b"##"])
                 for _ in range(rng.randint(0, 30))]
        data = b"\n".join(parts) + rng.choice([b"", b"\n"])
        path.write_bytes(data)
        for block in (1, 2, 3, 7, 1 << 20):
            assert line_counts(path, block) == by_hand(data), (data, block)


def test_watch_runs_on_a_schedule_and_reads_only_what_is_new(
        settings: Settings, db: Engine, tmp_path: Path) -> None:
    log = write(tmp_path / "logs" / "tracking.log", [
        video("ana", "play_video", 0, currentTime=0),
        video("ana", "pause_video", 10, currentTime=10)])
    env = {**os.environ, "LEARNLOG_DATABASE_URL": settings.database_url,
           "LEARNLOG_ANALYTICS_DIR": str(tmp_path / "analytics")}
    done = subprocess.run(
        [sys.executable, "-m", "learnlog", "logs", "watch", str(log.parent), "--every", "1s",
         "--runs", "2"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    summary = " ".join(done.stderr.split())
    assert "ingested 1 files (0 unchanged, 0 grown)" in summary
    assert "next run in 1s" in summary
    assert "ingested 1 files (1 unchanged, 0 grown)" in summary
    assert stored(db)["users"][("v1", "ana")]["watch_time"] == pytest.approx(10.0)
    bad = subprocess.run([sys.executable, "-m", "learnlog", "logs", "watch", str(log.parent),
                          "--every", "soon"], env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert bad.returncode == 2 and "is not a duration" in bad.stderr



def test_datasets_share_a_store_without_touching_each_others_events(
        db: Engine, tmp_path: Path) -> None:
    from learnlog.analytics.engines import open_engine
    from learnlog.analytics.ingest import ingest

    def log(name: str, user: str) -> Path:
        return write(tmp_path / name, [video(user, "play_video", 0, currentTime=0),
                                       video(user, "pause_video", 10, currentTime=10)])
    store = tmp_path / "store"
    runner = open_engine("duckdb", store / "duckdb" / "work")
    try:
        ingest(db, runner, store, [log("a.log", "ana")], dataset="one")
        ingest(db, runner, store, [log("b.log", "ben")], dataset="two")
        ingest(db, runner, store, [log("c.log", "cy")], dataset="one")  # a later run of one
    finally:
        runner.close()
    with db.connect() as conn:
        batches = {r.dataset: Path(r.path) for r in conn.execute(select(log_batches))}
    assert batches["two"].exists()  # not taken for a dead run's leftovers
    # Each dataset's week: its users only (ana and cy in one, ben in two).
    assert {(r[0], r[3], r[4]) for r in stored(db)["stats_activity"]
            if r[3] == "ACTIVE"} == {("one", "ACTIVE", 2), ("two", "ACTIVE", 1)}


def test_batches_kept_before_places_and_statuses_were_stored_still_count(
        db: Engine, tmp_path: Path) -> None:
    """A batch written by an earlier version holds accepted events only, without their
    places: recomputed from it, the statistics are the same."""
    import duckdb

    generate(tmp_path / "logs" / "a.log", event_count=2000, users=40, course_count=2, seed=5)
    report = run(db, tmp_path / "store", [tmp_path / "logs"])
    before = rounded(stored(db))
    with db.connect() as conn:
        (batch,) = [Path(r.path) for r in conn.execute(select(log_batches))]
    con = duckdb.connect()
    for part in batch.glob("*.parquet"):
        old = part.with_suffix(".old")
        con.execute(f"COPY (SELECT * EXCLUDE (status, place, navigation) FROM "
                    f"read_parquet('{part}') WHERE status = 0) TO '{old}' (FORMAT parquet)")
        part.unlink()
        old.rename(part)
    con.close()
    runner = open_engine("duckdb", tmp_path / "store" / "duckdb" / "work")
    try:
        recompute_courses(db, runner, tmp_path / "store", report.courses)
    finally:
        runner.close()
    assert rounded(stored(db)) == before
    assert before["stats_times"] and before["stats_visits"]


def test_days_and_weeks_are_utc_whatever_the_machines_time_zone(tmp_path: Path) -> None:
    """On a machine in Los Angeles (UTC-8 in March), an event at 00:30 UTC on Monday
    2025-03-03 is still Monday's, in Monday's week; a time without an offset is UTC."""
    lines = [event("ana", f"/courses/{COURSE}/courseware/ch1/s1/1/", -8.5 * 3600,
                   {"GET": {}}, source="server"),  # 2025-03-03 00:30 UTC
             event("ana", "page_close", -8.5 * 3600 + 60)]
    lines.append(lines[-1].replace("+00:00", ""))  # the same moment, written without offset
    write(tmp_path / "logs" / "t.log", lines)
    url = f"sqlite:///{tmp_path / 'tz.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "learnlog", "logs", "ingest", str(tmp_path / "logs")],
        env={**os.environ, "TZ": "America/Los_Angeles", "LEARNLOG_DATABASE_URL": url,
             "LEARNLOG_ANALYTICS_DIR": str(tmp_path / "store")},
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    db = create_engine(url)
    try:
        with db.connect() as conn:
            days = {r.day for r in conn.execute(select(stats_times))}
            weeks = {r.week_start for r in conn.execute(select(stats_activity))}
    finally:
        db.dispose()
    assert days == {"2025-03-03"} and weeks == {"2025-03-03"}
