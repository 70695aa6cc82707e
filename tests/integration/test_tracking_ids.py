"""The id rules run twice: in Python (`domain.tracking`, for API queries) and as Ibis
expressions inside the engines (`analytics.pipelines`, for the logs). They must agree on
every form the logs use (readers trim whitespace before the expressions see a value)."""

from __future__ import annotations

import ibis
import pyarrow as pa

from learnlog.analytics.pipelines import course_expr, video_expr
from learnlog.domain.tracking import course_id, video_id

COURSES = ["edX/DemoX/Demo_Course", "course-v1:edX+DemoX+Demo_Course", "course-v1:a+b+c",
           "", "a/b", "a/b/c/d", "x+y/z/w", "org/course/run", "MITx/6.002x/2012_Fall",
           "ccx-v1:edX+DemoX+Demo_Course+ccx@3"]
VIDEOS = ["i4x-edX-DemoX-video-3cb54a11efae4ccc8a0aade24d14b255",
          "3cb54a11efae4ccc8a0aade24d14b255", "0b9e39477cf34507a7a48f74be381fdd",
          "block-v1:edX+DemoX+Demo_Course+type@video+block@0b9e39477cf34507a7a48f74be381fdd",
          "block-v1:edX+DemoX+Demo_Course+type@html+block@abc", "i4x-edX-DemoX-video-", "",
          "i4x-MITx-6.002x-video-Welcome", "html5"]


def test_the_engine_expressions_equal_the_domain_functions() -> None:
    con = ibis.duckdb.connect()
    try:
        t = con.create_table("ids", pa.table({
            "course": pa.array(COURSES + [""] * (len(VIDEOS) - len(COURSES))),
            "video": pa.array(VIDEOS + [""] * (len(COURSES) - len(VIDEOS)))}))
        found = t.select(c=course_expr(t.course), v=video_expr(t.video)
                         ).to_pyarrow().to_pylist()
    finally:
        con.disconnect()
    for raw, row in zip(COURSES, found, strict=False):
        assert row["c"] == course_id(raw), raw
    for raw, row in zip(VIDEOS, found, strict=False):
        assert row["v"] == video_id(raw), raw
