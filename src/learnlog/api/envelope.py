"""The Sunbird envelope (the answers of the Sunbird-style routes, and of any error a route
raises), and the one handler mapping errors to it."""

from __future__ import annotations

import logging
import random
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LearnlogError,
    NotFound,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)


class Params(BaseModel):
    """Envelope params: ids of the response and request, error code and message."""

    resmsgid: str
    msgid: str | None = None
    err: str | None = None
    status: str
    errmsg: str | None = None


class Envelope(BaseModel):
    """Sunbird's response shape (SPEC §4.1): the answers of the viewer, identity and
    group-aggregate routes (a summary download's file aside), and the answer to an error
    raised on any route."""

    model_config = ConfigDict(extra="forbid")

    id: str
    ver: str = "v1"
    ts: str
    params: Params
    responseCode: str
    result: dict[str, Any]


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def now_ts() -> str:
    """Sunbird's timestamp format: 2021-06-23 05:37:40:575+0000 (the date and time are
    formatted once a second; every response adds its milliseconds)."""
    ms = time.time_ns() // 1_000_000
    second, millis = divmod(ms, 1000)
    if second != _second[0]:
        _second[1] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S:")
        _second[0] = second
    return f"{_second[1]}{millis:03d}+0000"


def message_id() -> str:
    """A response's `resmsgid`: a random UUID (version 4) from the process's generator;
    it names a response, so it needs to be unique, not secret."""
    bits = (random.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) \
        | (0x8000 << 48)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class EnvelopeResponse(Response):
    """JSON of an `Envelope`, encoded once (orjson).

    Routes still declare `response_model=Envelope` (the OpenAPI contract); returning the
    serialised model spares FastAPI a second validation of what we just built.
    """

    media_type = "application/json"


def _envelope(api_id: str, response_code: str, result: dict[str, Any], msgid: str | None,
              err: str | None = None, errmsg: str | None = None) -> bytes:
    """The JSON of an `Envelope`, encoded once (orjson), for both edges."""
    return orjson.dumps({
        "id": api_id, "ver": "v1", "ts": now_ts(),
        "params": {"resmsgid": message_id(), "msgid": msgid, "err": err,
                   "status": "success" if err is None else "failed", "errmsg": errmsg},
        "responseCode": response_code, "result": result})


def ok_bytes(api_id: str, result: dict[str, Any], msgid: str | None = None) -> bytes:
    """A success envelope's JSON."""
    return _envelope(api_id, "OK", result, msgid)


def ok(api_id: str, result: dict[str, Any], msgid: str | None = None) -> EnvelopeResponse:
    """A success envelope."""
    return EnvelopeResponse(ok_bytes(api_id, result, msgid))


_STATUS: list[tuple[type[LearnlogError], int, str]] = [
    (InvalidInput, 400, "CLIENT_ERROR"),
    (Conflict, 409, "CLIENT_ERROR"),
    (NotFound, 404, "RESOURCE_NOT_FOUND"),
    (Unauthorized, 401, "UNAUTHORIZED"),
    (Forbidden, 403, "FORBIDDEN"),
    (Unavailable, 503, "SERVICE_UNAVAILABLE"),
]


def failed_bytes(api_id: str, response_code: str, code: str, message: str,
                 field: str | None = None, msgid: str | None = None) -> bytes:
    """An error envelope's JSON (`result.field` names the field when there is one)."""
    return _envelope(api_id, response_code, {} if field is None else {"field": field}, msgid,
                     code, message)


def failed(api_id: str, status: int, response_code: str, code: str, message: str,
           field: str | None = None, msgid: str | None = None) -> Response:
    """An error envelope with its HTTP status."""
    return EnvelopeResponse(failed_bytes(api_id, response_code, code, message, field, msgid),
                            status_code=status)


def error_body(api_id: str, error: LearnlogError) -> tuple[int, bytes]:
    """The status and envelope of a domain error."""
    for kind, status, response_code in _STATUS:
        if isinstance(error, kind):
            return status, failed_bytes(api_id, response_code, error.code, error.message,
                                        error.field)
    return unexpected_body(api_id)


def unexpected_body(api_id: str) -> tuple[int, bytes]:
    """The status and envelope of a bug: nothing about it leaks to the caller."""
    return 500, failed_bytes(api_id, "SERVER_ERROR", "INTERNAL_ERROR",
                             "Process failed, please try again later.")


def api_id_of(request: Request) -> str:
    route = request.scope.get("route")
    name = getattr(route, "name", None)
    return name if isinstance(name, str) and name.startswith("api.") else "api.learnlog"


def error_response(request: Request, error: LearnlogError) -> Response:
    status, body = error_body(api_id_of(request), error)
    return EnvelopeResponse(body, status_code=status)


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


def input_error(api_id: str, root: str, kind: str, field: str, detail: str = ""
                ) -> tuple[int, bytes]:
    """The 400 of a body that does not fit its route, for both edges. `kind`: `json` (not
    JSON), `body` (no body at all), `missing`, `unknown`, `type`, `tag` (a union's tag
    missing) or `value`; `field` is the dotted path of what is wrong."""
    if kind == "json":
        return 400, failed_bytes(api_id, "CLIENT_ERROR", "INVALID_JSON",
                                 "The body is not valid JSON.", root)
    if kind == "body":
        message = ("A JSON object body is mandatory." if root == "body"
                   else "A JSON body {\"request\": {...}} is mandatory.")
        return 400, failed_bytes(api_id, "CLIENT_ERROR", "MANDATORY_PARAMETER_MISSING",
                                 message, root)
    if kind == "missing":
        # The Sunbird codes name a field wherever it sits (request.events[3].userId too).
        code, message = _SPECIAL_MISSING.get(
            "request." + field.rsplit(".", 1)[-1],
            ("MANDATORY_PARAMETER_MISSING", f"Mandatory parameter {field} is missing."))
        return 400, failed_bytes(api_id, "CLIENT_ERROR", code, message, field)
    if kind == "tag":
        return 400, failed_bytes(api_id, "CLIENT_ERROR", "MANDATORY_PARAMETER_MISSING",
                                 f"Mandatory parameter {field} is missing.", field)
    if kind == "unknown":
        return 400, failed_bytes(api_id, "CLIENT_ERROR", "UNKNOWN_FIELD",
                                 f"Unknown field {field}: remove it.", field)
    if kind == "type":
        return 400, failed_bytes(api_id, "CLIENT_ERROR", "DATA_TYPE_ERROR",
                                 f"Data type of {field} is wrong: {detail}.", field)
    return 400, failed_bytes(api_id, "CLIENT_ERROR", "INVALID_PARAMETER_VALUE",
                             f"Invalid value of {field}: {detail}.", field)


def validation_response(request: Request, exc: RequestValidationError) -> Response:
    """The 400 of a body pydantic refused (the framework's routes)."""
    errors = exc.errors()
    first = errors[0] if errors else {"type": "value_error", "loc": ("body",), "msg": "invalid"}
    root = body_field(request.url.path)
    loc = tuple(first.get("loc", ()))
    field = field_path(loc, root)
    kind = str(first.get("type", ""))
    detail = str(first.get("msg", ""))
    if kind == "json_invalid":
        how = "json"
    elif kind == "missing":
        how = "body" if field == root and len(loc) <= 1 else "missing"
    elif kind in ("union_tag_not_found", "union_tag_invalid"):
        # A discriminated union names its tag field (events' `type`) in the context.
        context = first.get("ctx")
        tag = str(context.get("discriminator", "'type'") if isinstance(context, dict)
                  else "type").strip("'")
        field = f"{field}.{tag}"
        given = first.get("input")
        how = ("tag" if kind == "union_tag_not_found" else
               "type" if isinstance(given, dict) and not isinstance(given.get(tag), str)
               else "value")
        if how == "type":
            detail = "it must be a string"
    elif kind == "extra_forbidden":
        how = "unknown"
    elif kind.endswith("_type"):
        how = "type"
    else:
        how = "value"
    status, body = input_error(api_id_of(request), root, how, field, detail)
    return EnvelopeResponse(body, status_code=status)


_MSGSPEC = re.compile(r"^(?P<text>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_NAMED = re.compile(r"^Object (?P<how>missing required|contains unknown) field `(?P<name>[^`]*)`$")
_TYPE = re.compile(r"^Expected `[^`]*`(?:, got `[^`]*`)?$")


def decode_error(api_id: str, root: str, message: str | None, body: bytes
                 ) -> tuple[int, bytes]:
    """The 400 of a body msgspec refused (the lean routes): `message` is its validation
    error (\"Expected `str`, got `int` - at `$.request.userId`\"), None when the bytes
    are not JSON at all."""
    if message is None:
        return input_error(api_id, root, "body" if not body.strip() else "json", root)
    found = _MSGSPEC.match(message)
    text = found["text"] if found else message
    path = (found["path"] or "").lstrip(".") if found else ""
    field = path or root
    named = _NAMED.match(text)
    if named:
        field = f"{path}.{named['name']}" if path else named["name"]
        return input_error(api_id, root,
                           "missing" if named["how"].startswith("missing") else "unknown",
                           field)
    return input_error(api_id, root, "type" if _TYPE.match(text) else "value", field, text)


def http_exception_response(request: Request, exc: StarletteHTTPException) -> Response:
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


def unexpected_response(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return failed(api_id_of(request), 500, "SERVER_ERROR", "INTERNAL_ERROR",
                  "Process failed, please try again later.")
