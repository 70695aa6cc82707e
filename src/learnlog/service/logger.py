"""Logger use cases (SPEC §4.3, Kolibri family): content sessions tracked by session id.

A `trackprogress` session is the same fact as a viewer session: both families fold into
the same summaries, so under content mode a view recorded through `/v1/view/*` and a
session recorded here land in one summary.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..domain import mastery
from ..domain.errors import Forbidden, InvalidInput, NotFound
from ..domain.keys import SummaryKey
from ..domain.progress import asked, is_complete, normalize
from ..domain.summary import Session, Summary, apply_session, new_session, record_progress
from ..store.uow import BatchUnitOfWork
from .commands import Command, LearnerCommand
from .ports import ServiceContext
from .quizzes import check_open
from .viewer import KeyedCommand, Keys, after_change, check_time_delta


def tracking_state(summary: Summary, session_id: str) -> dict[str, Any]:
    """What a trackprogress answer shows: the summary's figures (Kolibri's rule)."""
    return {"session_id": session_id, "progress": summary.progress,
            "time_spent": summary.time_spent, "extra_fields": dict(summary.extra_fields or {}),
            "complete": is_complete(summary.progress)}


def _assessment_state(uow: BatchUnitOfWork, t: mastery.Try) -> dict[str, Any]:
    """What an exercise session's answers add: the try's criterion, time and attempts."""
    attempts = uow.tries.attempts_of(t.key, t.level, t.criterion.window)
    return {"complete": t.complete, "time_spent": t.time_spent,
            "mastery_criterion": t.criterion.as_json(),
            "pastattempts": mastery.past_attempts(t, attempts),
            "totalattempts": t.attempt_count}


def _submitted(quiz_id: str) -> Forbidden:
    return Forbidden(f"Quiz {quiz_id} was submitted: it takes no more answers.",
                     code="QUIZ_SUBMITTED", field="session_id")


def _exercise_try(uow: BatchUnitOfWork, key: SummaryKey, criterion: mastery.Criterion,
                  repeat: bool) -> mastery.Try:
    """The try a new exercise or quiz session works on: the one to continue, or a new one
    that keeps the criterion in force now (a later change of the model does not touch
    it). A submitted coach quiz is not continued: only `repeat` starts it again."""
    tries = uow.tries.of(key)
    picked = mastery.pick_try(tries, repeat=repeat, quiz=criterion.is_quiz)
    if picked is not None:
        if picked.complete and picked.criterion.coach_assigned:
            raise _submitted(key.content_id)
        return picked
    level = (mastery.quiz_level(tries, random.randint) if criterion.is_quiz
             else mastery.next_level(tries))
    fresh = mastery.Try(key, level, criterion, uow.now, uow.now)
    uow.tries.put(fresh)
    return fresh


@dataclass(frozen=True, slots=True)
class StartTracking(KeyedCommand):
    """Open a session for the caller; the summary is created when absent. With a
    criterion (an exercise) the session works on a try: the open one, or a new one."""

    keys: Keys
    repeat: bool = False
    kind: str | None = None
    criterion: mastery.Criterion | None = None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        key = self.keys.resolve(ctx)
        if self.criterion is not None and self.criterion.coach_assigned:
            check_open(uow, key.dataset, key.user_id, key.content_id)
        before = uow.summaries.get(key)
        exercise = (None if self.criterion is None
                    else _exercise_try(uow, key, self.criterion, self.repeat))
        session = replace(
            new_session(uow.new_id(), key, ctx.instance_id, uow.now, before,
                        repeat=self.repeat),
            kind=self.kind, level=None if exercise is None else exercise.level)
        after = apply_session(before or Summary(key), None, session)
        uow.summaries.put_session(session)
        uow.summaries.put(after, open_session_id=session.session_id)
        after_change(uow, ctx, self.keys, before, after)
        state = tracking_state(after, session.session_id)
        if exercise is not None:
            state.update(_assessment_state(uow, exercise))
        return state


@dataclass(frozen=True, slots=True)
class TrackProgress(LearnerCommand):
    """Add to a session the caller owns: a progress delta or an absolute progress (never
    lowered), time, extra fields (replacing the previous ones), and for an exercise
    session item interactions, from which the server decides mastery and progress."""

    dataset: str
    user_id: str
    session_id: str
    progress_delta: float | None = None
    progress: float | None = None
    time_spent_delta: float = 0.0
    extra_fields: dict[str, Any] | None = None
    interactions: tuple[mastery.Interaction, ...] | None = None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        check_time_delta(ctx, self.time_spent_delta, "time_spent_delta")
        session = uow.summaries.session(self.dataset, self.user_id, self.session_id)
        if session is None:
            # Sessions are looked up with the caller's own id: another learner's is not found.
            raise NotFound(f"Session {self.session_id} is not one of yours.",
                           code="SESSION_NOT_FOUND", field="session_id")
        key = session.key
        before = uow.summaries.get(key) or Summary(key)
        answer: dict[str, Any] = {}
        target = asked(session.progress, self.progress_delta, self.progress)
        if session.level is not None:
            target, answer = self._exercise(uow, session, target)
        elif self.interactions:
            raise InvalidInput("Interactions need an exercise session: start it with a "
                               "mastery_model.", code="INVALID_PARAMETER_VALUE",
                               field="interactions")
        updated = record_progress(session, uow.now, progress=target,
                                  time_delta=self.time_spent_delta,
                                  extra_fields=self.extra_fields)
        after = apply_session(before, session, updated)
        uow.summaries.put_session(updated)
        uow.summaries.put(after)
        keys = Keys(key.dataset, key.user_id, key.content_id)
        after_change(uow, ctx, keys, before, after)
        return {"complete": is_complete(after.progress), **answer}

    def _exercise(self, uow: BatchUnitOfWork, session: Session, reported: float | None
                  ) -> tuple[float, dict[str, Any]]:
        """Apply the interactions to the session's try; its progress is the criterion's
        (progress the client sends for an exercise is not used: decision 0009), a quiz's
        the one `reported` (a quiz is submitted with progress 1)."""
        assert session.level is not None
        t = uow.tries.at(session.key, session.level)
        if t is None:  # the try was erased with the learner's records
            raise NotFound(f"Session {self.session_id} is not one of yours.",
                           code="SESSION_NOT_FOUND", field="session_id")
        if t.criterion.coach_assigned:
            if t.complete:
                raise _submitted(t.key.content_id)
            check_open(uow, t.key.dataset, t.key.user_id, t.key.content_id)
        # The interactions change attempts they name, by id or (with replace) by item,
        # loaded whole; the criterion reads only the marks (order and score) of the try's
        # latest attempts (its window).
        window = t.criterion.window
        given = self.interactions or ()
        uow.tries.load_named_attempts(
            t.key, t.level, (i.attempt_id for i in given if i.attempt_id is not None),
            (i.item for i in given if i.replace and i.attempt_id is None))
        t = mastery.counted(t, uow.tries.marks(t.key, t.level, window))
        changed = mastery.apply_interactions(t, uow.tries.named_attempts(t.key, t.level),
                                             session.session_id, given, uow.now, uow.new_id)
        for attempt in changed:
            uow.tries.put_attempt(attempt)
        evaluated, progress = mastery.evaluate(
            mastery.counted(t, changed), uow.tries.marks(t.key, t.level, window),
            uow.now, self.time_spent_delta, 0.0 if reported is None else normalize(reported))
        uow.tries.put(evaluated)
        return progress, {"complete": evaluated.complete,
                          "attempts": [a.shown() for a in changed]}


def prefetch(uow: BatchUnitOfWork, ctx: ServiceContext, commands: Sequence[Command]) -> None:
    """Load what a batch of logger commands reads with a few queries for the whole batch:
    the updated sessions, their summaries, and the tries of exercise and quiz sessions
    with the marks of their latest item attempts (per command, they would be four
    queries each)."""
    updates = [c for c in commands if isinstance(c, TrackProgress)]
    uow.summaries.load_sessions([(c.dataset, c.user_id, c.session_id) for c in updates])
    found = [s for s in (uow.summaries.session(c.dataset, c.user_id, c.session_id) for c in updates)
             if s is not None]
    uow.summaries.load([s.key for s in found])
    tried = [(s.key, s.level) for s in found if s.level is not None]
    starts = [c.keys.resolve(ctx) for c in commands
              if isinstance(c, StartTracking) and c.criterion is not None]
    uow.tries.load([key for key, _ in tried] + starts)
    uow.tries.load_marks((t.key, t.level, t.criterion.window) for t in (
        uow.tries.at(key, level) for key, level in tried) if t is not None)
