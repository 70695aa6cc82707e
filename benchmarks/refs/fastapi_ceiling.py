"""The FastAPI ceiling of SPEC §8: one FastAPI route that validates a `view/update` body
with pydantic and writes nothing.

    uvicorn --workers 2 --loop uvloop --http httptools --app-dir benchmarks/refs \
        fastapi_ceiling:app

`POST /v1/view/update` (the path learnlog serves, so wrk sends the very same bytes):
the body is validated with the same constraints as learnlog's (strict scalars, unknown
fields refused, bounded strings, finite numbers), an `Authorization: Bearer …` header must
be present (its token is not verified: no JWT, no roles), and the answer is a small
Sunbird envelope like learnlog's. `GET /health` answers for the readiness probe.

Standalone on purpose: it imports nothing from learnlog, so it does not move when the
application does. Not part of the application; used by benchmarks/run.py only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256,
                                      pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
Text = Annotated[str, StringConstraints(strict=True, max_length=4096, pattern=r"^[^\x00]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RequestParams(Strict):
    msgid: Annotated[str, StringConstraints(strict=True, max_length=128)] | None = None


class ViewUpdate(Strict):
    userId: Id
    contentId: Id
    collectionId: Id | None = None
    contextId: Id | None = None
    progressDetails: Annotated[dict[str, Any], Field(max_length=256)] | None = None
    timespent: Annotated[float, Field(strict=True, ge=0)] = 0.0
    progress: Annotated[float, Field(strict=True, ge=0, le=100)] | None = None


class UpdateRequest(Strict):
    id: Text | None = None
    ver: Text | None = None
    ts: Text | None = None
    params: RequestParams | None = None
    request: ViewUpdate


class Params(BaseModel):
    resmsgid: str
    msgid: str | None = None
    err: str | None = None
    status: str
    errmsg: str | None = None


class Envelope(BaseModel):
    id: str
    ver: str = "v1"
    ts: str
    params: Params
    responseCode: str
    result: dict[str, Any]


def envelope(api_id: str, code: str, status: str, result: dict[str, Any],
             msgid: str | None = None, err: str | None = None,
             errmsg: str | None = None) -> bytes:
    now = datetime.now(UTC)
    ts = now.strftime("%Y-%m-%d %H:%M:%S:") + f"{now.microsecond // 1000:03d}+0000"
    return Envelope(id=api_id, ts=ts, params=Params(
        resmsgid=str(uuid.uuid4()), msgid=msgid, err=err, status=status, errmsg=errmsg),
        responseCode=code, result=result).model_dump_json().encode()


UNAUTHORIZED = envelope("api.view.update", "UNAUTHORIZED", "failed", {}, err="UNAUTHORIZED")

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.exception_handler(RequestValidationError)
async def invalid(_request: Request, error: RequestValidationError) -> Response:
    """400 with a small envelope (FastAPI's own 422 answer fails on an inf in the input)."""
    first = error.errors()[0] if error.errors() else {}
    return Response(envelope("api.view.update", "CLIENT_ERROR", "failed", {},
                             err="CLIENT_ERROR", errmsg=str(first.get("msg", "invalid"))),
                    status_code=400, media_type="application/json")


@app.post("/v1/view/update")
async def view_update(request: Request, body: UpdateRequest) -> Response:
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer ") or len(auth) <= 7:
        return Response(UNAUTHORIZED, status_code=401, media_type="application/json")
    msgid = body.params.msgid if body.params else None
    return Response(envelope("api.view.update", "OK", "success",
                             {body.request.contentId: "SUCCESS"}, msgid),
                    media_type="application/json")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
