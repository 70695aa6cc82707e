"""Certificate criteria (SPEC §2.6): parsing templates and deciding which are earned."""

from __future__ import annotations

from typing import Any

import pytest

from learnlog.domain.certificates import OPERATORS, Template, earned, parse_template
from learnlog.domain.errors import InvalidInput
from learnlog.domain.progress import COMPLETED, IN_PROGRESS, NOT_STARTED

pytestmark = pytest.mark.unit

PATH = "request.certificates[0]"


# --- parse_template --------------------------------------------------------------------------

def test_operators_are_exactly_the_spec_ones() -> None:
    assert set(OPERATORS) == {"=", "!=", ">", ">=", "<", "<="}


def test_parse_status_only_template() -> None:
    assert parse_template({"name": "Completion", "criteria": {"status": 2}}, PATH) == Template(
        "Completion", COMPLETED, None, None)


def test_parse_template_without_criteria_needs_completion() -> None:
    assert parse_template({"name": "C"}, PATH) == Template("C", COMPLETED)
    assert parse_template({"name": "C", "criteria": None}, PATH) == Template("C", COMPLETED)
    assert parse_template({"name": "C", "criteria": {}}, PATH) == Template("C", COMPLETED)


@pytest.mark.parametrize("status", [NOT_STARTED, IN_PROGRESS, COMPLETED])
def test_parse_template_each_status(status: int) -> None:
    assert parse_template({"name": "C", "criteria": {"status": status}}, PATH).status == status


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<="])
def test_parse_template_each_operator(op: str) -> None:
    raw = {"name": "Merit", "criteria": {"status": 2, "score": {op: 60}}}
    t = parse_template(raw, PATH)
    assert t == Template("Merit", COMPLETED, op, 60.0)
    assert isinstance(t.score_value, float)


def test_parse_template_float_and_zero_score_values() -> None:
    t = parse_template({"name": "M", "criteria": {"score": {">=": 62.5}}}, PATH)
    assert (t.status, t.score_op, t.score_value) == (COMPLETED, ">=", 62.5)
    zero = parse_template({"name": "M", "criteria": {"score": {">": 0}}}, PATH)
    assert zero.score_value == 0.0


@pytest.mark.parametrize("status", [3, -1, "2", None, 2.5, [2]])
def test_parse_template_rejects_bad_status(status: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_template({"name": "C", "criteria": {"status": status}}, PATH)
    assert info.value.field == f"{PATH}.criteria.status"
    assert info.value.code == "CLIENT_ERROR"


def test_parse_template_rejects_bool_status() -> None:
    # True == 1 in Python, so `status not in (0, 1, 2)` lets a boolean through as
    # "in progress": a template `{"status": true}` would issue before completion.
    # Score values already reject bools; status must too (SPEC §4: bad input → 400).
    with pytest.raises(InvalidInput) as info:
        parse_template({"name": "C", "criteria": {"status": True}}, PATH)
    assert info.value.field == f"{PATH}.criteria.status"


@pytest.mark.parametrize(
    "score",
    [[">=", 60], 60, "60", {">=": 60, "<": 90}, {}],
)
def test_parse_template_rejects_score_that_is_not_one_mapping(score: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_template({"name": "C", "criteria": {"score": score}}, PATH)
    assert info.value.field == f"{PATH}.criteria.score"
    assert "one {operator: number}" in info.value.message


@pytest.mark.parametrize("op", ["=>", "==", "gte", "", "≥"])
def test_parse_template_rejects_unknown_operator(op: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_template({"name": "C", "criteria": {"score": {op: 60}}}, PATH)
    assert info.value.field == f"{PATH}.criteria.score"
    assert repr(op) in info.value.message
    assert ">=" in info.value.message


@pytest.mark.parametrize("value", ["60", None, [60], {"v": 60}])
def test_parse_template_rejects_non_number_score(value: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_template({"name": "C", "criteria": {"score": {">=": value}}}, PATH)
    assert info.value.field == f"{PATH}.criteria.score"
    assert "number" in info.value.message


@pytest.mark.parametrize("value", [True, False])
def test_parse_template_rejects_bool_score(value: bool) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_template({"name": "C", "criteria": {"score": {">=": value}}}, PATH)
    assert info.value.field == f"{PATH}.criteria.score"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_parse_template_rejects_non_finite_score(value: float) -> None:
    # json.loads (hence Starlette's request.json()) accepts NaN and Infinity. A NaN
    # threshold makes ">=" never and "!=" always true: a silent, wrong template.
    with pytest.raises(InvalidInput) as info:
        parse_template({"name": "C", "criteria": {"score": {">=": value}}}, PATH)
    assert info.value.field == f"{PATH}.criteria.score"


# --- earned ---------------------------------------------------------------------------------

COMPLETION = Template("Completion")
MERIT = Template("Merit", COMPLETED, ">=", 60.0)


def test_status_rule_needs_completion() -> None:
    assert earned([COMPLETION], IN_PROGRESS, None, []) == []
    assert earned([COMPLETION], NOT_STARTED, 100.0, []) == []
    assert earned([COMPLETION], COMPLETED, None, []) == [COMPLETION]


def test_lower_status_template_is_met_by_a_higher_status() -> None:
    participation = Template("Participation", IN_PROGRESS)
    assert earned([participation], IN_PROGRESS, None, []) == [participation]
    assert earned([participation], COMPLETED, None, []) == [participation]
    assert earned([participation], NOT_STARTED, None, []) == []


def test_score_rule_needs_a_score() -> None:
    assert earned([MERIT], COMPLETED, None, []) == []


def test_score_rule_and_status_rule_both_apply() -> None:
    assert earned([MERIT], IN_PROGRESS, 90.0, []) == []
    assert earned([MERIT], COMPLETED, 59.99, []) == []
    assert earned([MERIT], COMPLETED, 60.0, []) == [MERIT]


@pytest.mark.parametrize(
    ("op", "score", "met"),
    [
        ("=", 60.0, True), ("=", 60.5, False),
        ("!=", 60.0, False), ("!=", 61.0, True),
        (">", 60.0, False), (">", 60.01, True),
        (">=", 60.0, True), (">=", 59.9, False),
        ("<", 60.0, False), ("<", 59.9, True),
        ("<=", 60.0, True), ("<=", 60.1, False),
    ],
)
def test_each_operator_at_its_boundary(op: str, score: float, met: bool) -> None:
    t = Template("T", COMPLETED, op, 60.0)
    assert earned([t], COMPLETED, score, []) == ([t] if met else [])


def test_zero_score_is_a_score() -> None:
    t = Template("T", COMPLETED, "<=", 0.0)
    assert earned([t], COMPLETED, 0.0, []) == [t]


def test_already_issued_names_are_not_earned_again() -> None:
    assert earned([COMPLETION, MERIT], COMPLETED, 80.0, ["Completion"]) == [MERIT]
    assert earned([COMPLETION, MERIT], COMPLETED, 80.0, ["Completion", "Merit"]) == []


def test_earned_keeps_template_order() -> None:
    third = Template("Third")
    assert earned([MERIT, COMPLETION, third], COMPLETED, 75.0, []) == [MERIT, COMPLETION, third]


def test_parsed_templates_round_trip_into_earned() -> None:
    t = parse_template({"name": "Merit", "criteria": {"status": 2, "score": {">=": 60}}}, PATH)
    assert earned([t], COMPLETED, 60.0, []) == [t]
    assert earned([t], COMPLETED, 59.0, []) == []
