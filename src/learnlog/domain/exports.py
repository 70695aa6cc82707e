"""CSV exports of the logger family (Kolibri's GenerateCSVLogRequest): which rows, which
columns, and how each cell is written. Pure rules; the job that streams rows through them
is `jobs/exports.py`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .progress import floor_to_ten_thousandths

SESSION = "session"
SUMMARY = "summary"
# Kolibri leaves quiz logs out of both exports.
EXCLUDED_KIND = "quiz"
DAY_MS = 86_400_000

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


def headers(log_type: str) -> list[str]:
    """Kolibri's columns in order; the completion time is in the summary export only."""
    completion = ["Time of completion"] if log_type == SUMMARY else []
    return ["Dataset name", "Username", "User type", "Channel id", "Channel name",
            "Content id", "Content title", "Time of first interaction",
            "Time of last interaction", *completion, "Time Spent (sec)", "Progress (0-1)",
            "Content kind"]


def seconds_cell(seconds: float) -> str:
    """Time spent in seconds with one decimal."""
    return f"{seconds:.1f}"


def progress_cell(progress: float) -> str:
    """Progress in [0, 1] rounded down to 4 decimals, written with 4 decimals."""
    return f"{floor_to_ten_thousandths(progress):.4f}"


def channel_of(collection_key: str, content_id: str) -> str:
    """The collection a summary key names, or "" when it names none (a key without a
    collection holds the content id in its collection part)."""
    return "" if collection_key == content_id else collection_key


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


def filename(dataset: str, log_type: str, since: int | None, until: int | None,
             requested_at: int) -> str:
    """Kolibri's download name, `{dataset}_content_{type}_logs_from_{start}_to_{end}.csv`:
    the first and last day covered (`until` is exclusive), open ends named by "beginning"
    and the day of the request; characters a file name should not carry become `_`."""
    start = "beginning" if since is None else _day(since)
    end = _day(requested_at if until is None else until - 1)
    safe = re.sub(r"[^\w.-]", "_", dataset)
    return f"{safe}_content_{log_type}_logs_from_{start}_to_{end}.csv"
