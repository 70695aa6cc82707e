"""The raw ceiling of SPEC §8: a bare ASGI callable (no framework) that reads a
`view/update` body, decodes it with msgspec into a Struct and writes nothing.

    uvicorn --workers 2 --loop uvloop --http httptools --app-dir benchmarks/refs \
        raw_ceiling:app

`POST /v1/view/update` (the path learnlog serves, so wrk sends the very same bytes): the
body is decoded with the same constraints as learnlog's (strict types, unknown fields
refused, bounded strings, finite numbers), an `Authorization: Bearer …` header must be
present (its token is not verified: no JWT, no roles), and the answer is the same small
Sunbird envelope as the FastAPI ceiling's. `GET /health` answers for the readiness probe;
anything else is a 404.

Standalone on purpose: it imports nothing from learnlog, so it does not move when the
application does. Not part of the application; used by benchmarks/run.py only.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256,
                                 pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
Text = Annotated[str, msgspec.Meta(max_length=4096, pattern=r"^[^\x00]*$")]
# msgspec reads 1e999 as inf: an upper bound keeps numbers finite (pydantic: allow_inf_nan)
MAX_FLOAT = 1.7976931348623157e308


class RequestParams(msgspec.Struct, forbid_unknown_fields=True):
    msgid: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class ViewUpdate(msgspec.Struct, forbid_unknown_fields=True):
    userId: Id
    contentId: Id
    collectionId: Id | None = None
    contextId: Id | None = None
    progressDetails: Annotated[dict[str, Any], msgspec.Meta(max_length=256)] | None = None
    timespent: Annotated[float, msgspec.Meta(ge=0, le=MAX_FLOAT)] = 0.0
    progress: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None


class UpdateRequest(msgspec.Struct, forbid_unknown_fields=True):
    request: ViewUpdate
    id: Text | None = None
    ver: Text | None = None
    ts: Text | None = None
    params: RequestParams | None = None


class Params(msgspec.Struct, kw_only=True):  # kw_only: fields in the order learnlog sends
    resmsgid: str
    msgid: str | None = None
    err: str | None = None
    status: str
    errmsg: str | None = None


class Envelope(msgspec.Struct, kw_only=True):
    id: str
    ver: str = "v1"
    ts: str
    params: Params
    responseCode: str
    result: dict[str, Any]


decode = msgspec.json.Decoder(UpdateRequest).decode
encode = msgspec.json.Encoder().encode


def envelope(api_id: str, code: str, status: str, result: dict[str, Any],
             msgid: str | None = None, err: str | None = None,
             errmsg: str | None = None) -> bytes:
    now = datetime.now(UTC)
    ts = now.strftime("%Y-%m-%d %H:%M:%S:") + f"{now.microsecond // 1000:03d}+0000"
    return encode(Envelope(id=api_id, ts=ts, params=Params(
        resmsgid=str(uuid.uuid4()), msgid=msgid, err=err, status=status, errmsg=errmsg),
        responseCode=code, result=result))


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

UNAUTHORIZED = envelope("api.view.update", "UNAUTHORIZED", "failed", {}, err="UNAUTHORIZED")
NOT_FOUND = b'{"responseCode":"RESOURCE_NOT_FOUND"}'
HEALTH = b'{"status":"ok"}'


async def respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def update_body(scope: Scope, receive: Receive, send: Send) -> UpdateRequest | None:
    """The routing, caller check and decoding of `POST /v1/view/update`: the decoded body,
    or None when an answer was already sent (health, 404, 401, 400). Lifespan messages
    are acknowledged here too."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
    if scope["type"] != "http":
        return None
    method, path = scope["method"], scope["path"]
    if method == "GET" and path == "/health":
        await respond(send, 200, HEALTH)
        return None
    if method != "POST" or path != "/v1/view/update":
        await respond(send, 404, NOT_FOUND)
        return None
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    auth = b""
    for name, value in scope["headers"]:
        if name == b"authorization":
            auth = value
            break
    if not auth.startswith(b"Bearer ") or len(auth) <= 7:
        await respond(send, 401, UNAUTHORIZED)
        return None
    try:
        return decode(b"".join(chunks))
    except msgspec.DecodeError as error:  # ValidationError is a DecodeError
        await respond(send, 400, envelope("api.view.update", "CLIENT_ERROR", "failed", {},
                                          err="CLIENT_ERROR", errmsg=str(error)))
        return None


def answer(body: UpdateRequest) -> bytes:
    """The success envelope of one update."""
    msgid = body.params.msgid if body.params else None
    return envelope("api.view.update", "OK", "success", {body.request.contentId: "SUCCESS"},
                    msgid)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    body = await update_body(scope, receive, send)
    if body is not None:
        await respond(send, 200, answer(body))
