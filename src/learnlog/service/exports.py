"""Export requests (SPEC §4.3, Kolibri's GenerateCSVLogRequest): the row that tracks one
CSV export through queued → running → done | failed, written through the writer. The file
itself is written by `jobs/exports.py`, which the outbox message of a request starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from ..domain import exports as rules
from ..domain.errors import InvalidInput, NotFound
from ..store.schema import exports
from ..store.uow import BatchUnitOfWork
from .commands import Command
from .logs import iso, parse_time
from .ports import ServiceContext
from .topics import EXPORT_REQUESTED

LAST_MS = 253_370_764_800_000  # 9999-01-01: a window's end (+1 day) stays a printable time


def window(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    """The export's time window in epoch ms: `start` inclusive; `end` is a date (its whole
    day is in, Kolibri's rule) or a date-time (included); the upper bound is exclusive."""
    since = None if start is None else _moment(start, "start")
    until = None
    if end is not None:
        until = _moment(end, "end") + (rules.DAY_MS if _is_date(end) else 1)
        if since is not None and until <= since:
            raise InvalidInput("end is before start.", code="INVALID_PARAMETER_VALUE",
                               field="end")
    return since, until


def _moment(text: str, field: str) -> int:
    try:
        ms = parse_time(text, field)
    except OverflowError:  # a zone offset that leaves the calendar (0001-01-01T00:00+14:00)
        ms = -1
    if not 0 <= ms < LAST_MS:
        raise InvalidInput(f"{field} must be a time between 1970 and 9998.",
                           code="INVALID_PARAMETER_VALUE", field=field)
    return ms


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def not_found(export_id: str) -> NotFound:
    return NotFound(f"Export {export_id} does not exist.", code="EXPORT_NOT_FOUND",
                    field="export_id")


@dataclass(frozen=True, slots=True)
class RequestExport(Command):
    """Record an export request and queue its job in the same transaction."""

    dataset: str
    log_type: str
    since: int | None
    until: int | None
    requested_by: str

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        row = {"dataset": self.dataset, "export_id": uow.new_id(), "log_type": self.log_type,
               "since": self.since, "until": self.until, "state": rules.QUEUED, "rows": None,
               "path": None, "error": None, "requested_at": uow.now, "finished_at": None,
               "requested_by": self.requested_by}
        uow.records.put_local(exports, row)
        uow.emit(self.dataset, EXPORT_REQUESTED, {"exportId": row["export_id"]})
        return row


@dataclass(frozen=True, slots=True)
class SetExportState(Command):
    """Move an export to a state; done and failed are final and record when they ended."""

    dataset: str
    export_id: str
    state: str
    rows: int | None = None
    path: str | None = None
    error: str | None = None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        row = uow.records.get(exports, (self.dataset, self.export_id))
        if row is None:
            raise not_found(self.export_id)
        final = self.state in (rules.DONE, rules.FAILED)
        row = {**row, "state": self.state, "rows": self.rows, "path": self.path,
               "error": self.error, "finished_at": uow.now if final else None}
        uow.records.put_local(exports, row)
        return row


def find(conn: Connection, dataset: str, export_id: str) -> dict[str, Any] | None:
    """An export's row, or None."""
    found = conn.execute(select(exports).where(
        exports.c.dataset == dataset, exports.c.export_id == export_id)).mappings().first()
    return None if found is None else dict(found)


def view(row: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of an export (`end` is exclusive)."""
    return {"id": row["export_id"], "log_type": row["log_type"], "state": row["state"],
            "start": iso(row["since"]), "end": iso(row["until"]), "rows": row["rows"],
            "error": row["error"], "requested_at": iso(row["requested_at"]),
            "finished_at": iso(row["finished_at"])}
