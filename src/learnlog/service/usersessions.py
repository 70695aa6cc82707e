"""User sessions (SPEC §2.8, Kolibri's UserSessionLog): one per visit to the app.

A heartbeat from an active learner extends its latest user session when that session's
last interaction is at most 5 minutes old, else opens a new one with the device the
User-Agent names (`"{os},{os_major}/{browser},{browser_major}"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from ..domain.keys import partition_of
from ..domain.visits import add_recent, continues
from ..store.schema import user_sessions
from ..store.uow import BatchUnitOfWork
from .commands import LearnerCommand
from .ports import ServiceContext


@lru_cache(maxsize=1024)
def device_info(user_agent: str | None) -> str | None:
    """`"Linux,/Chrome,120"` from a User-Agent header (None without one)."""
    if not user_agent:
        return None
    import ua_parser

    parsed = ua_parser.parse(user_agent)
    os_, agent = parsed.os, parsed.user_agent
    return (f"{os_.family if os_ else ''},{(os_.major or '') if os_ else ''}/"
            f"{agent.family if agent else ''},{(agent.major or '') if agent else ''}")[:256]


@dataclass(frozen=True, slots=True)
class Heartbeat(LearnerCommand):
    dataset: str
    user_id: str
    device: str | None
    page: str | None = None
    channel_id: str | None = None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        latest = uow.records.latest_user_session(self.dataset, self.user_id)
        started = not continues(None if latest is None else latest["last_interaction_at"],
                                uow.now)
        if started:
            row: dict[str, Any] = {
                "dataset": self.dataset, "user_id": self.user_id, "session_id": uow.new_id(),
                "started_at": uow.now, "device_info": self.device}
            pages: list[str] = []
            channels: list[str] = []
        else:
            assert latest is not None
            row = {k: latest[k] for k in ("dataset", "user_id", "session_id", "started_at",
                                          "device_info", "last_interaction_at")}
            pages, channels = orjson.loads(latest["pages"]), orjson.loads(latest["channels"])
        row.update(last_interaction_at=max(uow.now, row.get("last_interaction_at", uow.now)),
                   pages=orjson.dumps(add_recent(pages, self.page)).decode(),
                   channels=orjson.dumps(add_recent(channels, self.channel_id)).decode())
        uow.records.put(user_sessions, partition_of(self.dataset, self.user_id), row)
        return {"session_id": row["session_id"], "started": started,
                "device_info": row["device_info"]}
