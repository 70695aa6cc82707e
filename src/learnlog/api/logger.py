"""The logger family (SPEC §4.3, Kolibri's `/api/logger/`): sessions tracked by id.

Bodies and answers use Kolibri's field names and plain JSON; errors use the same
envelope as every learnlog route (a stable code and the field it concerns).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response

from ..domain import mastery
from ..domain.errors import InvalidInput
from ..domain.ids import check_id, is_visitor_id
from ..service import logger as svc
from ..service import logs, visitors
from ..service import usersessions as user_svc
from ..service.viewer import Keys
from . import models as m
from . import structs as s
from .access import listed_user, may_read
from .common import caller, lean_caller, runtime
from .lean import Answer, Call, LeanRoute, route

router = APIRouter(prefix="/api/logger")
DEFAULT_DATASET = "default"  # anonymous visitors write into the default dataset
VISITOR_COOKIE = "visitor_id"
VISITOR_COOKIE_AGE = 365 * 24 * 3600


def _json(data: object) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


@router.post("/trackprogress/", name="api.logger.trackprogress.start", response_model=m.TrackState)
async def start_session(request: Request,
                        body: Annotated[m.TrackStart, Body()]) -> Response:
    """Start a session of the caller on a content (the summary is created when absent).

    `repeat: true` starts over: the summary's progress goes back to 0 (its time and first
    completion are kept). An exercise (`kind: exercise`) needs a `mastery_model`; its
    session works on a try (the open one, or a new one after a completed try and
    `repeat`), and the answer adds the try's criterion, past attempts and count."""
    content_id, kind, criterion = _what(body)
    if _visitor(request):
        return await _start_visit(request, content_id, kind, criterion)
    principal = caller(request, write=True)
    keys = Keys(principal.dataset, principal.user_id, content_id, body.collection_id,
                body.context_id)
    result = await runtime(request).writer.submit(
        svc.StartTracking(keys, body.repeat, kind, criterion))
    return _json(result)


def _visitor(request: Request) -> bool:
    """A caller without a token is an anonymous visitor when the instance allows it."""
    return ("authorization" not in request.headers
            and runtime(request).settings.allow_anonymous_logs)


async def _start_visit(request: Request, content_id: str, kind: str,
                       criterion: mastery.Criterion | None) -> Response:
    """A visitor's session, under the visitor id of its cookie (set when absent)."""
    visitor_id = request.cookies.get(VISITOR_COOKIE, "")
    if not is_visitor_id(visitor_id):
        visitor_id = uuid.uuid4().hex
    response = _json(await runtime(request).writer.submit(visitors.StartVisit(
        DEFAULT_DATASET, visitor_id, content_id, kind, criterion)))
    response.set_cookie(VISITOR_COOKIE, visitor_id, max_age=VISITOR_COOKIE_AGE,
                        httponly=True, samesite="lax")
    return response


def _what(body: m.TrackStart) -> tuple[str, str, mastery.Criterion | None]:
    """The content, kind and criterion a start names: a coach quiz by `quiz_id` alone
    (its content id is the quiz id), else `content_id` and `kind` (and an exercise's
    `mastery_model`)."""
    if body.quiz_id is not None:
        for value, name in ((body.content_id, "content_id"),
                            (body.mastery_model, "mastery_model")):
            if value is not None:
                raise InvalidInput(f"A quiz is started by quiz_id alone: drop {name}.",
                                   code="CONFLICTING_FIELDS", field=name)
        if body.kind not in (None, "quiz"):
            raise InvalidInput("A quiz session has kind quiz.",
                               code="CONFLICTING_FIELDS", field="kind")
        return body.quiz_id, "quiz", mastery.COACH_QUIZ
    if body.kind == "quiz":
        raise InvalidInput("A coach quiz is started with quiz_id.",
                           code="MANDATORY_PARAMETER_MISSING", field="quiz_id")
    for value, name in ((body.content_id, "content_id"), (body.kind, "kind")):
        if value is None:
            raise InvalidInput(f"{name} is mandatory (or quiz_id for a quiz).",
                               code="MANDATORY_PARAMETER_MISSING", field=name)
    assert body.content_id is not None and body.kind is not None
    model = None if body.mastery_model is None else body.mastery_model.model_dump(
        exclude_none=True)
    return body.content_id, body.kind, mastery.criterion_for(body.kind, model)


LEAN: list[LeanRoute] = []  # the hot routes of this family (lean.py serves them)


@route(LEAN, "PUT", "/api/logger/trackprogress/{session_id}/",
       "api.logger.trackprogress.update", s.TrackUpdate,
       {"$ref": "#/components/schemas/TrackResult"})
async def update_session(call: Call) -> Answer:
    """Add progress (`progress_delta`, or an absolute `progress` that never lowers it),
    time (`time_spent_delta`) and `extra_fields` (replaced whole) to one of your sessions.
    An exercise session takes `interactions`; the server decides mastery and progress."""
    body: s.TrackUpdate = call.body
    session_id = call.params["session_id"]
    check_id(session_id, "session_id")
    if body.progress_delta is not None and body.progress is not None:
        raise InvalidInput("Send progress_delta or progress, not both.",
                           code="CONFLICTING_FIELDS", field="progress")
    if body.extra_fields is not None:
        s.storable(body.extra_fields, "extra_fields")
    rt = call.runtime
    if call.header(b"authorization") is None and rt.settings.allow_anonymous_logs:
        return _answer(await rt.writer.submit(visitors.TrackVisit(
            DEFAULT_DATASET, session_id, body.progress_delta, body.progress,
            body.time_spent_delta, body.extra_fields, bool(body.interactions))))
    principal = lean_caller(call, write=True)
    interactions = None if body.interactions is None else tuple(
        _interaction(i, given) for i, given in enumerate(body.interactions))
    return _answer(await rt.writer.submit(svc.TrackProgress(
        principal.dataset, principal.user_id, session_id, body.progress_delta, body.progress,
        body.time_spent_delta, body.extra_fields, interactions)))


def _answer(data: object) -> Answer:
    return Answer(orjson.dumps(data))


def _interaction(index: int, given: s.InteractionIn) -> mastery.Interaction:
    if given.answer is None and not given.error:
        raise InvalidInput("An interaction needs an answer unless it is an error.",
                           code="MANDATORY_PARAMETER_MISSING",
                           field=f"interactions[{index}].answer")
    if given.answer is not None:
        s.storable(given.answer, f"interactions[{index}].answer")
    return mastery.Interaction(
        item=given.item, correct=given.correct, time_spent=given.time_spent,
        attempt_id=given.id, complete=given.complete, answer=given.answer,
        simple_answer=given.simple_answer, error=given.error, hinted=given.hinted,
        replace=given.replace)


def _listing(kind: str) -> Any:
    async def listing(
        request: Request,
        user_id: Annotated[str | None, Query(description="only this learner")] = None,
        content_id: Annotated[str | None, Query(description="only this content")] = None,
        group_id: Annotated[str | None, Query(
            description="only members of this group (and of its learner groups)")] = None,
        dataset: Annotated[str | None, Query(
            description="the caller's dataset (another one is refused)")] = None,
        start: Annotated[str | None, Query(
            description="ISO 8601 date or date-time (UTC unless given): from this time on",
            max_length=64)] = None,
        end: Annotated[str | None, Query(
            description="ISO 8601 date or date-time: before this time", max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(
            description="`next` of the previous page", max_length=4096)] = None,
    ) -> Response:
        principal = caller(request, write=False)
        for value, name in ((user_id, "user_id"), (content_id, "content_id"),
                            (group_id, "group_id"), (dataset, "dataset")):
            if value is not None:
                check_id(value, name)
        user_id = await listed_user(runtime(request), principal, user_id, group_id, dataset)
        query = logs.LogQuery(
            principal.dataset, user_id, content_id, group_id,
            None if start is None else logs.parse_time(start, "start"),
            None if end is None else logs.parse_time(end, "end"), limit, cursor)
        return _json(await runtime(request).read(lambda conn: logs.page(conn, kind, query)))
    listing.__doc__ = (f"List {kind} rows you may read (your own; a group's members' with "
                       "`group_id` if you coach it; an admin's whole dataset), oldest key "
                       "first, a page at a time: pass `next` as `cursor`.")
    return listing


for _kind in logs.LISTINGS:
    router.add_api_route(f"/{_kind}/", _listing(_kind), methods=["GET"],
                         name=f"api.logger.{_kind}", response_model=m.LogPage)


@router.get("/userprogress/{user_id}/", name="api.logger.userprogress",
            response_model=m.UserProgress)
async def user_progress(request: Request, user_id: str) -> Response:
    """The learner's total progress: completed contents, and an exercise's completed tries."""
    principal = caller(request, write=False)
    check_id(user_id, "user_id")
    await may_read(runtime(request), principal, user_id, "user_id")
    total = await runtime(request).read(
        lambda conn: logs.user_progress(conn, principal.dataset, user_id))
    return _json({"id": user_id, "progress": total})


@router.put("/usersessionlog/heartbeat/", name="api.logger.heartbeat",
            response_model=m.HeartbeatOut)
async def heartbeat(request: Request, body: Annotated[m.HeartbeatIn, Body()]) -> Response:
    """The caller's app is open: extend its user session (last interaction at most 5
    minutes ago) or start one, recording the device from the User-Agent, the page and the
    channel. An inactive heartbeat records nothing."""
    principal = caller(request, write=True)
    if not body.active:
        return _json({"session_id": None, "started": False, "device_info": None})
    device = user_svc.device_info(request.headers.get("user-agent"))
    return _json(await runtime(request).writer.submit(user_svc.Heartbeat(
        principal.dataset, principal.user_id, device, body.page, body.channel_id)))
