"""Anonymous visitors' content sessions (SPEC §3, Kolibri's anonymous logs).

With `allow_anonymous_logs` on, a caller without a token may start and update sessions of
its own visit: the visitor id comes from a cookie. Such a session belongs to no learner,
feeds no summary and is read by nobody through the API (partition `{dataset}:anonymous`).
Anyone who holds a visitor session's id may update it, as in Kolibri. A visitor's answers
to questions are not kept (there is no learner to master anything): an update with
`interactions` is refused, and an exercise's progress is the one the client reports
(decision 0010).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..domain import mastery
from ..domain.errors import Forbidden, InvalidInput, NotFound
from ..domain.keys import anonymous_partition
from ..domain.progress import advance, asked, is_complete
from ..domain.visits import visitor_completed_at
from ..store import rows
from ..store.schema import visitor_sessions
from ..store.uow import BatchUnitOfWork
from .commands import Command
from .ports import ServiceContext
from .viewer import check_time_delta


@dataclass(frozen=True, slots=True)
class StartVisit(Command):
    """Open a visitor's session on a content."""

    dataset: str
    visitor_id: str
    content_id: str
    kind: str
    criterion: mastery.Criterion | None = None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        if self.criterion is not None and self.criterion.coach_assigned:
            raise Forbidden("Sign in to take a quiz.", code="FORBIDDEN", field="quiz_id")
        session_id = uow.new_id()
        uow.records.put(visitor_sessions, anonymous_partition(self.dataset), {
            "dataset": self.dataset, "session_id": session_id, "visitor_id": self.visitor_id,
            "content_id": self.content_id, "kind": self.kind, "started_at": uow.now,
            "ended_at": uow.now, "progress": 0.0, "time_spent": 0.0, "completed_at": None,
            "extra_fields": None})
        answer: dict[str, Any] = {"session_id": session_id, "progress": 0.0,
                                  "time_spent": 0.0, "extra_fields": {}, "complete": False}
        if self.criterion is not None:
            answer.update(mastery_criterion=self.criterion.as_json(), pastattempts=[],
                          totalattempts=0)
        return answer


@dataclass(frozen=True, slots=True)
class TrackVisit(Command):
    """Add progress (never lowered), time and extra fields to a visitor's session."""

    dataset: str
    session_id: str
    progress_delta: float | None = None
    progress: float | None = None
    time_spent_delta: float = 0.0
    extra_fields: dict[str, Any] | None = None
    interactions: bool = False

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        check_time_delta(ctx, self.time_spent_delta, "time_spent_delta")
        row = uow.records.get(visitor_sessions, (self.dataset, self.session_id))
        if row is None:
            raise NotFound(f"Session {self.session_id} is not a visitor's session.",
                           code="SESSION_NOT_FOUND", field="session_id")
        if self.interactions:
            raise InvalidInput("Answers are kept for signed-in learners only.",
                               code="INVALID_PARAMETER_VALUE", field="interactions")
        progress = advance(row["progress"],
                           asked(row["progress"], self.progress_delta, self.progress))
        completed_at = visitor_completed_at(row["completed_at"], progress, uow.now)
        extra = (row["extra_fields"] if self.extra_fields is None
                 else rows.dumps(self.extra_fields))
        uow.records.put(visitor_sessions, anonymous_partition(self.dataset), {
            **row, "progress": progress, "time_spent": row["time_spent"] + self.time_spent_delta,
            "ended_at": max(row["ended_at"], uow.now), "completed_at": completed_at,
            "extra_fields": extra})
        return {"complete": is_complete(progress)}
