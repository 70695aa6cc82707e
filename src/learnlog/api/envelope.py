"""The Sunbird envelope on every response, and the one handler mapping errors to it."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..domain.errors import Conflict, Forbidden, InvalidInput, LearnlogError, NotFound, Unauthorized

log = logging.getLogger(__name__)


class Params(BaseModel):
    """Envelope params: ids of the response and request, error code and message."""

    resmsgid: str
    msgid: str | None = None
    err: str | None = None
    status: str
    errmsg: str | None = None


class Envelope(BaseModel):
    """Every response of the viewer family has this shape (SPEC §4.1)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    ver: str = "v1"
    ts: str
    params: Params
    responseCode: str
    result: dict[str, Any]


def now_ts() -> str:
    """Sunbird's timestamp format: 2021-06-23 05:37:40:575+0000."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S:") + f"{now.microsecond // 1000:03d}+0000"


class EnvelopeResponse(Response):
    """JSON of an `Envelope`, serialised once by pydantic.

    Routes still declare `response_model=Envelope` (the OpenAPI contract); returning the
    serialised model spares FastAPI a second validation of what we just built.
    """

    media_type = "application/json"


def ok(api_id: str, result: dict[str, Any], msgid: str | None = None) -> EnvelopeResponse:
    """A success envelope."""
    body = Envelope(id=api_id, ts=now_ts(), params=Params(
        resmsgid=str(uuid.uuid4()), msgid=msgid, status="success"),
        responseCode="OK", result=result)
    return EnvelopeResponse(body.model_dump_json())


_STATUS: list[tuple[type[LearnlogError], int, str]] = [
    (InvalidInput, 400, "CLIENT_ERROR"),
    (Conflict, 409, "CLIENT_ERROR"),
    (NotFound, 404, "RESOURCE_NOT_FOUND"),
    (Unauthorized, 401, "UNAUTHORIZED"),
    (Forbidden, 403, "FORBIDDEN"),
]


def failed(api_id: str, status: int, response_code: str, code: str, message: str,
           field: str | None = None, msgid: str | None = None) -> JSONResponse:
    """An error envelope with its HTTP status."""
    result: dict[str, Any] = {} if field is None else {"field": field}
    body = Envelope(id=api_id, ts=now_ts(), params=Params(
        resmsgid=str(uuid.uuid4()), msgid=msgid, err=code, status="failed", errmsg=message),
        responseCode=response_code, result=result)
    return JSONResponse(body.model_dump(), status_code=status)


def api_id_of(request: Request) -> str:
    route = request.scope.get("route")
    name = getattr(route, "name", None)
    return name if isinstance(name, str) and name.startswith("api.") else "api.learnlog"


def error_response(request: Request, error: LearnlogError) -> JSONResponse:
    for kind, status, response_code in _STATUS:
        if isinstance(error, kind):
            return failed(api_id_of(request), status, response_code, error.code, error.message,
                          error.field)
    return failed(api_id_of(request), 500, "SERVER_ERROR", "INTERNAL_ERROR",
                  "Process failed, please try again later.")


# -- request validation → 400 naming the field -------------------------------------------

_SPECIAL_MISSING = {
    "request.userId": ("USERID_MISSING", "UserId is mandatory."),
    "request.contentId": ("CONTENT_ID_REQUIRED_ERROR", "Content id is mandatory."),
    "request.attemptId": ("ATTEMPT_ID_REQUIRED_ERROR", "Attempt id is mandatory."),
    "request.events": ("EVENTS_DATA_MISSING", "Events array is mandatory"),
    "request.assessments": ("EVENTS_DATA_MISSING", "Events array is mandatory"),
    "request.groupId": ("GROUP_ID_MISSING", "GroupId is mandatory."),
}
# Tags pydantic puts in error locations of unions; they are not field names.
TAGS = {"view.start", "view.update", "view.end", "assessment.submit", "event", "attempt",
        "str", "float", "int", "bool", "list", "dict", "none", "function-after"}


def body_field(path: str) -> str:
    """What a whole body is called in errors: `request` for the Sunbird family's wrapper,
    `body` for the Kolibri family (`/api/…`), whose bodies have no wrapper."""
    return "body" if path.startswith("/api/") else "request"


def field_path(loc: tuple[Any, ...], root: str = "request") -> str:
    """('body', 'request', 'events', 3, 'view.update', 'timespent') → request.events[3].timespent"""
    path = ""
    for part in loc:
        if part in ("body", "query", "path", "header") and not path:
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and (part in TAGS or "[" in part):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or root


def validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"type": "value_error", "loc": ("body",), "msg": "invalid"}
    root = body_field(request.url.path)
    field = field_path(tuple(first.get("loc", ())), root)
    kind = str(first.get("type", ""))
    api_id = api_id_of(request)
    if kind == "json_invalid":
        return failed(api_id, 400, "CLIENT_ERROR", "INVALID_JSON",
                      "The body is not valid JSON.", root)
    if kind == "missing":
        if field == root and len(tuple(first.get("loc", ()))) <= 1:
            if root == "body":
                return failed(api_id, 400, "CLIENT_ERROR", "MANDATORY_PARAMETER_MISSING",
                              "A JSON object body is mandatory.", root)
            return failed(api_id, 400, "CLIENT_ERROR", "MANDATORY_PARAMETER_MISSING",
                          "A JSON body {\"request\": {...}} is mandatory.", "request")
        # The Sunbird codes name a field wherever it sits (request.events[3].userId too).
        code, message = _SPECIAL_MISSING.get(
            "request." + field.rsplit(".", 1)[-1],
            ("MANDATORY_PARAMETER_MISSING", f"Mandatory parameter {field} is missing."))
        return failed(api_id, 400, "CLIENT_ERROR", code, message, field)
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        # A discriminated union names its tag field (events' `type`) in the context.
        context = first.get("ctx")
        tag = str(context.get("discriminator", "'type'") if isinstance(context, dict)
                  else "type").strip("'")
        field = f"{field}.{tag}"
        if kind == "union_tag_not_found":
            return failed(api_id, 400, "CLIENT_ERROR", "MANDATORY_PARAMETER_MISSING",
                          f"Mandatory parameter {field} is missing.", field)
        given = first.get("input")
        if isinstance(given, dict) and not isinstance(given.get(tag), str):
            return failed(api_id, 400, "CLIENT_ERROR", "DATA_TYPE_ERROR",
                          f"Data type of {field} is wrong: it must be a string.", field)
        return failed(api_id, 400, "CLIENT_ERROR", "INVALID_PARAMETER_VALUE",
                      f"Invalid value of {field}: {first.get('msg', '')}.", field)
    if kind == "extra_forbidden":
        return failed(api_id, 400, "CLIENT_ERROR", "UNKNOWN_FIELD",
                      f"Unknown field {field}: remove it.", field)
    if kind.endswith("_type"):
        return failed(api_id, 400, "CLIENT_ERROR", "DATA_TYPE_ERROR",
                      f"Data type of {field} is wrong: {first.get('msg', '')}.", field)
    return failed(api_id, 400, "CLIENT_ERROR", "INVALID_PARAMETER_VALUE",
                  f"Invalid value of {field}: {first.get('msg', '')}.", field)


def http_exception_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    if status == 404:
        return failed("api.learnlog", 404, "RESOURCE_NOT_FOUND", "NOT_FOUND",
                      f"No route {request.method} {request.url.path}.")
    if status == 405:
        return failed("api.learnlog", 405, "CLIENT_ERROR", "METHOD_NOT_ALLOWED",
                      f"{request.method} is not allowed on {request.url.path}.")
    if status == 413:
        return failed(api_id_of(request), 400, "CLIENT_ERROR", "REQUEST_TOO_LARGE",
                      str(exc.detail), body_field(request.url.path))
    if status in (400, 422):
        # The framework's own body parse failures (not UTF-8, nested too deep).
        return failed(api_id_of(request), 400, "CLIENT_ERROR", "INVALID_JSON",
                      "The body is not valid JSON.", body_field(request.url.path))
    if status < 500:
        return failed(api_id_of(request), status, "CLIENT_ERROR", "CLIENT_ERROR",
                      str(exc.detail))
    return failed(api_id_of(request), 500, "SERVER_ERROR", "INTERNAL_ERROR",
                  "Process failed, please try again later.")


def unexpected_response(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return failed(api_id_of(request), 500, "SERVER_ERROR", "INTERNAL_ERROR",
                  "Process failed, please try again later.")
