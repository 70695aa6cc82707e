"""The 5-second timeline (SPEC §6) is counted at the points where its figures change
(`pipelines.timeline`); on any viewings it must equal the rule read literally: every
viewing adds one view and its user to each segment from int(start)//5 to int(end)//5."""

from __future__ import annotations

import ibis
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from learnlog.analytics.pipelines import timeline

viewing = st.tuples(st.sampled_from(["v1", "v2"]), st.sampled_from(["ana", "bo", "cy"]),
                    st.floats(0, 120), st.floats(0, 60))


def literal(views: list[tuple[str, str, float, float]]) -> dict[tuple[str, int], tuple[int, int]]:
    """{(video, segment): (views, users)} segment by segment."""
    seen: dict[tuple[str, int], list[str]] = {}
    for video, user, start, end in views:
        for segment in range(int(start) // 5, int(end) // 5 + 1):
            seen.setdefault((video, segment), []).append(user)
    return {key: (len(users), len(set(users))) for key, users in seen.items()}


@settings(max_examples=60, deadline=None)
@given(st.lists(viewing, max_size=12))
def test_the_timeline_equals_the_rule_segment_by_segment(
        drawn: list[tuple[str, str, float, float]]) -> None:
    views = [(video, user, start, start + length) for video, user, start, length in drawn]
    con = ibis.duckdb.connect()
    try:
        table = con.create_table("views", pa.table({
            "course_id": pa.array(["c"] * len(views), pa.string()),
            "video_id": pa.array([v[0] for v in views], pa.string()),
            "username": pa.array([v[1] for v in views], pa.string()),
            "start": pa.array([v[2] for v in views], pa.float64()),
            "end": pa.array([v[3] for v in views], pa.float64())}))
        found = timeline(table).to_pyarrow().to_pylist()
    finally:
        con.disconnect()
    assert {(r["video_id"], r["segment"]): (r["num_views"], r["num_users"])
            for r in found} == literal(views)
    assert len(found) == len(literal(views))  # one row per segment
