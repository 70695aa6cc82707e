"""The id forms and timeline rules of tracking-log analytics (SPEC §6), by hand."""

from __future__ import annotations

import pytest

from learnlog.domain.tracking import course_id, end_segment, users_at_end, video_id

pytestmark = pytest.mark.unit

COURSES = [
    ("edX/DemoX/Demo_Course", "course-v1:edX+DemoX+Demo_Course"),
    ("course-v1:edX+DemoX+Demo_Course", "course-v1:edX+DemoX+Demo_Course"),
    ("  course-v1:edX+DemoX+Test_2014\n", "course-v1:edX+DemoX+Test_2014"),
    ("", None),
    ("   ", None),
    (None, None),
    ("a/b", "a/b"),  # not a course id of either form: kept as it is
]
VIDEOS = [
    ("i4x-edX-DemoX-video-3cb54a11efae4ccc8a0aade24d14b255",
     "3cb54a11efae4ccc8a0aade24d14b255"),
    ("3cb54a11efae4ccc8a0aade24d14b255", "3cb54a11efae4ccc8a0aade24d14b255"),
    ("\n0b9e39477cf34507a7a48f74be381fdd", "0b9e39477cf34507a7a48f74be381fdd"),
    ("block-v1:edX+DemoX+Demo_Course+type@video+block@0b9e39477cf34507a7a48f74be381fdd",
     "0b9e39477cf34507a7a48f74be381fdd"),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "expected"), COURSES)
def test_both_course_id_forms_become_one(raw: str | None, expected: str | None) -> None:
    assert course_id(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), VIDEOS)
def test_video_ids_become_their_bare_hash(raw: str | None, expected: str | None) -> None:
    assert video_id(raw) == expected


def test_the_end_segment_is_30_s_or_5_percent_before_the_end() -> None:
    assert end_segment(444.0) == 84  # max(414, 421.8) = 421.8 → 421 // 5
    assert end_segment(1000.0) == 194  # max(970, 950) = 970 → 970 // 5
    assert end_segment(10.0) == 1  # max(-20, 9.5) → 9 // 5
    assert end_segment(0.0) == 0


def test_users_at_end_with_a_known_duration_read_the_end_segment() -> None:
    segments = [(0, 10), (83, 4), (84, 3)]
    assert users_at_end(segments, 444.0) == 3
    assert users_at_end(segments, 1000.0) == 0  # nobody reached segment 194


def test_users_at_end_without_a_duration_stop_where_the_audience_falls_away() -> None:
    # 40 → 30 → 20 → 1: 1 is 5 % of 20, so the audience ended at segment 2 (20 users).
    assert users_at_end([(0, 40), (1, 30), (2, 20), (3, 1), (4, 1)], None) == 20
    # 40 → 3: 3 > 5 % of 40 (2), so it goes on; then nothing after segment 2.
    assert users_at_end([(0, 40), (1, 3), (2, 3)], None) == 3
    # A gap (segment 1 unwatched) ends it at segment 0.
    assert users_at_end([(0, 2), (2, 2)], None) == 2
    assert users_at_end([(3, 5), (4, 5)], None) == 5  # starts at the first watched segment
    assert users_at_end([], None) == 0
    assert users_at_end([], 100.0) == 0
