"""Exercise mastery (SPEC §2.4): criteria, tries, item attempts (Kolibri's AttemptLog
rules), progress by criterion, completion and the past attempts a resumed try shows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnlog.domain.errors import InvalidInput
from learnlog.domain.keys import SummaryKey
from learnlog.domain.mastery import (
    COACH_QUIZ,
    PRACTICE_QUIZ,
    Criterion,
    Interaction,
    ItemAttempt,
    Mark,
    Try,
    apply_interactions,
    criterion_of,
    evaluate,
    mark_of,
    next_level,
    past_attempts,
    pick_try,
    quiz_level,
    try_progress,
)

pytestmark = pytest.mark.unit

KEY = SummaryKey("d", "u", "k", "k", "ex1")
NOW = 100_000
M3_OF_5 = Criterion("m_of_n", 3, 5)


def a_try(level: int = 1, criterion: Criterion = M3_OF_5, ended_at: int = 0,
          complete: bool = False, completed_at: int | None = None) -> Try:
    return Try(KEY, level, criterion, 0, ended_at, complete=complete,
               completed_at=completed_at)


def new_ids() -> Callable[[], str]:
    counter = count(1)
    return lambda: f"a{next(counter)}"


def att(attempt_id: str, item: str = "q1", correct: float = 1.0, started_at: int = 0,
        level: int = 1, **fields: Any) -> ItemAttempt:
    base: dict[str, Any] = {"ended_at": started_at, "time_spent": 1.0, "answer": {}}
    return ItemAttempt(attempt_id, KEY, level, "s0", item, correct, started_at,
                       **(base | fields))


def act(item: str = "q1", correct: float = 1.0, time_spent: float = 1.0,
        **fields: Any) -> Interaction:
    return Interaction(item, correct, time_spent, **fields)


def apply(interactions: Sequence[Interaction], existing: Sequence[ItemAttempt] = (),
          t: Try | None = None) -> list[ItemAttempt]:
    return apply_interactions(t or a_try(), existing, "s1", interactions, NOW, new_ids())


def series(corrects: Sequence[float], level: int = 1) -> list[ItemAttempt]:
    return [att(f"x{i:02}", f"q{i}", c, started_at=i * 10, level=level)
            for i, c in enumerate(corrects)]


# --- criteria ------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_in_a_row_criteria(n: int) -> None:
    kind = f"num_correct_in_a_row_{n}"
    assert criterion_of({"type": kind}) == Criterion(kind, n, n)
    assert criterion_of({"type": kind}).shown_attempts == n


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_do_all_needs_n(n: int) -> None:
    crit = criterion_of({"type": "do_all", "n": n})
    assert crit == Criterion("do_all", n, n)
    assert crit.shown_attempts == 10


@pytest.mark.parametrize("model", [
    {"type": "do_all"}, {"type": "do_all", "n": True}, {"type": "do_all", "n": 0},
    {"type": "do_all", "n": 1001}, {"type": "do_all", "n": "5"},
    {"type": "m_of_n", "m": 1}, {"type": "m_of_n", "m": 1, "n": 0},
    {"type": "m_of_n", "m": 1, "n": True}, {"type": "m_of_n", "m": 1, "n": 1001},
])
def test_missing_or_bad_n(model: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as err:
        criterion_of(model)
    assert (err.value.code, err.value.field) == ("MANDATORY_PARAMETER_MISSING",
                                                 "mastery_model.n")


@pytest.mark.parametrize(("m", "n"), [(3, 5), (5, 5), (1, 1), (1, 1000)])
def test_m_of_n(m: int, n: int) -> None:
    crit = criterion_of({"type": "m_of_n", "m": m, "n": n})
    assert crit == Criterion("m_of_n", m, n)
    assert crit.shown_attempts == n
    assert crit.as_json() == {"type": "m_of_n", "m": m, "n": n}


@pytest.mark.parametrize("m", [None, 0, 6, True, "3", 2.0])
def test_m_of_n_needs_m_from_1_to_n(m: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        criterion_of({"type": "m_of_n", "m": m, "n": 5})
    assert err.value.field == "mastery_model.m"


@pytest.mark.parametrize("model", [{}, {"type": None}, {"type": "pre_post_test"},
                                   {"type": "skill_check"}, {"type": "m_of_n_x"}])
def test_unknown_type(model: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as err:
        criterion_of(model)
    assert (err.value.code, err.value.field) == ("INVALID_PARAMETER_VALUE",
                                                 "mastery_model.type")


def test_field_prefixes_the_reported_field() -> None:
    cases: list[tuple[dict[str, Any], str]] = [({"type": "x"}, "type"), ({"type": "do_all"}, "n"),
                                               ({"type": "m_of_n", "n": 2, "m": 3}, "m")]
    for model, suffix in cases:
        with pytest.raises(InvalidInput) as err:
            criterion_of(model, field="body.model")
        assert err.value.field == f"body.model.{suffix}"


# --- tries ---------------------------------------------------------------------------------

def test_pick_try() -> None:
    old_done = a_try(1, ended_at=10, complete=True)
    new_done = a_try(2, ended_at=30, complete=True)
    open_old, open_new = a_try(3, ended_at=5), a_try(4, ended_at=20)
    for repeat in (False, True):
        assert pick_try([], repeat=repeat) is None
        assert pick_try([new_done, open_old, open_new], repeat=repeat) == open_new
        assert pick_try([old_done, open_new], repeat=repeat) == open_new
    assert pick_try([old_done, new_done], repeat=False) == new_done
    assert pick_try([old_done, new_done], repeat=True) is None
    assert pick_try(iter([old_done]), repeat=False) == old_done


def test_next_level() -> None:
    assert next_level([]) == 1
    assert next_level([a_try(1), a_try(3), a_try(2)]) == 4


def test_history_entries() -> None:
    assert act(error=True, hinted=True).history_entry() == {"type": "error"}
    assert act(hinted=True, answer={"r": 1}).history_entry() == {"type": "hint",
                                                                  "answer": {"r": 1}}
    assert act(hinted=True).history_entry() == {"type": "hint", "answer": {}}
    assert act(correct=0.5).history_entry() == {"type": "answer", "answer": {},
                                                "correct": 0.5}


# --- item attempts -------------------------------------------------------------------------

def test_first_interaction_creates_an_attempt() -> None:
    [made] = apply([act(correct=1.0, time_spent=5, answer={"r": "a"}, simple_answer="a")])
    assert made == ItemAttempt(
        "a1", KEY, 1, "s1", "q1", 1.0, NOW - 5000, NOW, 5, {"r": "a"}, "a",
        history=({"type": "answer", "answer": {"r": "a"}, "correct": 1.0},), ordinal=1)
    [done] = apply([act(complete=True)])
    assert (done.complete, done.completed_at) == (True, NOW)


def test_hint_then_error_is_one_attempt() -> None:
    [made] = apply([act(correct=0, time_spent=10, hinted=True, answer={"r": "x"}),
                    act(correct=0, time_spent=20, error=True)])
    assert (made.time_spent, made.hinted, made.error, made.correct) == (20, True, True, 0)
    assert made.history == ({"type": "hint", "answer": {"r": "x"}}, {"type": "error"})


def test_hint_then_error_with_replace_replaces_correct() -> None:
    [made] = apply([act(correct=0, time_spent=10, hinted=True, answer={"r": "x"}),
                    act(correct=1, time_spent=20, error=True, replace=True,
                        answer={"r": "y"}, simple_answer="y")])
    assert (made.correct, made.answer, made.simple_answer) == (1, {"r": "y"}, "y")
    assert (made.time_spent, made.hinted, made.error, len(made.history)) == (20, True, True, 2)


def test_first_correctness_sticks_without_replace() -> None:
    [made] = apply([act(correct=1, answer={"r": 1}, simple_answer="1"),
                    act(correct=0, answer={"r": 2}, simple_answer="2")])
    assert (made.correct, made.answer, made.simple_answer) == (1, {"r": 1}, "1")
    assert len(made.history) == 2


def test_hinted_after_a_correct_answer_does_not_set_hinted() -> None:
    [made] = apply([act(correct=1), act(correct=0, hinted=True)])
    assert made.hinted is False
    assert made.history[-1] == {"type": "hint", "answer": {}}
    [wrong] = apply([act(correct=0), act(correct=0, hinted=True)])
    assert wrong.hinted is True


def test_errored_attempt() -> None:
    [made] = apply([act(correct=0, error=True)])
    assert (made.error, made.answer, made.history) == (True, {}, ({"type": "error"},))
    [still] = apply([act(attempt_id="a1", correct=1)], existing=[made])
    assert still.error is True


def test_complete_is_sticky_and_stamped_once() -> None:
    done = att("e1", complete=True, completed_at=50, ended_at=60)
    [upd] = apply([act(attempt_id="e1", complete=False)], existing=[done])
    assert (upd.complete, upd.completed_at, upd.ended_at) == (True, 50, NOW)
    [made] = apply([act(), act(complete=True)])
    assert (made.complete, made.completed_at) == (True, NOW)


def test_update_by_attempt_id() -> None:
    old = att("e1", correct=0, ended_at=NOW + 5, history=({"type": "error"},))
    [upd] = apply([act(attempt_id="e1", correct=1, time_spent=30)], existing=[old])
    assert (upd.attempt_id, upd.correct, upd.time_spent, upd.ended_at) == ("e1", 0, 30, NOW + 5)
    assert upd.history == ({"type": "error"}, {"type": "answer", "answer": {}, "correct": 1})


def test_update_by_id_twice_in_one_batch_accumulates() -> None:
    out = apply([act(attempt_id="e1", hinted=True), act("q2"), act(attempt_id="e1")],
                existing=[att("e1", correct=0)])
    assert [a.attempt_id for a in out] == ["e1", "a1"]
    assert (len(out[0].history), out[0].hinted) == (2, True)


@pytest.mark.parametrize("bad", ["nope", "e2"])
def test_unknown_or_other_item_id_names_the_group(bad: str) -> None:
    existing = [att("e1"), att("e2", item="q9")]
    with pytest.raises(InvalidInput) as err:
        apply([act(), act(), act("q2"), act(attempt_id=bad)], existing=existing)
    assert (err.value.code, err.value.field) == ("INVALID_PARAMETER_VALUE",
                                                 "interactions[2].id")


def test_replace_without_id_updates_the_latest_attempt_at_the_item() -> None:
    existing = [att("e1", ended_at=20), att("e2", ended_at=10), att("e3", "q2", ended_at=30)]
    [upd] = apply([act(correct=0, replace=True)], existing=existing)
    assert (upd.attempt_id, upd.correct, len(upd.history)) == ("e1", 0, 1)
    [made] = apply([act("q3", correct=0, replace=True)], existing=existing)
    assert (made.attempt_id, made.item, made.correct) == ("a1", "q3", 0)


def test_replace_without_id_keeps_earlier_updates_of_the_same_batch() -> None:
    # The existing attempt ended at `now`: the one updated in this batch must still win.
    out = apply([act(attempt_id="e1", correct=0, hinted=True), act("q2"),
                 act(correct=1, replace=True)], existing=[att("e1", correct=0, ended_at=NOW)])
    first = next(a for a in out if a.attempt_id == "e1")
    assert (first.correct, first.hinted, len(first.history)) == (1, True, 2)


def test_non_consecutive_repeats_are_separate_attempts() -> None:
    out = apply([act(correct=1), act("q2"), act(correct=0)])
    assert [(a.attempt_id, a.item, a.correct, a.ordinal) for a in out] == [
        ("a1", "q1", 1, 1), ("a2", "q2", 1, 2), ("a3", "q1", 0, 3)]
    assert apply([]) == []
    # creation order continues from the try's existing attempts and breaks start-time ties
    out = apply([act("q2"), act("q3")], existing=[att("e1", ordinal=4)])
    assert [a.ordinal for a in out] == [5, 6]
    assert [a["id"] for a in past_attempts(a_try(), out)] == ["a2", "a1"]


@settings(database=None, deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0]), st.booleans(), st.booleans(),
                          st.floats(0, 100)), min_size=1, max_size=8))
def test_property_first_correctness_and_sticky_error(
        steps: list[tuple[float, bool, bool, float]]) -> None:
    interactions = [act(correct=c, error=e, hinted=h, time_spent=s) for c, e, h, s in steps]
    [made] = apply(interactions)
    assert made.correct == steps[0][0]
    assert made.error is any(e for _, e, _, _ in steps)
    assert made.time_spent == steps[-1][3]
    assert len(made.history) == len(steps)


# --- progress and completion ---------------------------------------------------------------

def test_progress_without_attempts_of_this_level() -> None:
    assert try_progress(a_try(), []) == 0.0
    assert try_progress(a_try(), series([1, 1, 1], level=2)) == 0.0


@pytest.mark.parametrize(("corrects", "expected"), [
    ([1, 1, 0, 1], 1.0), ([1, 0, 1], 2 / 3), ([0, 0], 0.001), ([0.5], 0.5 / 3),
    ([1, 1, 0, 0, 0, 0], 1 / 3), ([1, 1, 1, 1, 1], 1.0),
])
def test_progress_m_of_n(corrects: list[float], expected: float) -> None:
    attempts = series(corrects)
    assert try_progress(a_try(), attempts) == pytest.approx(expected)
    assert try_progress(a_try(), reversed(attempts)) == pytest.approx(expected)
    # The marks the writer reads instead of whole attempts give the same progress.
    marks = [mark_of(a) for a in attempts]
    assert all(isinstance(m, Mark) and m.order == a.order
               for m, a in zip(marks, attempts, strict=True))
    assert try_progress(a_try(), reversed(marks)) == pytest.approx(expected)


def test_progress_orders_by_start_then_id() -> None:
    tied = [att("b", correct=0, started_at=5), att("a", correct=0, started_at=5)]
    crit = Criterion("num_correct_in_a_row_2", 2, 2)
    attempts = [att("z", started_at=1), *tied, att("y", started_at=9)]
    assert try_progress(a_try(criterion=crit), attempts) == pytest.approx(0.5)
    assert try_progress(a_try(criterion=Criterion("m_of_n", 1, 1)), tied[:1]) == 0.001


def test_progress_in_a_row() -> None:
    crit = a_try(criterion=criterion_of({"type": "num_correct_in_a_row_3"}))
    assert try_progress(crit, series([1, 1, 0, 1, 1])) == pytest.approx(2 / 3)
    assert try_progress(crit, series([0, 1, 1, 1])) == 1.0


def test_progress_do_all() -> None:
    crit = a_try(criterion=criterion_of({"type": "do_all", "n": 3}))
    assert try_progress(crit, series([1, 1])) == pytest.approx(2 / 3)
    assert try_progress(crit, series([1, 1, 1])) == 1.0


def test_evaluate_adds_time_and_completes_once() -> None:
    t = replace(a_try(ended_at=NOW + 1), time_spent=4.0)
    after, progress = evaluate(t, series([1, 0]), NOW, 2.5)
    assert (after.time_spent, after.ended_at, after.complete, after.completed_at) == (
        6.5, NOW + 1, False, None)
    assert progress == pytest.approx(1 / 3)
    done, progress = evaluate(after, series([1, 1, 1]), NOW + 10)
    assert (done.complete, done.completed_at, done.ended_at, progress) == (
        True, NOW + 10, NOW + 10, 1.0)
    again, progress = evaluate(done, series([1, 1, 1, 0, 0, 0, 0, 0]), NOW + 20, 1.0)
    assert (again.complete, again.completed_at, progress) == (True, NOW + 10, 1.0)
    assert again.time_spent == 7.5


# --- past attempts -------------------------------------------------------------------------
SHOWN_KEYS = {"id", "item", "correct", "complete", "hinted", "error", "answer", "time_spent"}

@pytest.mark.parametrize(("criterion", "shown"), [
    (M3_OF_5, 5), (Criterion("num_correct_in_a_row_2", 2, 2), 2),
    (Criterion("do_all", 3, 3), 10), (Criterion("do_all", 20, 20), 10),
])
def test_past_attempts_newest_first_truncated(criterion: Criterion, shown: int) -> None:
    attempts = series([1.0] * 12) + series([0.0] * 3, level=2)
    out = past_attempts(a_try(criterion=criterion), attempts)
    assert [a["id"] for a in out] == [f"x{i:02}" for i in range(11, 11 - shown, -1)]
    assert all(set(a) == SHOWN_KEYS for a in out)


def test_past_attempts_shows_the_attempt() -> None:
    one = att("e1", answer={"r": 1}, hinted=True, time_spent=3.0, level=2)
    assert past_attempts(a_try(2), [one, att("e0")]) == [
        {"id": "e1", "item": "q1", "correct": 1.0, "complete": False, "hinted": True,
         "error": False, "answer": {"r": 1}, "time_spent": 3.0}]


# -- quizzes: random negative levels, no rule, submitted with progress 1 --------------------

def test_a_quiz_criterion_round_trips_and_shows_every_attempt() -> None:
    assert criterion_of({"type": "quiz"}) == PRACTICE_QUIZ
    for criterion in (PRACTICE_QUIZ, COACH_QUIZ, M3_OF_5):
        assert Criterion.from_json(criterion.as_json()) == criterion
    assert COACH_QUIZ.as_json() == {"type": "quiz", "coach_assigned": True}
    assert COACH_QUIZ.shown_attempts is None
    t = a_try(-5, COACH_QUIZ)
    attempts = [att(f"a{n}", f"q{n}", started_at=n, level=-5) for n in range(15)]
    assert len(past_attempts(t, attempts)) == 15


def test_quiz_and_exercise_tries_are_never_confused() -> None:
    exercise, quiz = a_try(1, ended_at=5), a_try(-7, COACH_QUIZ, ended_at=9)
    assert pick_try([exercise, quiz], repeat=False) == exercise
    assert pick_try([exercise, quiz], repeat=False, quiz=True) == quiz
    assert pick_try([exercise], repeat=False, quiz=True) is None
    assert next_level([exercise, quiz]) == 2


def test_quiz_levels_are_negative_and_unused() -> None:
    draws = iter([-3, -3, -1, -9])
    level = quiz_level([a_try(-3, COACH_QUIZ)], lambda low, high: next(draws))
    assert level == -1
    assert quiz_level([], lambda low, high: low) == -(2**31)
    assert quiz_level([], lambda low, high: high) == -1


def test_a_quiz_completes_when_submitted_not_by_its_answers() -> None:
    t = a_try(-2, COACH_QUIZ)
    answers = [att("a1", level=-2)]
    still, progress = evaluate(t, answers, NOW, 10.0, reported=0.5)
    assert (still.complete, progress, still.time_spent) == (False, 0.5, 10.0)
    done, progress = evaluate(still, answers, NOW + 1, reported=1.0)
    assert (done.complete, done.completed_at, progress) == (True, NOW + 1, 1.0)
