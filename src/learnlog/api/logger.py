"""The logger family (SPEC §4.3, Kolibri's `/api/logger/`): sessions tracked by id.

Bodies and answers use Kolibri's field names and plain JSON; errors use the same
envelope as every learnlog route (a stable code and the field it concerns).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response

from ..domain.errors import InvalidInput
from ..service import logger as svc
from ..service.viewer import Keys
from . import models as m
from .viewer import caller, check_id, runtime

router = APIRouter(prefix="/api/logger")


def _json(data: object) -> Response:
    import orjson

    return Response(orjson.dumps(data), media_type="application/json")


@router.post("/trackprogress/", name="api.logger.trackprogress.start", response_model=m.TrackState)
async def start_session(request: Request,
                        body: Annotated[m.TrackStart, Body()]) -> Response:
    """Start a session of the caller on a content (the summary is created when absent).

    `repeat: true` starts over: the summary's progress goes back to 0 (its time and first
    completion are kept)."""
    principal = caller(request, write=True)
    keys = Keys(principal.dataset, principal.user_id, body.content_id, body.collection_id,
                body.context_id)
    result = await runtime(request).writer.submit(svc.StartTracking(keys, body.repeat))
    return _json(result)


@router.put("/trackprogress/{session_id}/", name="api.logger.trackprogress.update",
            response_model=m.TrackResult)
async def update_session(request: Request, session_id: str,
                         body: Annotated[m.TrackUpdate, Body()]) -> Response:
    """Add progress (`progress_delta`, or an absolute `progress` that never lowers it),
    time (`time_spent_delta`) and `extra_fields` (replaced whole) to one of your sessions."""
    principal = caller(request, write=True)
    check_id(session_id, "session_id")
    if body.progress_delta is not None and body.progress is not None:
        raise InvalidInput("Send progress_delta or progress, not both.",
                           code="CONFLICTING_FIELDS", field="progress")
    result = await runtime(request).writer.submit(svc.TrackProgress(
        principal.dataset, principal.user_id, session_id, body.progress_delta, body.progress,
        body.time_spent_delta, body.extra_fields))
    return _json(result)
