"""CSV exports of the logger family (SPEC §4.3, Kolibri's GenerateCSVLogRequest), for the
admins of a dataset: request one, watch its state, download the file once it is done.

The request is recorded and its job queued in one transaction (the outbox); the job
(`jobs/exports.py`) streams the rows to a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Request
from fastapi.responses import FileResponse, Response

from ..domain import exports as rules
from ..domain.errors import Conflict
from ..domain.ids import check_id
from ..service import exports as svc
from . import models as m
from .access import require_admin
from .common import caller, runtime
from .envelope import Envelope

router = APIRouter(prefix="/api/logger/exports")


def _answer(row: dict[str, Any], status: int = 200) -> Response:
    done = row["state"] == rules.DONE
    body = {**svc.view(row),
            "download": f"{router.prefix}/{row['export_id']}/download/" if done else None}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _export(request: Request, export_id: str) -> dict[str, Any]:
    principal = caller(request, write=False)
    require_admin(principal)
    check_id(export_id, "export_id")
    row = await runtime(request).read(lambda conn: svc.find(conn, principal.dataset,
                                                            export_id))
    if row is None:
        raise svc.not_found(export_id)
    return row


@router.post("/", name="api.logger.exports.create", status_code=202,
             response_model=m.ExportOut)
async def create_export(request: Request,
                        body: Annotated[m.ExportRequest, Body()]) -> Response:
    """Start a CSV export of the dataset's session or summary logs (admins only): Kolibri's
    columns, quiz logs left out, rows whose start time is in [`start`, `end`]. Answers 202
    at once; the file is written in the background (watch the export's state)."""
    principal = caller(request, write=True)
    require_admin(principal)
    since, until = svc.window(body.start, body.end)
    row = await runtime(request).writer.submit(svc.RequestExport(
        principal.dataset, body.log_type, since, until, principal.user_id))
    return _answer(row, 202)


@router.get("/{export_id}/", name="api.logger.exports.get", response_model=m.ExportOut)
async def get_export(request: Request, export_id: str) -> Response:
    """An export's state and row count, and where to download it once it is done."""
    return _answer(await _export(request, export_id))


@router.get("/{export_id}/download/", name="api.logger.exports.download",
            response_class=FileResponse, response_model=None, responses={
                200: {"content": {"text/csv": {}}, "description": "The CSV file."},
                409: {"model": Envelope, "description": "The export is not done yet."}})
async def download_export(request: Request, export_id: str) -> FileResponse:
    """The CSV file of a done export (409 EXPORT_NOT_READY before)."""
    row = await _export(request, export_id)
    if row["state"] != rules.DONE:
        raise Conflict(f"Export {export_id} is {row['state']}, not done.",
                       code="EXPORT_NOT_READY", field="export_id")
    path = Path(row["path"])
    if not path.is_file():
        raise svc.not_found(export_id)
    return FileResponse(path, media_type="text/csv", filename=rules.filename(
        row["dataset"], row["log_type"], row["since"], row["until"], row["requested_at"]))
