"""Video rules of SPEC §6, each on a small hand-written log with its figures worked out by
hand beside it (DuckDB engine, results read back from a real SQLite database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.tracking import COURSE, run, stored, video, write


def stats(db: Engine, tmp_path: Path, *lines: str) -> dict[str, Any]:
    log = write(tmp_path / "tracking.log", lines)
    run(db, tmp_path / "store", [log])
    return stored(db)


def test_a_pause_or_a_stop_ends_a_viewing_at_its_current_time(
        db: Engine, tmp_path: Path) -> None:
    s = stats(db, tmp_path,
              video("ana", "play_video", 0, currentTime=0),
              video("ana", "pause_video", 30, currentTime=30),
              video("ana", "play_video", 40, currentTime=30),
              video("ana", "stop_video", 50, currentTime=40))
    # [0, 30] and [30, 40]: 40 s watched, covered 40 s.
    assert s["users"][("v1", "ana")]["watch_time"] == pytest.approx(40.0)
    assert s["users"][("v1", "ana")]["viewings"] == 2
    # Segments 0..6 from the first viewing, 6..8 from the second (6 twice).
    assert [seg for seg, _, _ in s["timeline"]["v1"]] == list(range(9))
    assert s["timeline"]["v1"][6] == (6, 1, 2)


def test_a_seek_ends_a_viewing_at_old_time_and_the_stale_play_after_it_starts_at_new_time(
        db: Engine, tmp_path: Path) -> None:
    s = stats(db, tmp_path,
              video("ana", "play_video", 0, currentTime=0),
              video("ana", "seek_video", 12, old_time=12, new_time=40),
              video("ana", "play_video", 13, currentTime=12),  # stale: the player says 12
              video("ana", "pause_video", 23, currentTime=50))
    # [0, 12] and [40, 50] (not [12, 50]): 22 s.
    user = s["users"][("v1", "ana")]
    assert user["watch_time"] == pytest.approx(22.0)
    assert user["covered"] == pytest.approx(22.0)
    assert [seg for seg, _, _ in s["timeline"]["v1"]] == [0, 1, 2, 8, 9, 10]


def test_a_play_while_playing_drops_the_open_viewing_and_starts_anew(
        db: Engine, tmp_path: Path) -> None:
    s = stats(db, tmp_path,
              video("ana", "play_video", 0, currentTime=0),
              video("ana", "play_video", 20, currentTime=20),
              video("ana", "pause_video", 25, currentTime=25))
    assert s["users"][("v1", "ana")]["watch_time"] == pytest.approx(5.0)  # [20, 25] only
    assert s["users"][("v1", "ana")]["viewings"] == 1


def test_viewings_with_no_end_backwards_too_short_or_past_the_duration_are_left_out(
        db: Engine, tmp_path: Path) -> None:
    s = stats(db, tmp_path,
              video("ana", "play_video", 0, currentTime=0),  # never ends (tab closed)
              video("ben", "play_video", 0, vid="v2", currentTime=50),
              video("ben", "pause_video", 5, vid="v2", currentTime=40),  # ends before start
              video("cy", "play_video", 0, vid="v3", currentTime=10),
              video("cy", "pause_video", 1, vid="v3", currentTime=10.2),  # 0.2 s
              video("cy", "play_video", 2, vid="v3", currentTime=20),
              video("cy", "pause_video", 3, vid="v3", currentTime=20.25),  # 0.25 s: kept
              video("dan", "play_video", 0, vid="v4", duration=100, currentTime=90),
              video("dan", "pause_video", 9, vid="v4", duration=100, currentTime=101.5),
              video("dan", "play_video", 10, vid="v4", duration=100, currentTime=90),
              video("dan", "pause_video", 20, vid="v4", duration=100, currentTime=101))
    assert ("v1", "ana") not in s["users"] and ("v2", "ben") not in s["users"]
    assert s["users"][("v3", "cy")]["watch_time"] == pytest.approx(0.25)
    assert s["users"][("v4", "dan")]["watch_time"] == pytest.approx(11.0)  # [90, 101] only
    assert s["videos"][(COURSE, "v4")]["duration"] == 100.0


def test_time_values_outside_0_to_36000_or_not_numbers_are_ignored(
        db: Engine, tmp_path: Path) -> None:
    s = stats(db, tmp_path,
              video("ana", "play_video", 0, currentTime=0),
              video("ana", "pause_video", 5, currentTime=40_000),  # ignored
              video("ana", "pause_video", 6, currentTime="soon"),  # ignored
              video("ana", "pause_video", 10, currentTime=10),  # ends [0, 10]
              video("ben", "play_video", 0, currentTime=-1),  # ignored: no viewing opens
              video("ben", "pause_video", 10, currentTime=10))
    assert s["users"][("v1", "ana")]["watch_time"] == pytest.approx(10.0)
    assert ("v1", "ben") not in s["users"]


def test_coverage_is_the_union_over_the_duration_or_the_largest_end_seen(
        db: Engine, tmp_path: Path) -> None:
    s = stats(db, tmp_path,
              # Known duration 50: [0, 30] and [20, 40] → union 40 → 0.8; watched 50.
              video("ana", "play_video", 0, vid="k", duration=50, currentTime=0),
              video("ana", "pause_video", 30, vid="k", duration=50, currentTime=30),
              video("ana", "play_video", 40, vid="k", duration=50, currentTime=20),
              video("ana", "pause_video", 60, vid="k", duration=50, currentTime=40),
              # Unknown duration: the largest end seen of the video is 40 (ben).
              video("ana", "play_video", 0, vid="u", currentTime=0),
              video("ana", "pause_video", 20, vid="u", currentTime=20),
              video("ben", "play_video", 0, vid="u", currentTime=0),
              video("ben", "pause_video", 40, vid="u", currentTime=40))
    ana_k = s["users"][("k", "ana")]
    assert (ana_k["watch_time"], ana_k["covered"]) == pytest.approx((50.0, 40.0))
    assert ana_k["coverage"] == pytest.approx(0.8) and not ana_k["completed"]
    assert s["users"][("u", "ana")]["coverage"] == pytest.approx(0.5)
    assert s["users"][("u", "ben")]["coverage"] == pytest.approx(1.0)
    assert s["users"][("u", "ben")]["completed"]
    video_u = s["videos"][(COURSE, "u")]
    assert video_u["duration"] is None
    assert (video_u["viewers"], video_u["completed_viewers"]) == (2, 1)
    assert video_u["avg_coverage"] == pytest.approx(0.75)
    assert video_u["watch_time"] == pytest.approx(60.0)


def test_the_timeline_counts_views_and_distinct_users_per_5_second_segment(
        db: Engine, tmp_path: Path) -> None:
    s = stats(db, tmp_path,
              # [4.7, 5.1]: segments 0 and 1 (int(4.7)//5 = 0, int(5.1)//5 = 1).
              video("ana", "play_video", 0, currentTime=4.7),
              video("ana", "pause_video", 1, currentTime=5.1),
              # [0, 9.99]: segments 0 and 1 again, same user: views 2, users 1.
              video("ana", "play_video", 2, currentTime=0),
              video("ana", "pause_video", 12, currentTime=9.99),
              video("ben", "play_video", 0, currentTime=7),
              video("ben", "pause_video", 8, currentTime=14.9))
    assert s["timeline"]["v1"] == [(0, 1, 2), (1, 2, 3), (2, 1, 1)]
    video_row = s["videos"][(COURSE, "v1")]
    assert video_row["total_viewed_seconds"] == 5 * (2 + 3 + 1)
    assert video_row["users_at_start"] == 1


def test_users_at_the_end_read_the_segment_30_s_or_5_percent_before_it(
        db: Engine, tmp_path: Path) -> None:
    # Duration 100: the end segment is int(max(70, 95)) // 5 = 19.
    s = stats(db, tmp_path,
              video("ana", "play_video", 0, duration=100, currentTime=0),
              video("ana", "stop_video", 100, duration=100, currentTime=100),
              video("ben", "play_video", 0, duration=100, currentTime=0),
              video("ben", "pause_video", 50, duration=100, currentTime=50),
              video("cy", "play_video", 0, duration=100, currentTime=60),
              video("cy", "pause_video", 36, duration=100, currentTime=96))
    row = s["videos"][(COURSE, "v1")]
    assert (row["users_at_start"], row["users_at_end"]) == (2, 2)  # ana and cy at 95-99


def test_both_id_forms_are_one_video_of_one_course(db: Engine, tmp_path: Path) -> None:
    old = "LearnX/T1/2025"
    s = stats(db, tmp_path,
              video("ana", "play_video", 0, vid="i4x-LearnX-T1-video-abc123", currentTime=0)
              .replace(COURSE, old),
              video("ana", "pause_video", 10, vid="abc123", currentTime=10))
    assert list(s["videos"]) == [(COURSE, "abc123")]
    assert s["users"][("abc123", "ana")]["watch_time"] == pytest.approx(10.0)
