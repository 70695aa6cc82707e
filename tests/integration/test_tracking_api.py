"""The stats API over ingested tracking logs (SPEC §6): exact response shapes, course staff
only (bearer token or Open edX's split JWT cookie), bad queries named in a 400."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime
from tests.support import Api
from tests.tracking import edx_logs, run

OLD = "edX/DemoX/Demo_Course"
DEMO = "course-v1:edX+DemoX+Demo_Course"
VID = "3cb54a11efae4ccc8a0aade24d14b255"


@pytest.fixture
def ingested(api: Api, runtime: Runtime, tmp_path: Path) -> Api:
    run(runtime.engine, tmp_path / "store", [edx_logs() / "video_timeline.log"])
    return api


def get(api: Api, path: str, status: int = 200, **kw: Any) -> Any:
    response = api.client.get(path, **kw)
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def bearer(token: str) -> dict[str, Any]:
    return {"headers": {"Authorization": f"Bearer {token}"}}


def test_timeline_and_videos_have_the_shapes_of_the_spec(ingested: Api) -> None:
    # The course id as the caller wrote it (old form) and the video id in its i4x form.
    found = get(ingested, f"/api/stats/timeline?course_id={quote(OLD)}&video_id="
                f"i4x-edX-DemoX-video-{VID}", **bearer(ingested.token))
    assert found == {
        "course_id": OLD, "video_id": VID, "duration": None, "segment_seconds": 5,
        "users_at_start": 2, "users_at_end": 2, "total_viewed_seconds": 60,
        "segments": [{"segment": 0, "num_users": 2, "num_views": 2},
                     {"segment": 1, "num_users": 2, "num_views": 3},
                     {"segment": 2, "num_users": 1, "num_views": 2},
                     {"segment": 3, "num_users": 2, "num_views": 2},
                     {"segment": 4, "num_users": 2, "num_views": 3}]}
    videos = get(ingested, f"/api/stats/videos?course_id={quote(DEMO)}",
                 **bearer(ingested.token))
    assert videos["course_id"] == DEMO
    assert [v["video_id"] for v in videos["videos"]] == [
        VID, "8c0028eb2a724f48a074bc184cd8635f"]
    row = videos["videos"][0]
    assert set(row) == {"video_id", "duration", "viewers", "watch_time",
                        "completed_viewers", "avg_coverage"}
    assert (row["viewers"], row["completed_viewers"], row["duration"]) == (3, 0, None)
    assert row["watch_time"] == pytest.approx(48.523242)
    # One viewer's figures.
    one = get(ingested, f"/api/stats/videos?course_id={quote(DEMO)}&user=dummy_username_2",
              **bearer(ingested.token))
    assert [(v["video_id"], v["viewers"], v["watch_time"]) for v in one["videos"]] == [
        (VID, 1, pytest.approx(9.9))]


def test_only_the_course_staff_may_read_and_a_cookie_works_like_a_bearer(
        ingested: Api, runtime: Runtime) -> None:
    path = f"/api/stats/videos?course_id={quote(DEMO)}"
    secret = runtime.secret
    learner = mint(secret, "dummy_username_1", ["learner"])
    assert get(ingested, path, 403, **bearer(learner))["params"]["err"] == "FORBIDDEN"
    get(ingested, path, 401)  # nobody
    # A coach of a group that has the course as an activity may read, with either form
    # of its id.
    ingested.call("PUT", "/v1/groups/g1", {"request": {"kind": "group", "name": "Demo"}})
    ingested.call("PUT", "/v1/groups/g1/members/cora", {"request": {"role": "coach"}})
    ingested.call("PUT", f"/v1/groups/g1/activities/Collection/{DEMO}")
    coach = mint(secret, "cora", ["learner"])
    assert get(ingested, path, **bearer(coach))["videos"]
    assert get(ingested, f"/api/stats/videos?course_id={quote(OLD)}", **bearer(coach))[
        "videos"]
    get(ingested, "/api/stats/videos?course_id=course-v1:Other+X+1", 403, **bearer(coach))
    # The Open edX split cookie: header.payload in one cookie, the signature in the other.
    head, payload, signature = coach.split(".")
    ingested.client.cookies.set("edx-jwt-cookie-header-payload", f"{head}.{payload}")
    ingested.client.cookies.set("edx-jwt-cookie-signature", signature)
    try:
        assert get(ingested, path)["videos"]
        ingested.client.cookies.set("edx-jwt-cookie-signature", signature[:-4] + "AAAA")
        get(ingested, path, 401)
    finally:
        ingested.client.cookies.clear()
    # An Open edX token of a global admin (`administrator`), its user in preferred_username.
    import jwt

    edx = jwt.encode({"sub": "a1b2", "preferred_username": "staff", "administrator": True},
                     secret, algorithm="HS256")
    assert get(ingested, path, **bearer(edx))["videos"]


@pytest.mark.parametrize(("query", "field", "status"), [
    ("", "course_id", 400),
    ("course_id=", "course_id", 400),
    (f"course_id={quote(DEMO)}&start=2024-01-01", "start", 400),
    (f"course_id={quote(DEMO)}&course_id=x", "course_id", 400),
    ("course_id=a%07b", "course_id", 400),
    (f"course_id={quote(DEMO)}&=x", "query", 400),
], ids=["missing", "empty", "unknown filter", "twice", "unprintable", "no name"])
def test_a_bad_query_is_a_400_naming_the_parameter(
        ingested: Api, query: str, field: str, status: int) -> None:
    found = get(ingested, f"/api/stats/videos?{query}", status, **bearer(ingested.token))
    assert found["result"]["field"] == field


def test_a_timeline_needs_a_recorded_video(ingested: Api) -> None:
    base = f"/api/stats/timeline?course_id={quote(DEMO)}"
    assert "video_id" in get(ingested, base, 400, **bearer(ingested.token))["params"]["errmsg"]
    get(ingested, f"{base}&video_id=nothing", 404, **bearer(ingested.token))
