"""Exercise mastery, decided on the server (SPEC §2.4, Kolibri's MasteryLog and AttemptLog).

A *try* is one go at an exercise (Kolibri's MasteryLog, keyed by summary key and
`mastery_level` 1, 2, 3…) or at a quiz (a random negative level, so that two devices
starting a quiz offline do not collide); it carries the criterion in force when it started. An *item
attempt* is the learner's work on one question within a try (Kolibri's AttemptLog). The
try's progress is computed from its item attempts by its criterion:

    progress = min(Σ correct of the latest n item attempts / m, 1), at least 0.001 once
    any attempt exists; the try completes when progress reaches 1 (sticky).

A quiz try has no mastery rule: it completes when it is submitted (progress 1), and a
submitted coach-assigned quiz takes no more work.

Item rules: an item's first correctness sticks unless the interaction says `replace`;
`hinted` is not set once the item is correct; `error` and `complete` are sticky; the
attempt's time is the latest interaction's (absolute, not added).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import groupby
from typing import Any, NamedTuple, Protocol, TypeGuard

from .errors import InvalidInput
from .keys import SummaryKey

IN_A_ROW = {"num_correct_in_a_row_2": 2, "num_correct_in_a_row_3": 3,
            "num_correct_in_a_row_5": 5, "num_correct_in_a_row_10": 10}
QUIZ = "quiz"
CRITERIA = ("m_of_n", "do_all", *IN_A_ROW, QUIZ)
DEFAULT_PAST_ATTEMPTS = 10
FLOOR = 0.001
LOWEST_QUIZ_LEVEL = -(2**31)


@dataclass(frozen=True, slots=True)
class Criterion:
    """When a try is mastered: `m` correct among the latest `n` item attempts."""

    type: str
    m: int
    n: int
    coach_assigned: bool = False

    def as_json(self) -> dict[str, Any]:
        if self.is_quiz:
            return {"type": QUIZ, "coach_assigned": self.coach_assigned}
        return {"type": self.type, "m": self.m, "n": self.n}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Criterion:
        """A criterion as `as_json` stored it."""
        if data["type"] == QUIZ:
            return cls(QUIZ, 0, 0, bool(data.get("coach_assigned")))
        return cls(data["type"], data["m"], data["n"])

    @property
    def is_quiz(self) -> bool:
        return self.type == QUIZ

    @property
    def shown_attempts(self) -> int | None:
        """How many past attempts a resumed try shows: n for m_of_n and in-a-row, all for
        a quiz, else 10."""
        if self.is_quiz:
            return None
        return DEFAULT_PAST_ATTEMPTS if self.type == "do_all" else self.n

    @property
    def window(self) -> int | None:
        """How many of a try's latest attempts its rules ever look at (progress over the
        latest n, the attempts a resumed try shows); None: all of them (a quiz)."""
        shown = self.shown_attempts
        return None if shown is None else max(self.n, shown)


PRACTICE_QUIZ = Criterion(QUIZ, 0, 0)
COACH_QUIZ = Criterion(QUIZ, 0, 0, coach_assigned=True)


def criterion_of(model: Mapping[str, Any], field: str = "mastery_model") -> Criterion:
    """The criterion a mastery model names. `do_all` needs `n`, the number of items (the
    server does not hold the exercise's items); `m_of_n` needs 1 <= m <= n."""
    kind = model.get("type")
    if kind == QUIZ:  # a practice quiz: its tries take negative levels, it has no rule
        return PRACTICE_QUIZ
    if kind in IN_A_ROW:
        count = IN_A_ROW[kind]
        return Criterion(kind, count, count)
    m, n = model.get("m"), model.get("n")
    if kind == "do_all":
        if not _count(n):
            raise InvalidInput("do_all needs n, the number of items (1 to 1000).",
                               code="MANDATORY_PARAMETER_MISSING", field=f"{field}.n")
        return Criterion("do_all", n, n)
    if kind == "m_of_n":
        if not _count(n):
            raise InvalidInput("m_of_n needs n (1 to 1000).",
                               code="MANDATORY_PARAMETER_MISSING", field=f"{field}.n")
        if not _count(m) or m > n:
            raise InvalidInput("m_of_n needs m, from 1 to n.",
                               code="MANDATORY_PARAMETER_MISSING", field=f"{field}.m")
        return Criterion("m_of_n", m, n)
    raise InvalidInput(f"mastery_model.type must be one of {', '.join(CRITERIA)}.",
                       code="INVALID_PARAMETER_VALUE", field=f"{field}.type")


def criterion_for(kind: str, model: Mapping[str, Any] | None) -> Criterion | None:
    """The criterion of a content: exercises must name one, other kinds must not."""
    if kind == "exercise":
        if model is None:
            raise InvalidInput("An exercise needs a mastery_model.",
                               code="MANDATORY_PARAMETER_MISSING", field="mastery_model")
        return criterion_of(model)
    if model is not None:
        raise InvalidInput("Only exercises have a mastery_model.",
                           code="INVALID_PARAMETER_VALUE", field="mastery_model")
    return None


def _count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1000


@dataclass(frozen=True, slots=True)
class Try:
    """One go at an exercise (a MasteryLog)."""

    key: SummaryKey
    level: int
    criterion: Criterion
    started_at: int
    ended_at: int
    time_spent: float = 0.0
    complete: bool = False
    completed_at: int | None = None
    attempt_count: int = 0  # item attempts in the try (Kolibri's totalattempts)


def pick_try(tries: Iterable[Try], *, repeat: bool, quiz: bool = False) -> Try | None:
    """The try a new session continues, or None when a new one must start.

    Quiz tries (negative levels) and exercise tries (positive) of the same content are
    never confused. An incomplete try is preferred, then the newest; a completed one is
    continued unless the learner asked to `repeat`.
    """
    ordered = sorted((t for t in tries if (t.level < 0) == quiz),
                     key=lambda t: (t.complete, -t.ended_at, -t.level))
    if not ordered or (ordered[0].complete and repeat):
        return None
    return ordered[0]


def next_level(tries: Iterable[Try]) -> int:
    """Exercise levels count up from 1."""
    return max((t.level for t in tries if t.level > 0), default=0) + 1


def quiz_level(tries: Iterable[Try], draw: Callable[[int, int], int]) -> int:
    """A quiz try's level: a random negative integer not used yet (`draw(a, b)` picks one
    from a to b, like `random.randint`)."""
    used = {t.level for t in tries}
    while True:
        level = draw(LOWEST_QUIZ_LEVEL, -1)
        if level not in used:
            return level


@dataclass(frozen=True, slots=True)
class Interaction:
    """One interaction with a question, as a client sends it."""

    item: str
    correct: float
    time_spent: float
    attempt_id: str | None = None
    complete: bool = False
    answer: Mapping[str, Any] | None = None
    simple_answer: str | None = None
    error: bool = False
    hinted: bool = False
    replace: bool = False

    def history_entry(self) -> dict[str, Any]:
        if self.error:
            return {"type": "error"}
        if self.hinted:
            return {"type": "hint", "answer": dict(self.answer or {})}
        return {"type": "answer", "answer": dict(self.answer or {}), "correct": self.correct}


@dataclass(frozen=True, slots=True)
class ItemAttempt:
    """The learner's work on one question within a try (an AttemptLog)."""

    attempt_id: str
    key: SummaryKey
    level: int
    session_id: str
    item: str
    correct: float
    started_at: int
    ended_at: int
    time_spent: float
    answer: Mapping[str, Any]
    simple_answer: str | None = None
    complete: bool = False
    completed_at: int | None = None
    hinted: bool = False
    error: bool = False
    history: tuple[Mapping[str, Any], ...] = ()
    ordinal: int = 0  # 1, 2, 3… in the order the try's attempts were created here

    @property
    def order(self) -> tuple[int, int, str]:
        """Attempts are ordered by start, then creation, then id (after a merge)."""
        return (self.started_at, self.ordinal, self.attempt_id)

    def shown(self) -> dict[str, Any]:
        """The fields Kolibri shows of an attempt (`pastattempts`, update answers)."""
        return {"id": self.attempt_id, "item": self.item, "correct": self.correct,
                "complete": self.complete, "hinted": self.hinted, "error": self.error,
                "answer": dict(self.answer), "time_spent": self.time_spent}


class Scored(Protocol):
    """What a criterion reads of an item attempt: its try, its place in it, its score."""

    @property
    def level(self) -> int: ...

    @property
    def order(self) -> tuple[int, int, str]: ...

    @property
    def correct(self) -> float: ...

    @property
    def ordinal(self) -> int: ...


class Mark(NamedTuple):
    """An item attempt as a criterion reads it, without the rest of the attempt (answer,
    history): what an interaction's evaluation needs of the try's other attempts."""

    attempt_id: str
    level: int
    started_at: int
    ordinal: int
    correct: float

    @property
    def order(self) -> tuple[int, int, str]:
        return (self.started_at, self.ordinal, self.attempt_id)


def mark_of(a: ItemAttempt) -> Mark:
    return Mark(a.attempt_id, a.level, a.started_at, a.ordinal, a.correct)


def _created(attempt_id: str, t: Try, session_id: str, first: Interaction, now: int,
             ordinal: int) -> ItemAttempt:
    return ItemAttempt(
        attempt_id=attempt_id, key=t.key, level=t.level, session_id=session_id,
        item=first.item, correct=first.correct,
        started_at=now - int(first.time_spent * 1000), ended_at=now,
        time_spent=first.time_spent, answer=dict(first.answer or {}),
        simple_answer=first.simple_answer, complete=first.complete,
        completed_at=now if first.complete else None, hinted=first.hinted,
        error=first.error, history=(first.history_entry(),), ordinal=ordinal)


def _updated(attempt: ItemAttempt, given: Interaction, now: int) -> ItemAttempt:
    correct, answer, simple = attempt.correct, attempt.answer, attempt.simple_answer
    if given.replace:
        correct, answer, simple = given.correct, dict(given.answer or {}), given.simple_answer
    complete = attempt.complete or given.complete
    return replace(
        attempt, correct=correct, answer=answer, simple_answer=simple,
        ended_at=max(attempt.ended_at, now), time_spent=given.time_spent,
        error=attempt.error or given.error,
        hinted=attempt.hinted or (given.hinted and attempt.correct < 1),
        complete=complete,
        completed_at=attempt.completed_at if attempt.completed_at is not None
        else (now if complete else None),
        history=(*attempt.history, given.history_entry()))


def apply_interactions(t: Try, existing: Sequence[ItemAttempt], session_id: str,
                       interactions: Sequence[Interaction], now: int,
                       new_id: Any) -> list[ItemAttempt]:
    """The item attempts the interactions create or change, in order.

    Consecutive interactions with the same item form one group. A group updates the
    attempt its first interaction names by `attempt_id` (which must belong to this try), or
    with `replace` the try's attempt at that item; otherwise its first interaction creates
    an attempt and the others update it. `new_id()` gives fresh attempt ids.
    """
    held = {a.attempt_id: a for a in existing}
    changed: dict[str, ItemAttempt] = {}
    # `existing` may be a window of the try's attempts: its count continues the ordinals.
    ordinal = max([t.attempt_count, *(a.ordinal for a in existing)])
    for index, (item, run) in enumerate(groupby(interactions, key=lambda i: i.item)):
        group = list(run)
        first = group[0]
        target: ItemAttempt | None = None
        if first.attempt_id is not None:
            target = changed.get(first.attempt_id) or held.get(first.attempt_id)
            if target is None or target.item != item:
                raise InvalidInput(
                    f"Attempt {first.attempt_id} is not an attempt at {item} in this try.",
                    code="INVALID_PARAMETER_VALUE", field=f"interactions[{index}].id")
        elif first.replace:
            at_item = [a for a in {**held, **changed}.values() if a.item == item]
            target = max(at_item, key=lambda a: (a.ended_at, a.attempt_id), default=None)
        if target is None:
            ordinal += 1
            target = _created(new_id(), t, session_id, first, now, ordinal)
            group = group[1:]
        for given in group:
            target = _updated(target, given, now)
        changed[target.attempt_id] = target
    return list(changed.values())


def counted(t: Try, attempts: Iterable[Scored]) -> Try:
    """The try with these attempts counted: its count reaches their highest ordinal (the
    ones `apply_interactions` created, or stored ones read as marks), so new attempts'
    ordinals continue after every one of them."""
    top = max((a.ordinal for a in attempts), default=0)
    return t if top <= t.attempt_count else replace(t, attempt_count=top)


def try_progress(t: Try, attempts: Iterable[Scored]) -> float:
    """The try's progress by its criterion, from its item attempts (oldest first)."""
    ordered = sorted((a for a in attempts if a.level == t.level), key=lambda a: a.order)
    if not ordered:
        return 0.0
    correct = sum(a.correct for a in ordered[-t.criterion.n:])
    return max(FLOOR, min(correct / t.criterion.m, 1.0))


def evaluate(t: Try, attempts: Iterable[Scored], now: int, time_delta: float = 0.0,
             reported: float = 0.0) -> tuple[Try, float]:
    """The try after new work (time added, completion when mastered) and its progress.

    An exercise's progress comes from its attempts by its criterion; a quiz's is the one
    the client `reported` (normalized): it completes when submitted with progress 1."""
    progress = reported if t.criterion.is_quiz else try_progress(t, attempts)
    complete = t.complete or progress >= 1.0
    return replace(
        t, ended_at=max(t.ended_at, now), time_spent=t.time_spent + time_delta,
        complete=complete,
        completed_at=t.completed_at if t.completed_at is not None
        else (now if complete else None)), (1.0 if complete else progress)


def past_attempts(t: Try, attempts: Iterable[ItemAttempt]) -> list[dict[str, Any]]:
    """The try's latest attempts, newest first, as many as its criterion shows."""
    ordered = sorted((a for a in attempts if a.level == t.level), key=lambda a: a.order,
                     reverse=True)
    return [a.shown() for a in ordered[:t.criterion.shown_attempts]]


def total_progress(contents: Iterable[tuple[float, int | None]]) -> int:
    """Kolibri's total of a learner's progress over (summary progress, completed tries or
    None when the content has no tries): a completed content counts 1, an exercise its
    completed tries (0 while it has only incomplete ones), partial progress nothing."""
    total = 0.0
    for progress, completed_tries in contents:
        if completed_tries is not None:
            total += completed_tries
        elif progress >= 1.0:
            total += progress
    return int(total)
