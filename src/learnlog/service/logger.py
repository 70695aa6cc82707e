"""Logger use cases (SPEC §4.3, Kolibri family): content sessions tracked by session id.

A `trackprogress` session is the same fact as a viewer session: both families fold into
the same summaries, so under content mode a view recorded through `/v1/view/*` and a
session recorded here land in one summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..domain.errors import NotFound
from ..domain.summary import Summary, apply_session, new_session, record_progress
from ..store.uow import BatchUnitOfWork
from .ports import ServiceContext
from .viewer import Keys, after_change, check_time_delta


def tracking_state(summary: Summary, session_id: str) -> dict[str, Any]:
    """What a trackprogress answer shows: the summary's figures (Kolibri's rule)."""
    return {"session_id": session_id, "progress": summary.progress,
            "time_spent": summary.time_spent, "extra_fields": dict(summary.extra_fields or {}),
            "complete": summary.progress >= 1.0}


@dataclass(frozen=True, slots=True)
class StartTracking:
    """Open a session for the caller; the summary is created when absent."""

    keys: Keys
    repeat: bool = False

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        key = self.keys.resolve(ctx)
        before = uow.summary(key)
        session = new_session(uow.new_id(), key, ctx.instance_id, uow.now, before,
                              repeat=self.repeat)
        after = apply_session(before or Summary(key), None, session)
        uow.put_session(session)
        uow.put_summary(after, open_session_id=session.session_id)
        after_change(uow, ctx, self.keys, before, after)
        return tracking_state(after, session.session_id)


@dataclass(frozen=True, slots=True)
class TrackProgress:
    """Add to a session the caller owns: a progress delta or an absolute progress (never
    lowered), time, extra fields (replacing the previous ones)."""

    dataset: str
    user_id: str
    session_id: str
    progress_delta: float | None = None
    progress: float | None = None
    time_spent_delta: float = 0.0
    extra_fields: dict[str, Any] | None = None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        check_time_delta(ctx, self.time_spent_delta, "time_spent_delta")
        session = uow.session(self.dataset, self.user_id, self.session_id)
        if session is None:
            # Sessions are looked up with the caller's own id: another learner's is not found.
            raise NotFound(f"Session {self.session_id} is not one of yours.",
                           code="SESSION_NOT_FOUND", field="session_id")
        key = session.key
        before = uow.summary(key) or Summary(key)
        if self.progress_delta is not None:
            target: float | None = session.progress + self.progress_delta
        else:
            target = self.progress
        updated = record_progress(session, uow.now, progress=target,
                                  time_delta=self.time_spent_delta,
                                  extra_fields=self.extra_fields)
        after = apply_session(before, session, updated)
        uow.put_session(updated)
        uow.put_summary(after)
        keys = Keys(key.dataset, key.user_id, key.content_id)
        after_change(uow, ctx, keys, before, after)
        return {"complete": after.progress >= 1.0}
