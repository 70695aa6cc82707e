"""Assessment rules (SPEC §2.4): latest response per item, totals, replacement, best score."""

from __future__ import annotations

import re

import pytest

from learnlog.domain.assessment import (
    Attempt,
    BestScore,
    ItemResponse,
    best_score,
    build_attempt,
    derive_attempt_id,
    format_score,
    latest_per_item,
    merge_attempt,
    score_percent,
)
from learnlog.domain.keys import SummaryKey

pytestmark = pytest.mark.unit

KEY = SummaryKey("default", "alice", "course", "batch", "quiz-1")


def resp(item: str, ets: int, score: float, max_score: float = 1.0) -> ItemResponse:
    return ItemResponse(item, ets, score, max_score, {"id": item}, {"ets": ets})


def attempt(attempt_id: str, ts: int, scores: list[float], now: int = 0) -> Attempt:
    responses = [resp(f"q{i}", ts + i, s) for i, s in enumerate(scores)]
    return build_attempt(KEY, attempt_id, ts, responses, now or ts)


# --- the worked example ------------------------------------------------------------------

def test_two_attempts_best_is_two_of_three() -> None:
    first = attempt("att-1", 1_000, [1.0, 0.33, 0.0])
    second = attempt("att-2", 2_000, [1.0, 1.0, 0.0])
    assert (first.total_score, first.total_max_score) == (1.33, 3.0)
    assert (second.total_score, second.total_max_score) == (2.0, 3.0)
    assert best_score([first, second]) == BestScore(2.0, 3.0, 2)
    assert best_score([second, first]) == BestScore(2.0, 3.0, 2)


def test_grand_total_of_each_attempt() -> None:
    first = attempt("att-1", 1_000, [1.0, 0.33, 0.0])
    second = attempt("att-2", 2_000, [1.0, 1.0, 0.0])
    assert second.grand_total == "2.0/3.0"
    assert first.grand_total == "1.33/3.0"


def test_best_score_is_the_highest_even_if_older() -> None:
    old_good = attempt("a", 1_000, [1.0, 1.0, 1.0])
    new_bad = attempt("b", 5_000, [0.0, 0.0, 1.0])
    assert best_score([old_good, new_bad]) == BestScore(3.0, 3.0, 2)


def test_best_score_ties_go_to_the_latest_attempt() -> None:
    older = build_attempt(KEY, "z-old", 1_000, [resp("q1", 1, 2.0, 3.0)], 1_000)
    newer = build_attempt(KEY, "a-new", 2_000, [resp("q1", 2, 2.0, 4.0)], 2_000)
    assert best_score([older, newer]) == BestScore(2.0, 4.0, 2)
    assert best_score([newer, older]) == BestScore(2.0, 4.0, 2)


def test_best_score_full_tie_is_deterministic() -> None:
    a = build_attempt(KEY, "a", 1_000, [resp("q1", 1, 1.0, 2.0)], 1)
    b = build_attempt(KEY, "b", 1_000, [resp("q1", 1, 1.0, 5.0)], 1)
    assert best_score([a, b]) == best_score([b, a]) == BestScore(1.0, 5.0, 2)


def test_best_score_of_no_attempts() -> None:
    assert best_score([]) == BestScore(None, None, 0)


def test_best_score_zero_is_a_score() -> None:
    assert best_score([attempt("a", 1, [0.0])]) == BestScore(0.0, 1.0, 1)


# --- item responses -------------------------------------------------------------------------

def test_latest_answer_per_item_wins_by_ets() -> None:
    responses = [resp("q1", 200, 1.0), resp("q1", 100, 0.0), resp("q2", 150, 0.5)]
    kept = latest_per_item(responses)
    assert [(r.item_id, r.ets, r.score) for r in kept] == [("q2", 150, 0.5), ("q1", 200, 1.0)]
    assert latest_per_item(list(reversed(responses))) == kept


def test_latest_answer_tie_on_ets_goes_to_the_later_duplicate() -> None:
    kept = latest_per_item([resp("q1", 100, 0.0), resp("q1", 100, 1.0)])
    assert [r.score for r in kept] == [1.0]


def test_latest_per_item_output_is_sorted_by_time_then_item() -> None:
    kept = latest_per_item([resp("b", 5, 1), resp("a", 5, 1), resp("c", 1, 1)])
    assert [r.item_id for r in kept] == ["c", "a", "b"]


def test_totals_sum_latest_answers_without_truncation() -> None:
    responses = [
        resp("q1", 1, 0.0, 1.0), resp("q1", 9, 1.0, 1.0),  # re-answered: 1.0 counts
        resp("q2", 2, 0.5, 2.0),
        resp("q3", 3, 0.25, 0.5),
    ]
    a = build_attempt(KEY, "att", 5_000, responses, 6_000)
    assert (a.total_score, a.total_max_score) == (1.75, 3.5)
    assert a.grand_total == "1.75/3.5"
    assert len(a.responses) == 3
    assert (a.key, a.attempt_id, a.last_attempted_on, a.created_on, a.updated_on) == (
        KEY, "att", 5_000, 6_000, 6_000)


def test_attempt_without_responses_totals_zero() -> None:
    a = build_attempt(KEY, "att", 1, [], 2)
    assert (a.total_score, a.total_max_score, a.responses) == (0, 0, ())
    assert a.grand_total == "0.0/0.0"


# --- replacement ---------------------------------------------------------------------------

def test_merge_into_nothing_stores_incoming() -> None:
    incoming = attempt("att", 1_000, [1.0])
    assert merge_attempt(None, incoming) is incoming


def test_merge_ignores_older_assessment_ts() -> None:
    stored = attempt("att", 2_000, [1.0])
    assert merge_attempt(stored, attempt("att", 1_999, [0.0])) is None


def test_merge_ignores_equal_assessment_ts() -> None:
    stored = attempt("att", 2_000, [1.0])
    assert merge_attempt(stored, attempt("att", 2_000, [0.0], now=9_999)) is None


def test_merge_replaces_with_newer_and_keeps_created_on() -> None:
    stored = build_attempt(KEY, "att", 2_000, [resp("q1", 1, 1.0)], now=10)
    incoming = build_attempt(KEY, "att", 3_000, [resp("q1", 2, 0.0), resp("q2", 3, 1.0)],
                             now=20)
    merged = merge_attempt(stored, incoming)
    assert merged is not None
    assert merged.created_on == 10
    assert merged.updated_on == 20
    assert merged.last_attempted_on == 3_000
    assert (merged.total_score, merged.total_max_score) == (1.0, 2.0)
    assert merged.responses == incoming.responses
    assert (merged.key, merged.attempt_id) == (KEY, "att")


def test_merge_is_idempotent_for_a_resubmission() -> None:
    stored = attempt("att", 2_000, [1.0])
    merged = merge_attempt(None, stored)
    assert merged is not None
    assert merge_attempt(merged, stored) is None


# --- score formatting ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (1.333, "1.33"),
        (0.5, "0.5"),
        (2, "2.0"),
        (0, "0.0"),
        (0.0, "0.0"),
        (1.33, "1.33"),
        (10, "10.0"),
        (1.1, "1.1"),
        (2.999, "3.0"),
        (0.125, "0.12"),  # half-even, like DecimalFormat's default
        (0.375, "0.38"),
        (-0.5, "-0.5"),
        (0.1 + 0.2, "0.3"),
    ],
)
def test_format_score_like_decimal_format_0_0_hash(value: float, text: str) -> None:
    assert format_score(value) == text


# --- attempt ids and percents ---------------------------------------------------------------

def test_derive_attempt_id_is_deterministic() -> None:
    a = derive_attempt_id(KEY, 1_600_000_000_000)
    assert a == derive_attempt_id(SummaryKey("default", "alice", "course", "batch", "quiz-1"),
                                  1_600_000_000_000)
    assert re.fullmatch(r"[0-9a-f]{32}", a)


@pytest.mark.parametrize(
    "other",
    [
        SummaryKey("default", "bob", "course", "batch", "quiz-1"),
        SummaryKey("default", "alice", "course-2", "batch", "quiz-1"),
        SummaryKey("default", "alice", "course", "batch-2", "quiz-1"),
        SummaryKey("default", "alice", "course", "batch", "quiz-2"),
    ],
)
def test_derive_attempt_id_depends_on_each_key_part(other: SummaryKey) -> None:
    assert derive_attempt_id(other, 1) != derive_attempt_id(KEY, 1)


def test_derive_attempt_id_depends_on_first_event_time() -> None:
    assert derive_attempt_id(KEY, 1) != derive_attempt_id(KEY, 2)


@pytest.mark.parametrize(
    ("score", "max_score", "expected"),
    [
        (1.5, 3.0, 50.0),
        (0.0, 3.0, 0.0),
        (3.0, 3.0, 100.0),
        (2.0, 3.0, 100.0 * 2.0 / 3.0),
        (None, 3.0, None),
        (2.0, None, None),
        (None, None, None),
        (2.0, 0.0, None),
        (0.0, 0.0, None),
        (2.0, -1.0, None),
    ],
)
def test_score_percent(score: float | None, max_score: float | None,
                       expected: float | None) -> None:
    assert score_percent(score, max_score) == expected
