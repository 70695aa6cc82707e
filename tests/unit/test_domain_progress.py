"""Progress arithmetic (SPEC §2.2, §4.1.2): normalize, percent conversion, derivation."""

from __future__ import annotations

import math
from typing import Any

import pytest

from learnlog.domain.progress import (
    COMPLETED,
    IN_PROGRESS,
    NOT_STARTED,
    from_percent,
    normalize,
    percent_from_details,
    to_percent,
)

pytestmark = pytest.mark.unit


def test_status_constants() -> None:
    assert (NOT_STARTED, IN_PROGRESS, COMPLETED) == (0, 1, 2)


# --- normalize -------------------------------------------------------------------------

def test_normalize_point_one_plus_point_one_is_exactly_point_two() -> None:
    assert normalize(0.1 + 0.1) == 0.2


def test_normalize_point_one_does_not_round_up_to_next_thousandth() -> None:
    # 0.1 * 1000 == 100.00000000000001 in binary floating point
    assert normalize(0.1) == 0.1
    assert normalize(0.7) == 0.7


def test_normalize_clamps_above_one() -> None:
    assert normalize(0.9 + 0.9) == 1.0
    assert normalize(42.0) == 1.0


def test_normalize_sum_just_below_one_rounds_up_to_one() -> None:
    assert normalize(0.666 + 0.3331) == 1.0


def test_normalize_almost_one_completes() -> None:
    assert normalize(0.9999999) == 1.0


def test_normalize_negative_is_zero() -> None:
    assert normalize(-0.5) == 0.0
    assert normalize(-1e-12) == 0.0


def test_normalize_nan_is_zero() -> None:
    assert normalize(float("nan")) == 0.0


def test_normalize_rounds_up_tiny_progress_to_a_thousandth() -> None:
    assert normalize(0.0001) == 0.001


def test_normalize_rounds_up_between_thousandths() -> None:
    assert normalize(0.2341) == 0.235
    assert normalize(0.0) == 0.0
    assert normalize(1.0) == 1.0


def test_normalize_is_identity_on_every_thousandth() -> None:
    for k in range(1001):
        assert normalize(k / 1000) == k / 1000, k


def test_normalize_is_idempotent_on_sums() -> None:
    for a in range(0, 1001, 37):
        for b in range(0, 1001, 41):
            once = normalize(a / 1000 + b / 1000)
            assert normalize(once) == once
            assert once == min(1.0, (a + b) / 1000)


def test_normalize_of_huge_or_infinite_values_clamps() -> None:
    # SPEC §2.2: normalize(p) = max(0, min(1, ceil(p*1000)/1000)). For p = inf or any
    # finite p above ~1.8e305 that is 1 (and 0 for -inf), but math.ceil raises
    # OverflowError on the infinite product: an uncaught 500 for a Kolibri
    # progress_delta of 1e306.
    assert normalize(1e306) == 1.0
    assert normalize(float("inf")) == 1.0
    assert normalize(float("-inf")) == 0.0


# --- percent -----------------------------------------------------------------------------

def test_to_percent_point_29_is_29() -> None:
    assert to_percent(0.29) == 29


def test_to_percent_point_57_is_57() -> None:
    assert to_percent(0.57) == 57


def test_to_percent_floors() -> None:
    assert to_percent(0.0) == 0
    assert to_percent(0.999) == 99
    assert to_percent(1.0) == 100
    assert to_percent(0.005) == 0


def test_to_percent_of_every_thousandth_is_floor() -> None:
    for k in range(1001):
        assert to_percent(normalize(k / 1000)) == k // 10, k


def test_from_percent_normalises() -> None:
    assert from_percent(29) == 0.29
    assert from_percent(100) == 1.0
    assert from_percent(150) == 1.0
    assert from_percent(-3) == 0.0
    assert from_percent(33.33) == 0.334


def test_every_integer_percent_round_trips() -> None:
    for p in range(101):
        assert to_percent(from_percent(p)) == p, p


# --- percent_from_details (SPEC §4.1.2) --------------------------------------------------

@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ({"progress": 50}, 50.0),
        ({"progress": 12.5}, 12.5),
        ({"progress": 0}, 0.0),
        ({"progress": 150}, 100.0),
        ({"progress": -5}, 0.0),
        ({"visitedLength": 30, "totalLength": 120}, 25.0),
        ({"visitedLength": 0, "totalLength": 120}, 0.0),
        ({"visitedLength": 200, "totalLength": 100}, 100.0),
        ({"visitedLength": -1, "totalLength": 100}, 0.0),
        ({"endPageSeen": True}, 100.0),
        ({"visitedContentEnd": True}, 100.0),
        ({"progress": 40, "visitedLength": 1, "totalLength": 2}, 40.0),
        ({"progress": "x", "visitedLength": 1, "totalLength": 2}, 50.0),
        ({"endPageSeen": True, "progress": 10}, 100.0),
        ({"endPageSeen": False, "progress": 10}, 10.0),
    ],
)
def test_percent_from_details_shapes(details: dict[str, Any], expected: float) -> None:
    assert percent_from_details(details) == expected


@pytest.mark.parametrize(
    "details",
    [
        None,
        {},
        {"other": 1},
        {"progress": True},
        {"progress": False},
        {"progress": "50"},
        {"progress": None},
        {"progress": [50]},
        {"progress": float("nan")},
        {"progress": float("inf")},
        {"visitedLength": 10, "totalLength": 0},
        {"visitedLength": 10, "totalLength": -5},
        {"visitedLength": 10},
        {"totalLength": 10},
        {"visitedLength": "10", "totalLength": 20},
        {"visitedLength": 10, "totalLength": "20"},
        {"visitedLength": True, "totalLength": 2},
        {"visitedLength": float("nan"), "totalLength": 2},
        {"visitedLength": 1, "totalLength": float("inf")},
        {"endPageSeen": "true"},
        {"endPageSeen": 1},
        {"visitedContentEnd": "yes"},
        {"endPageSeen": False, "visitedContentEnd": False},
    ],
)
def test_percent_from_details_junk_implies_nothing(details: dict[str, Any] | None) -> None:
    assert percent_from_details(details) is None


def test_percent_from_details_result_is_finite_float() -> None:
    result = percent_from_details({"visitedLength": 1, "totalLength": 3})
    assert result is not None
    assert math.isclose(result, 100 / 3)
    assert isinstance(percent_from_details({"progress": 7}), float)
