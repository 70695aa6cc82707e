"""Sync API (SPEC §5): `POST /v1/sync/hello`, `/v1/sync/pull`, `/v1/sync/push`.

Bodies are plain JSON (not the Sunbird envelope): facts travel as per-table column lists
and rows, read and written without a model layer because a sync moves up to millions of
them. Every body is still checked field by field (`sync.facts.check_rows`).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from ..domain.errors import InvalidInput
from ..sync import server
from .access import sync_grant
from .common import caller, runtime

router = APIRouter()


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"The body is not JSON: {error}.", code="INVALID_JSON",
                           field="body") from error


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


@router.post("/v1/sync/hello", name="api.sync.hello")
async def sync_hello(request: Request) -> Response:
    """Compare protocol and context mode, settle the partitions, return this instance's
    version vectors for them (what it holds: partition → instance → highest counter)."""
    grant = sync_grant(caller(request, write=True))
    body = await _body(request)
    rt = runtime(request)
    me = server.describe(rt.ctx, rt.settings.max_body_bytes)
    return _json(await rt.read(lambda conn: server.hello(conn, grant, me, body)))


@router.post("/v1/sync/pull", name="api.sync.pull")
async def sync_pull(request: Request) -> Response:
    """The next chunk of facts the caller lacks, after `cursor`, in stream order."""
    grant = sync_grant(caller(request, write=False))
    body = await _body(request)
    rt = runtime(request)
    return _json(await rt.read(lambda conn: server.pull(conn, grant, body,
                                                        rt.ctx.instance_id)))


@router.post("/v1/sync/push", name="api.sync.push")
async def sync_push(request: Request) -> Response:
    """Apply a chunk of the caller's facts: all of it, or nothing (400/403)."""
    grant = sync_grant(caller(request, write=True))
    body = await _body(request)
    command = server.push_command(grant, body)
    return _json(await runtime(request).writer.submit(command))
