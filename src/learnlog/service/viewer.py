"""Viewer use cases (SPEC §4.1): views, assessments, enrolments, structures, erasure.

Each command's `apply(uow, ctx)` stages its effect in the batch unit of work and returns
the route's result. Commands are plain values so the writer can batch them.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ..domain import assessment as rules
from ..domain.certificates import Template, certificate_claims, earned
from ..domain.collection import Node, Structure, enrolment_progress
from ..domain.enrolment import (
    CollectionRecord,
    ContextRecord,
    Enrolment,
    IssuedCertificate,
    content_key,
    touches,
)
from ..domain.errors import InvalidInput, LearnlogError, NotFound
from ..domain.keys import ContextMode, SummaryKey, enrolment_context, resolve_key
from ..domain.progress import COMPLETED, from_percent, percent_from_details
from ..domain.summary import Summary, apply_session, close_session, new_session, record_progress
from ..store.uow import BatchUnitOfWork
from .commands import Command, Learner, LearnerCommand, reduce_fields
from .course_units import structure_changed
from .group_aggregates import queue_member
from .ports import ServiceContext


@dataclass(frozen=True, slots=True)
class Keys:
    """The names a viewer request gives: dataset, user, content, collection, context."""

    __reduce__ = reduce_fields

    dataset: str
    user_id: str
    content_id: str
    collection_id: str | None = None
    context_id: str | None = None

    def resolve(self, ctx: ServiceContext) -> SummaryKey:
        return resolve_key(ctx.mode, dataset=self.dataset, user_id=self.user_id,
                           content_id=self.content_id, collection_id=self.collection_id,
                           context_id=self.context_id)


class KeyedCommand(Command):
    """A command writing the records of the learner its `keys` name."""

    __slots__ = ()

    keys: Keys

    def learners(self) -> AbstractSet[Learner]:
        return {(self.keys.dataset, self.keys.user_id)}


# --- views ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StartView(KeyedCommand):
    keys: Keys

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, str]:
        key = self.keys.resolve(ctx)
        before = uow.summaries.get(key)
        session = new_session(uow.new_id(), key, ctx.instance_id, uow.now, before)
        after = apply_session(before or Summary(key), None, session)
        uow.summaries.put_session(session)
        uow.summaries.put(after, open_session_id=session.session_id)
        after_change(uow, ctx, self.keys, before, after)
        return {self.keys.content_id: "Progress started"}


def _started(uow: BatchUnitOfWork, key: SummaryKey) -> Summary:
    summary = uow.summaries.get(key)
    if summary is None:
        raise InvalidInput("View is not started: call view/start for this content first.",
                           code="VIEW_NOT_STARTED", field="request.contentId")
    return summary


def _own_open_session(uow: BatchUnitOfWork, ctx: ServiceContext, key: SummaryKey,
                      summary: Summary) -> tuple[Any, bool]:
    """This instance's open session for the key, or a new one (single writer, SPEC §5)."""
    session = uow.summaries.open_session(key)
    if session is None or session.closed or session.instance_id != ctx.instance_id:
        return new_session(uow.new_id(), key, ctx.instance_id, uow.now, summary), True
    return session, False


def check_time_delta(ctx: ServiceContext, seconds: float, field: str) -> None:
    """Time added by one update is bounded (a stuck client clock must not add a year)."""
    if seconds > ctx.max_time_spent_delta:
        name = field.rsplit(".", 1)[-1]
        raise InvalidInput(
            f"{name} is above the maximum of {ctx.max_time_spent_delta:g} s per update.",
            code="TIMESPENT_TOO_LARGE", field=field)


@dataclass(frozen=True, slots=True)
class UpdateView(KeyedCommand):
    keys: Keys
    timespent: float = 0.0
    progress: float | None = None  # percent
    progress_details: dict[str, Any] | None = None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, str]:
        check_time_delta(ctx, self.timespent, "request.timespent")
        key = self.keys.resolve(ctx)
        before = _started(uow, key)
        session, is_new = _own_open_session(uow, ctx, key, before)
        percent = self.progress if self.progress is not None else percent_from_details(
            self.progress_details)
        updated = record_progress(
            session, uow.now, progress=None if percent is None else from_percent(percent),
            time_delta=self.timespent, progress_details=self.progress_details)
        after = apply_session(before, None if is_new else session, updated)
        uow.summaries.put_session(updated)
        uow.summaries.put(after, open_session_id=updated.session_id)
        after_change(uow, ctx, self.keys, before, after)
        return {self.keys.content_id: "SUCCESS"}


@dataclass(frozen=True, slots=True)
class EndView(KeyedCommand):
    keys: Keys

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, str]:
        key = self.keys.resolve(ctx)
        before = _started(uow, key)
        if before.status == COMPLETED and uow.summaries.open_session(key) is None:
            return {self.keys.content_id: "Progress ended"}  # a retry: nothing to end
        _complete(uow, ctx, key, before)
        after_change(uow, ctx, self.keys, before, uow.summaries.get(key))
        return {self.keys.content_id: "Progress ended"}


def _complete(uow: BatchUnitOfWork, ctx: ServiceContext, key: SummaryKey,
              before: Summary) -> None:
    session, is_new = _own_open_session(uow, ctx, key, before)
    closed = close_session(session, uow.now)
    uow.summaries.put_session(closed)
    uow.summaries.put(apply_session(before, None if is_new else session, closed),
                    open_session_id=None)


# --- assessments ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AttemptInput:
    """One attempt as the edge parsed it."""

    attempt_id: str | None
    assessment_ts: int | None
    responses: tuple[rules.ItemResponse, ...]


@dataclass(frozen=True, slots=True)
class SubmitAssessment(KeyedCommand):
    keys: Keys
    attempts: tuple[AttemptInput, ...]

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, str]:
        key = self.keys.resolve(ctx)
        before = uow.summaries.get(key)
        stored_any = False
        for given in self.attempts:
            first_ets = min((r.ets for r in given.responses), default=uow.now)
            attempt_id = given.attempt_id or rules.derive_attempt_id(key, first_ets)
            ts = given.assessment_ts if given.assessment_ts is not None else first_ets
            incoming = rules.build_attempt(key, attempt_id, ts, given.responses, uow.now)
            merged = rules.merge_attempt(uow.assessments.get(key, attempt_id), incoming)
            if merged is not None:
                uow.assessments.put(merged)
                stored_any = True
        if not stored_any and before is not None and before.status == COMPLETED:
            return {self.keys.content_id: "SUCCESS"}  # a resent submission changes nothing
        best = rules.best_score(uow.assessments.of(key))
        if before is None:
            # Submitting without a view: the attempt is a visit of its own.
            opened = new_session(uow.new_id(), key, ctx.instance_id, uow.now, None)
            start = apply_session(Summary(key), None, opened)
            uow.summaries.put_session(opened)
            uow.summaries.put(start, open_session_id=opened.session_id)
            base = start
        else:
            base = before
        uow.summaries.put(replace(base, best_score=best.score, best_max_score=best.max_score,
                                attempts_count=best.attempts_count))
        _complete(uow, ctx, key, uow.summaries.get(key) or base)
        after_change(uow, ctx, self.keys, before, uow.summaries.get(key), scores_changed=True)
        return {self.keys.content_id: "SUCCESS"}


# --- enrolments -------------------------------------------------------------------------

def after_change(uow: BatchUnitOfWork, ctx: ServiceContext, keys: Keys,
                  before: Summary | None, after: Summary | None,
                  *, scores_changed: bool = False) -> None:
    """Keep enrolments right after a summary changed: implicit enrolment, completion."""
    if after is None:
        return
    newly_completed = after.status == COMPLETED and (before is None or before.status != COMPLETED)
    # A first consumption moves enrolments from "not started" to "in progress".
    if not (newly_completed or scores_changed or before is None):
        return
    # A content activity may have moved, and so may the enrolments: the learner's group
    # figures are queued once here, not again by each enrolment refreshed below.
    queue_member(uow, keys.dataset, keys.user_id)
    if before is None and keys.collection_id is not None and ctx.implicit_enrolment:
        _ensure_enrolment(uow, ctx, keys.dataset, keys.user_id, keys.collection_id,
                          enrolment_context(keys.collection_id, keys.context_id),
                          consumed=True, queue=False)
    for enrolment in touched_enrolments(uow, ctx, after.key):
        refresh_enrolment(uow, ctx, enrolment, queue=False)


def touched_enrolments(uow: BatchUnitOfWork, ctx: ServiceContext, key: SummaryKey
                       ) -> list[Enrolment]:
    """The enrolments whose figures a change of the summary under `key` can move."""
    if ctx.mode is ContextMode.STRICT:
        # In strict mode a key counts for exactly one enrolment: its own collection and
        # context (organic consumption, keyed by the content, counts for none).
        found = uow.enrolments.get(key.dataset, key.user_id, key.collection_key, key.context_key)
        candidates = [] if found is None else [found]
    else:
        candidates = uow.enrolments.of_learner(key.dataset, key.user_id)
    return [e for e in candidates
            if touches(ctx.mode, e, _structure(uow, e.dataset, e.collection_id), key)]


def _structure(uow: BatchUnitOfWork, dataset: str, collection_id: str) -> Structure | None:
    record = uow.enrolments.collection(dataset, collection_id)
    return None if record is None else record.structure


def _ensure_enrolment(uow: BatchUnitOfWork, ctx: ServiceContext, dataset: str, user_id: str,
                      collection_id: str, context_id: str, *, consumed: bool = False,
                      queue: bool = True) -> Enrolment:
    existing = uow.enrolments.get(dataset, user_id, collection_id, context_id)
    if existing is not None and existing.active and not consumed:
        return existing
    enrolment = (replace(existing, active=True) if existing is not None else
                 Enrolment(dataset, user_id, collection_id, context_id, enrolled_at=uow.now))
    return refresh_enrolment(uow, ctx, enrolment, consumed=consumed, queue=queue)


def refresh_enrolment(uow: BatchUnitOfWork, ctx: ServiceContext, enrolment: Enrolment, *,
                      consumed: bool = False, queue: bool = True) -> Enrolment:
    """Recompute an enrolment's figures from its summaries and issue earned certificates;
    a change queues the learner's group figures unless the caller has (`queue`)."""
    record = uow.enrolments.collection(enrolment.dataset, enrolment.collection_id)
    leaves: Sequence[str] = record.structure.leaves if record is not None else ()
    required = record.structure.required if record is not None else frozenset()
    keyed = {c: content_key(ctx.mode, enrolment, c) for c in leaves}
    uow.summaries.load(keyed.values())
    statuses: dict[str, int] = {}
    times: dict[str, int | None] = {}
    scores: list[tuple[float, float]] = []
    for content_id, key in keyed.items():
        summary = uow.summaries.get(key)
        if summary is not None:
            statuses[content_id] = summary.status
            times[content_id] = summary.completed_at
            if summary.best_score is not None and summary.best_max_score:
                scores.append((summary.best_score, summary.best_max_score))
    figures = enrolment_progress(enrolment.figures, required, statuses, times,
                                 consumed=consumed)
    updated = replace(enrolment, figures=figures)
    if record is not None and record.templates:
        percent = (rules.score_percent(sum(s for s, _ in scores), sum(m for _, m in scores))
                   if scores else None)
        issued = [c.name for c in updated.certificates]
        for template in earned(record.templates, figures.status, percent, issued):
            updated = replace(updated, certificates=(
                *updated.certificates, _issue(uow, ctx, updated, template)))
    stored = uow.enrolments.get(*enrolment.pk)
    if stored is None or updated != stored:
        uow.enrolments.put(updated)
        if queue:
            queue_member(uow, enrolment.dataset, enrolment.user_id)
    return updated


def _issue(uow: BatchUnitOfWork, ctx: ServiceContext, enrolment: Enrolment,
           template: Template) -> IssuedCertificate:
    cert_id = uow.new_id()
    token = ctx.sign(certificate_claims(cert_id, template.name, enrolment.dataset,
                                        enrolment.user_id, enrolment.collection_id,
                                        enrolment.context_id, uow.now))
    return IssuedCertificate(cert_id, template.name, token, uow.now)


@dataclass(frozen=True, slots=True)
class Enrol(LearnerCommand):
    dataset: str
    user_id: str
    collection_id: str
    context_id: str | None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, str]:
        _ensure_enrolment(uow, ctx, self.dataset, self.user_id, self.collection_id,
                          enrolment_context(self.collection_id, self.context_id))
        return {"response": "SUCCESS"}


@dataclass(frozen=True, slots=True)
class Unenrol(LearnerCommand):
    dataset: str
    user_id: str
    collection_id: str
    context_id: str | None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, str]:
        context_id = enrolment_context(self.collection_id, self.context_id)
        existing = uow.enrolments.get(self.dataset, self.user_id, self.collection_id, context_id)
        if existing is None:
            raise NotFound("No enrolment for this user, collection and context.",
                           code="ENROLMENT_NOT_FOUND", field="request.collectionId")
        if existing.active:
            uow.enrolments.put(replace(existing, active=False))
            queue_member(uow, self.dataset, self.user_id)
        return {"response": "SUCCESS"}


# --- structures and contexts ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PutCollection(Command):
    dataset: str
    collection_id: str
    name: str
    description: str | None
    logo: str | None
    children: tuple[Node, ...]
    templates: tuple[Template, ...]

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        old = uow.enrolments.collection(self.dataset, self.collection_id)
        version = 1 if old is None else old.structure.version + 1
        record = CollectionRecord(self.dataset, self.collection_id, self.name, self.description,
                                  self.logo, Structure(self.collection_id, version, self.children),
                                  self.templates)
        uow.enrolments.put_collection(record)
        structure_changed(uow, self.dataset, self.collection_id)
        return {"collectionId": self.collection_id, "version": version,
                "leafNodesCount": record.structure.leaf_count,
                "requiredCount": len(record.structure.required)}


@dataclass(frozen=True, slots=True)
class RefreshCollection(Command):
    """Recompute every enrolment of a collection after its structure changed (outbox)."""

    dataset: str
    collection_id: str

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> int:
        enrolled = uow.enrolments.in_collection(self.dataset, self.collection_id)
        for enrolment in enrolled:
            refresh_enrolment(uow, ctx, uow.enrolments.get(*enrolment.pk) or enrolment)
            # Scores in the collection may move with no enrolment figure moving.
            queue_member(uow, enrolment.dataset, enrolment.user_id)
        return len(enrolled)


@dataclass(frozen=True, slots=True)
class PutContext(Command):
    record: ContextRecord

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        uow.enrolments.put_context(self.record)
        return {"contextId": self.record.context_id}


@dataclass(frozen=True, slots=True)
class EraseSummaries(LearnerCommand):
    """Right to erasure: a learner's sessions, summaries, attempts and enrolments."""

    dataset: str
    user_id: str
    collection_id: str | None
    context_id: str | None
    exclusive: ClassVar[bool] = True  # nothing staged earlier in a batch may outlive it

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        queue_member(uow, self.dataset, self.user_id)
        if self.collection_id is None:
            uow.erase(self.dataset, self.user_id, None, None)
            return {}
        enrolment = (self.collection_id, enrolment_context(self.collection_id, self.context_id))
        # The enrolment's own summaries; in content mode progress belongs to the content
        # and outlives the enrolment.
        scope = None if ctx.mode is ContextMode.CONTENT else resolve_key(
            ctx.mode, dataset=self.dataset, user_id=self.user_id, content_id="",
            collection_id=self.collection_id, context_id=self.context_id).scope[2:]
        uow.erase(self.dataset, self.user_id, scope, enrolment)
        return {}


class EventFailed(LearnlogError):
    """One command of a `Many` failed; says which (the whole `Many` is rolled back)."""

    def __init__(self, index: int, error: LearnlogError) -> None:
        super().__init__(error.message, code=error.code, field=error.field)
        self.index = index
        self.error = error


@dataclass(frozen=True, slots=True)
class Many(Command):
    """Several commands applied in order, all or nothing (`POST /v1/events`)."""

    commands: tuple[Command, ...]

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        for index, command in enumerate(self.commands):
            try:
                command.apply(uow, ctx)
            except LearnlogError as error:
                raise EventFailed(index, error) from error
        return {"applied": len(self.commands)}

    def learners(self) -> AbstractSet[Learner]:
        found: set[Learner] = set()
        for command in self.commands:
            found |= command.learners()
        return found

    def parts(self) -> Sequence[Command]:
        return [part for command in self.commands for part in command.parts()]


def prefetch(uow: BatchUnitOfWork, ctx: ServiceContext, commands: Sequence[Command]) -> None:
    """Load every summary (and open session) a batch of view commands will touch, at once."""
    keys = [part.keys.resolve(ctx) for c in commands for part in c.parts()
            if isinstance(part, KeyedCommand)]
    if keys:
        uow.summaries.load(keys)
