"""How two versions of the same fact become one when instances sync (SPEC §5).

Every rule here is a join: commutative, associative and idempotent. Instances that
exchange facts in any order, any number of times, through any relay, end with the same
fact. Under the single-writer rule only the instance that created a session (or a try,
or an item attempt) changes it, so two versions of one fact differ only because one is
older — and the join of an older and a newer version is the newer one, because each
field only moves one way while its writer works on it: progress, time and the end only
grow, a completion time is stamped once, flags once set stay set, an interaction history
only gets longer. Fields that may move any way (details a client sends, an answer
replaced) come from the version written last; ties are broken by the value itself, so
the choice never depends on which side is "local".

Summaries, enrolment figures and group figures are never merged: they are folds,
recomputed from the merged facts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass, replace
from typing import Any, TypeVar

from .assessment import Attempt
from .enrolment import Enrolment, IssuedCertificate
from .mastery import ItemAttempt, Try
from .summary import Session

T = TypeVar("T")

VersionVector = Mapping[str, int]  # instance id → the highest counter held from it


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not comparable as JSON: {value!r}")


def canonical(value: Any) -> str:
    """A value's canonical JSON (sorted keys): a total order for tie-breaks."""
    return json.dumps(value, sort_keys=True, default=_plain, separators=(",", ":"))


def _earliest(a: int | None, b: int | None) -> int | None:
    """The earlier of two stamps; a missing stamp loses to any stamp."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _last_written(when_a: int, a: T, when_b: int, b: T) -> T:
    """The value written last; equal times: the greater value (canonical JSON)."""
    if when_a != when_b:
        return a if when_a > when_b else b
    return a if canonical(a) >= canonical(b) else b


def _same(what: str, a: Any, b: Any) -> None:
    if a != b:
        raise ValueError(f"cannot merge two different {what}: {a!r} and {b!r}")


def merge_session(a: Session, b: Session) -> Session:
    """Two versions of one session (same id, same key)."""
    _same("sessions", (a.session_id, a.key), (b.session_id, b.key))
    return replace(
        a,
        instance_id=min(a.instance_id, b.instance_id),
        started_at=min(a.started_at, b.started_at),
        ended_at=max(a.ended_at, b.ended_at),
        progress=max(a.progress, b.progress),
        time_spent=max(a.time_spent, b.time_spent),
        completed_at=_earliest(a.completed_at, b.completed_at),
        repeat=a.repeat or b.repeat,
        closed=a.closed or b.closed,
        progress_details=_last_written(a.ended_at, a.progress_details,
                                       b.ended_at, b.progress_details),
        extra_fields=_last_written(a.ended_at, a.extra_fields, b.ended_at, b.extra_fields),
        kind=_last_written(a.ended_at, a.kind, b.ended_at, b.kind),
        level=_last_written(a.ended_at, a.level, b.ended_at, b.level),
    )


def merge_try(a: Try, b: Try) -> Try:
    """Two versions of one exercise try (same key and level). Its criterion is the one it
    started with (a snapshot): the earliest start's, ties broken by value."""
    _same("tries", (a.key, a.level), (b.key, b.level))
    criterion = _last_written(-a.started_at, a.criterion, -b.started_at, b.criterion)
    complete = a.complete or b.complete
    return replace(
        a,
        criterion=criterion,
        started_at=min(a.started_at, b.started_at),
        ended_at=max(a.ended_at, b.ended_at),
        time_spent=max(a.time_spent, b.time_spent),
        complete=complete,
        completed_at=_earliest(a.completed_at, b.completed_at),
        attempt_count=max(a.attempt_count, b.attempt_count),
    )


def _history(a: ItemAttempt, b: ItemAttempt) -> tuple[Mapping[str, Any], ...]:
    """The longer history (a newer version extends an older one); equal lengths: the
    greater (they are equal unless the single-writer rule was broken)."""
    if len(a.history) != len(b.history):
        return a.history if len(a.history) > len(b.history) else b.history
    return a.history if canonical(a.history) >= canonical(b.history) else b.history


def merge_item_attempt(a: ItemAttempt, b: ItemAttempt) -> ItemAttempt:
    """Two versions of one item attempt (same id)."""
    _same("item attempts", (a.attempt_id, a.key, a.level, a.item),
          (b.attempt_id, b.key, b.level, b.item))
    answer = _last_written(a.ended_at, (a.correct, a.answer, a.simple_answer),
                           b.ended_at, (b.correct, b.answer, b.simple_answer))
    return replace(
        a,
        session_id=min(a.session_id, b.session_id),
        correct=answer[0], answer=answer[1], simple_answer=answer[2],
        started_at=min(a.started_at, b.started_at),
        ended_at=max(a.ended_at, b.ended_at),
        time_spent=max(a.time_spent, b.time_spent),
        complete=a.complete or b.complete,
        completed_at=_earliest(a.completed_at, b.completed_at),
        hinted=a.hinted or b.hinted,
        error=a.error or b.error,
        history=_history(a, b),
        ordinal=min(a.ordinal, b.ordinal),
    )


def _attempt_rank(x: Attempt) -> tuple[int, str]:
    return (x.updated_on, canonical([
        x.total_score, x.total_max_score, x.last_attempted_on, x.created_on,
        [(r.item_id, r.ets, r.score, r.max_score, r.item, r.extra) for r in x.responses]]))


def merge_attempt(a: Attempt, b: Attempt) -> Attempt:
    """Two versions of one assessment attempt (same key and attempt id): the one updated
    last, whole (its responses and totals belong together)."""
    _same("attempts", (a.key, a.attempt_id), (b.key, b.attempt_id))
    return a if _attempt_rank(a) >= _attempt_rank(b) else b


def merge_record(when_a: int, a: T, when_b: int, b: T) -> T:
    """Two versions of a record any instance may rewrite (a user, a group, a membership, a
    structure, a tombstone): the one written last; equal times, the greater value."""
    return _last_written(when_a, a, when_b, b)


def _certificates(a: Enrolment, b: Enrolment) -> tuple[IssuedCertificate, ...]:
    """One certificate per template name: the first issued (ties: the smaller id)."""
    first: dict[str, IssuedCertificate] = {}
    for c in (*a.certificates, *b.certificates):
        held = first.get(c.name)
        if held is None or (c.issued_on, c.id) < (held.issued_on, held.id):
            first[c.name] = c
    return tuple(sorted(first.values(), key=lambda c: (c.issued_on, c.name)))


def merge_enrolment(when_a: int, a: Enrolment, when_b: int, b: Enrolment) -> Enrolment:
    """Two versions of one enrolment: enrolled since the earlier time, active as written
    last, each certificate issued once (the first). Figures are a fold of summaries: the
    receiver recomputes them; the join keeps the last written version's."""
    _same("enrolments", a.pk, b.pk)
    last = _last_written(when_a, a, when_b, b)
    return replace(last, enrolled_at=min(a.enrolled_at, b.enrolled_at),
                   certificates=_certificates(a, b))


def join_vectors(a: VersionVector, b: VersionVector) -> dict[str, int]:
    """What two holders hold together: the highest counter from each instance."""
    return {i: max(a.get(i, 0), b.get(i, 0)) for i in sorted(a.keys() | b.keys())}


def held(vector: VersionVector, instance_id: str, counter: int) -> bool:
    """Whether a holder with this vector already has the version (instance, counter)."""
    return counter <= vector.get(instance_id, 0)


Stamp = tuple[int, str, int]  # a fact's or a deletion's (updated_at, instance_id, counter)


def written_before(fact: Stamp, deletion: Stamp) -> bool:
    """Whether a fact was written before a deletion (so the deletion removes it): by the
    deleting instance, a lower counter (its own order, exact); by another, no later time
    (clocks are all two instances share)."""
    if fact[1] == deletion[1]:
        return fact[2] < deletion[2]
    return fact[0] <= deletion[0]


Scope = tuple[str, str]  # (collection key, context key) of summaries; (collection, context)


def erasure_covers(summaries: Scope | None, enrolment: Scope | None, fact: Scope, *,
                   is_enrolment: bool) -> bool:
    """Whether an erasure of the summaries under `summaries` and of `enrolment` (both
    None: every record of the learner) removes a fact: an enrolment (collection, context)
    or a session, attempt or try under (collection key, context key)."""
    if summaries is None and enrolment is None:
        return True
    return fact == (enrolment if is_enrolment else summaries)
