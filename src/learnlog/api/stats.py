"""Stats API (SPEC §6): `GET /api/stats/{times|visits|videos|timeline|problems|activity}
?course_id=…` over the statistics
`learnlog logs ingest` computed from Open edX tracking logs.

Plain JSON in the shapes of SPEC §6 (not the Sunbird envelope). The caller authenticates
with a bearer token or Open edX's split JWT cookies (`edx-jwt-cookie-header-payload` and
`edx-jwt-cookie-signature`); only the course's staff may read: admins of the dataset and
coaches or admins of a group that has the course as an activity. A learner may not.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from ..domain.dates import in_order, is_day
from ..domain.errors import InvalidInput
from ..domain.ids import check_id
from ..domain.tracking import course_id, video_id
from ..service import stats as svc
from .access import may_read_course_stats
from .auth import Principal
from .common import authenticator, runtime

router = APIRouter()
HELP = {"course_id": "the course: course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN",
        "video_id": "the video: its hash, or an i4x-… or block-v1:… id",
        "user": "one user's rows (a username)", "unit": "one unit's rows",
        "start": "from this day on (YYYY-MM-DD, UTC)",
        "end": "up to this day (YYYY-MM-DD, UTC, inclusive)"}
FILTERS = {"videos": {"course_id", "user"}, "timeline": {"course_id", "video_id"},
           "times": {"course_id", "user", "unit", "start", "end"},
           "visits": {"course_id", "user", "unit", "start", "end"},
           "problems": {"course_id", "user", "start", "end"},
           "activity": {"course_id", "start", "end"}}


def _documented(route: str) -> dict[str, Any]:
    """The route's query parameters for the OpenAPI document (read by `_params`)."""
    mandatory = {"course_id"} | ({"video_id"} if route == "timeline" else set())
    return {"parameters": [
        {"name": name, "in": "query", "required": name in mandatory,
         "description": HELP[name], "schema": {"type": "string", "minLength": 1}}
        for name in sorted(FILTERS[route], key=lambda n: (n not in mandatory, n))]}


def _caller(request: Request) -> Principal:
    auth = authenticator(request)
    header = request.headers.get("authorization")
    if header:
        return auth.authenticate(header)
    return auth.authenticate_cookies(dict(request.cookies))


def _params(request: Request, route: str) -> dict[str, str]:
    """The query, checked: known names only, each once and not empty."""
    out: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in FILTERS[route]:
            raise InvalidInput(f"{name!r} is not a parameter of /api/stats/{route} (it "
                               f"takes {', '.join(sorted(FILTERS[route]))}).",
                               code="INVALID_PARAMETER", field=name or "query")
        if name in out:
            raise InvalidInput(f"{name} is given twice.", code="INVALID_PARAMETER",
                               field=name)
        check_id(value, name, unicode_printable=True)
        out[name] = value
    if "course_id" not in out:
        raise InvalidInput("course_id is mandatory.", code="MISSING_PARAMETER",
                           field="course_id")
    for name in ("start", "end"):
        if name in out and not is_day(out[name], week_form=True):
            raise InvalidInput(f"{name} must be a date, YYYY-MM-DD.",
                               code="INVALID_PARAMETER_VALUE", field=name)
    if not in_order(out.get("start", ""), out.get("end", "9999-12-31")):
        raise InvalidInput("start must not be after end.", code="INVALID_PARAMETER_VALUE",
                           field="start")
    return out


async def _course(request: Request, route: str) -> tuple[Principal, dict[str, str], str]:
    """The caller (course staff only), the query and the course's stored id."""
    principal = _caller(request)
    query = _params(request, route)
    course = course_id(query["course_id"]) or ""
    await may_read_course_stats(runtime(request), principal,
                                sorted({course, query["course_id"].strip()}))
    return principal, query, course


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@router.get("/api/stats/videos", name="api.stats.videos",
            openapi_extra=_documented("videos"))
async def stats_videos(request: Request) -> Response:
    """Per video of the course: duration (null if unknown), viewers, watch time (every
    viewing counts), viewers who completed it (coverage ≥ 0.9) and the average coverage.
    `user=` gives one viewer's figures."""
    principal, query, course = await _course(request, "videos")
    return _json(await runtime(request).read(lambda conn: svc.videos(
        conn, principal.dataset, course, query["course_id"], query.get("user"))))


@router.get("/api/stats/timeline", name="api.stats.timeline",
            openapi_extra=_documented("timeline"))
async def stats_timeline(request: Request) -> Response:
    """A video's 5-second timeline (segments with at least one view, ascending), its
    audience at the start and at the end, and the total seconds viewed."""
    principal, query, course = await _course(request, "timeline")
    if "video_id" not in query:
        raise InvalidInput("video_id is mandatory.", code="MISSING_PARAMETER",
                           field="video_id")
    video = video_id(query["video_id"]) or ""
    return _json(await runtime(request).read(lambda conn: svc.timeline(
        conn, principal.dataset, course, query["course_id"], video)))


async def _rows(request: Request, route: str, read: Any) -> Response:
    principal, query, course = await _course(request, route)
    return _json(await runtime(request).read(lambda conn: read(
        conn, principal.dataset, course, query["course_id"], query)))


@router.get("/api/stats/times", name="api.stats.times",
            openapi_extra=_documented("times"))
async def stats_times(request: Request) -> Response:
    """Time on page: seconds per (user, unit, day) and the sessions they span. Filters:
    user, unit, start and end (days, inclusive)."""
    return await _rows(request, "times", svc.times)


@router.get("/api/stats/visits", name="api.stats.visits",
            openapi_extra=_documented("visits"))
async def stats_visits(request: Request) -> Response:
    """Navigation events into each unit per (user, unit, day). Filters: user, unit,
    start, end."""
    return await _rows(request, "visits", svc.visits)


@router.get("/api/stats/problems", name="api.stats.problems",
            openapi_extra=_documented("problems"))
async def stats_problems(request: Request) -> Response:
    """Server problem_check attempts per (user, problem, day) with the grade and max grade
    of the day's last one. Filters: user, start, end."""
    return await _rows(request, "problems", svc.problems)


@router.get("/api/stats/activity", name="api.stats.activity",
            openapi_extra=_documented("activity"))
async def stats_activity(request: Request) -> Response:
    """Distinct users per week (Monday 00:00 UTC to the next Monday): ACTIVE,
    PLAYED_VIDEO, ATTEMPTED_PROBLEM, POSTED_FORUM; weeks with any activity, ascending."""
    return await _rows(request, "activity", svc.activity)

