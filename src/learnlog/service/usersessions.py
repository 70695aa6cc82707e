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
from sqlalchemy import select

from ..domain.keys import partition_of
from ..store.schema import user_sessions
from ..store.uow import BatchUnitOfWork
from .ports import ServiceContext

IDLE_MS = 5 * 60 * 1000
MAX_LISTED = 100  # pages and channels kept per session (the most recent)


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


def _add(listed: list[str], value: str | None) -> list[str]:
    if value is None or value in listed:
        return listed
    return [*listed, value][-MAX_LISTED:]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    dataset: str
    user_id: str
    device: str | None
    page: str | None = None
    channel_id: str | None = None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        latest = uow.conn.execute(select(user_sessions).where(
            user_sessions.c.dataset == self.dataset, user_sessions.c.user_id == self.user_id
        ).order_by(user_sessions.c.last_interaction_at.desc()).limit(1)).mappings().first()
        if latest is not None and uow.now - latest["last_interaction_at"] <= IDLE_MS:
            row = {k: latest[k] for k in ("dataset", "user_id", "session_id", "started_at",
                                           "device_info")}
            pages, channels = orjson.loads(latest["pages"]), orjson.loads(latest["channels"])
            started = False
        else:
            row = {"dataset": self.dataset, "user_id": self.user_id,
                   "session_id": uow.new_id(), "started_at": uow.now,
                   "device_info": self.device}
            pages, channels, started = [], [], True
        row.update(last_interaction_at=max(uow.now, latest["last_interaction_at"])
                   if latest is not None and not started else uow.now,
                   pages=orjson.dumps(_add(pages, self.page)).decode(),
                   channels=orjson.dumps(_add(channels, self.channel_id)).decode())
        uow.put_record(user_sessions, partition_of(self.dataset, self.user_id), row)
        return {"session_id": row["session_id"], "started": started,
                "device_info": row["device_info"]}
