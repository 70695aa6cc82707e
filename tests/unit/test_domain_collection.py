"""Collections: structures, required leaves, the one progress formula (SPEC §2.5)."""

from __future__ import annotations

from typing import Any

import pytest

from learnlog.domain.collection import (
    MAX_DEPTH,
    EnrolmentProgress,
    Node,
    Structure,
    completed_required,
    enrolment_progress,
    parse_nodes,
    progress_percent,
)
from learnlog.domain.errors import InvalidInput
from learnlog.domain.progress import COMPLETED, IN_PROGRESS, NOT_STARTED

pytestmark = pytest.mark.unit


def leaf(identifier: str, *, optional: bool = False, kind: str | None = "video") -> Node:
    return Node(identifier, "content", kind=kind, optional=optional)


def unit(identifier: str, *children: Node) -> Node:
    return Node(identifier, "unit", children=tuple(children))


FRESH = EnrolmentProgress(0, 0, NOT_STARTED, None)


# --- structures ---------------------------------------------------------------------------

def test_required_is_leaves_minus_optional() -> None:
    s = Structure("c", 1, (
        unit("u1", leaf("a"), leaf("b", optional=True)),
        unit("u2", leaf("c"), unit("u3", leaf("d", optional=True), leaf("e"))),
    ))
    assert s.leaves == ("a", "b", "c", "d", "e")
    assert s.leaf_count == 5
    assert s.required == frozenset({"a", "c", "e"})


def test_content_optional_in_one_unit_and_required_in_another_is_required() -> None:
    optional_first = Structure("c", 1, (unit("u1", leaf("x", optional=True)),
                                        unit("u2", leaf("x"))))
    required_first = Structure("c", 1, (unit("u1", leaf("x")),
                                        unit("u2", leaf("x", optional=True))))
    assert optional_first.required == required_first.required == frozenset({"x"})
    assert optional_first.leaves == ("x",)
    assert optional_first.leaf_count == 1


def test_content_optional_everywhere_is_not_required() -> None:
    s = Structure("c", 1, (unit("u1", leaf("x", optional=True)),
                           unit("u2", leaf("x", optional=True)), leaf("y")))
    assert s.required == frozenset({"y"})


def test_unit_subtrees_are_indexed() -> None:
    s = Structure("c", 3, (
        unit("u1", leaf("a"), unit("u2", leaf("b", optional=True), leaf("c"))),
        leaf("d"),
        unit("empty"),
    ))
    assert s.units["u1"] == (frozenset({"a", "b", "c"}), frozenset({"a", "c"}))
    assert s.units["u2"] == (frozenset({"b", "c"}), frozenset({"c"}))
    assert s.units["empty"] == (frozenset(), frozenset())
    assert set(s.units) == {"u1", "u2", "empty"}
    assert s.version == 3


def test_unit_progress_uses_the_same_rules_on_its_subtree() -> None:
    s = Structure("c", 1, (unit("u1", leaf("a"), leaf("b"), leaf("c", optional=True)),
                           unit("u2", leaf("d"))))
    _, required_u1 = s.units["u1"]
    statuses = {"a": COMPLETED, "c": COMPLETED, "d": COMPLETED}
    assert progress_percent(completed_required(required_u1, statuses), len(required_u1)) == 50


def test_kinds_of_leaves() -> None:
    s = Structure("c", 1, (leaf("a", kind="video"), leaf("b", kind=None)))
    assert s.kinds == {"a": "video", "b": None}


def test_empty_structure() -> None:
    s = Structure("c", 1, ())
    assert (s.leaves, s.required, s.leaf_count, dict(s.units)) == ((), frozenset(), 0, {})


# --- the one formula ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("completed", "required", "expected"),
    [
        (0, 5, 0),
        (0, 0, 0),        # n = 0: nothing completed is 0
        (1, 3, 33),       # floor
        (2, 3, 66),       # floor, not round
        (1, 1, 100),
        (3, 3, 100),
        (4, 3, 100),      # capped
        (1, 0, 100),      # n = 0, something completed
        (99, 100, 99),
        (1, 200, 0),
    ],
)
def test_progress_percent_formula(completed: int, required: int, expected: int) -> None:
    assert progress_percent(completed, required) == expected


def test_completed_required_counts_only_required_completions() -> None:
    required = frozenset({"a", "b", "c"})
    statuses = {"a": COMPLETED, "b": IN_PROGRESS, "removed": COMPLETED, "opt": COMPLETED}
    assert completed_required(required, statuses) == 1
    assert completed_required(frozenset(), statuses) == 0


# --- enrolment figures ---------------------------------------------------------------------

def test_enrolment_nothing_consumed_is_not_started() -> None:
    got = enrolment_progress(FRESH, frozenset({"a", "b"}), {}, {})
    assert got == EnrolmentProgress(0, 0, NOT_STARTED, None)


def test_enrolment_only_not_started_statuses_is_not_started() -> None:
    got = enrolment_progress(FRESH, frozenset({"a"}), {"a": NOT_STARTED}, {})
    assert got.status == NOT_STARTED


def test_enrolment_partial_is_in_progress_with_floor_percent() -> None:
    required = frozenset({"a", "b", "c"})
    got = enrolment_progress(FRESH, required, {"a": COMPLETED, "b": IN_PROGRESS}, {"a": 100})
    assert got == EnrolmentProgress(1, 33, IN_PROGRESS, None)


def test_enrolment_consuming_only_a_removed_content_is_in_progress_with_zero() -> None:
    got = enrolment_progress(FRESH, frozenset({"a"}), {"gone": COMPLETED}, {"gone": 50})
    assert got == EnrolmentProgress(0, 0, IN_PROGRESS, None)


def test_enrolment_completion_time_is_latest_required_completion() -> None:
    required = frozenset({"a", "b"})
    statuses = {"a": COMPLETED, "b": COMPLETED, "opt": COMPLETED, "gone": COMPLETED}
    times = {"a": 300, "b": 200, "opt": 900, "gone": 1_000}
    got = enrolment_progress(FRESH, required, statuses, times)
    assert got == EnrolmentProgress(2, 100, COMPLETED, 300)


def test_enrolment_completion_with_unknown_times_has_no_time() -> None:
    required = frozenset({"a"})
    got = enrolment_progress(FRESH, required, {"a": COMPLETED}, {"a": None})
    assert got == EnrolmentProgress(1, 100, COMPLETED, None)
    got = enrolment_progress(FRESH, required, {"a": COMPLETED}, {})
    assert got == EnrolmentProgress(1, 100, COMPLETED, None)


def test_enrolment_completion_time_zero_is_a_time() -> None:
    got = enrolment_progress(FRESH, frozenset({"a"}), {"a": COMPLETED}, {"a": 0})
    assert got.completed_on == 0


def test_enrolment_completion_is_sticky_and_keeps_completed_on() -> None:
    done = EnrolmentProgress(2, 100, COMPLETED, 300)
    # the structure grew: one of three required done now; later completion times exist
    required = frozenset({"a", "b", "new"})
    got = enrolment_progress(done, required, {"a": COMPLETED, "b": IN_PROGRESS},
                             {"a": 5_000})
    assert got == EnrolmentProgress(1, 100, COMPLETED, 300)


def test_enrolment_already_complete_and_still_complete_keeps_first_time() -> None:
    done = EnrolmentProgress(1, 100, COMPLETED, 300)
    got = enrolment_progress(done, frozenset({"a"}), {"a": COMPLETED}, {"a": 999})
    assert got.completed_on == 300


def test_enrolment_in_progress_never_goes_back_to_not_started() -> None:
    started = EnrolmentProgress(0, 0, IN_PROGRESS, None)
    got = enrolment_progress(started, frozenset({"a"}), {}, {})
    assert got == EnrolmentProgress(0, 0, IN_PROGRESS, None)


def test_enrolment_with_no_required_contents_never_completes_by_count() -> None:
    got = enrolment_progress(FRESH, frozenset(), {"opt": COMPLETED}, {"opt": 10})
    assert got == EnrolmentProgress(0, 0, IN_PROGRESS, None)


# --- parsing --------------------------------------------------------------------------------

def test_parse_nodes_builds_the_tree() -> None:
    raw: list[dict[str, Any]] = [
        {"identifier": "u1", "type": "unit", "name": "Unit 1", "children": [
            {"identifier": "a", "type": "content", "kind": "video", "name": "A"},
            {"identifier": "b", "optional": True},
        ]},
        {"identifier": "c", "type": "content", "children": []},
        {"identifier": "u2", "type": "unit"},
    ]
    nodes = parse_nodes(raw)
    assert nodes == (
        Node("u1", "unit", name="Unit 1", children=(
            Node("a", "content", name="A", kind="video"),
            Node("b", "content", optional=True),
        )),
        Node("c", "content"),
        Node("u2", "unit"),
    )
    s = Structure("coll", 1, nodes)
    assert s.required == frozenset({"a", "c"})


def test_parse_nodes_rejects_content_with_children() -> None:
    raw = [{"identifier": "u1", "type": "unit", "children": [
        {"identifier": "a", "type": "content"},
        {"identifier": "b", "type": "content", "children": [{"identifier": "x"}]},
    ]}]
    with pytest.raises(InvalidInput) as info:
        parse_nodes(raw)
    assert info.value.code == "INVALID_STRUCTURE"
    assert info.value.field == "request.children[0].children[1].children"


def test_parse_nodes_rejects_content_with_children_by_default_type() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_nodes([{"identifier": "a", "children": [{"identifier": "x"}]}], path="p")
    assert info.value.field == "p[0].children"


def chain(levels: int) -> list[dict[str, Any]]:
    """A tree exactly `levels` deep: levels-1 nested units and a content leaf."""
    node: dict[str, Any] = {"identifier": "leaf", "type": "content"}
    for i in range(levels - 1):
        node = {"identifier": f"u{i}", "type": "unit", "children": [node]}
    return [node]


def test_parse_nodes_accepts_fifteen_levels() -> None:
    assert len(parse_nodes(chain(15))) == 1


def test_parse_nodes_accepts_a_tree_exactly_max_depth_deep() -> None:
    # The error says "deeper than 16 levels", so 16 levels must pass; a leaf at level 16
    # makes the code recurse into its (empty) children at depth 17 and raise.
    assert MAX_DEPTH == 16
    nodes = parse_nodes(chain(MAX_DEPTH))
    assert Structure("c", 1, nodes).leaves == ("leaf",)


def test_parse_nodes_rejects_a_tree_deeper_than_max_depth() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_nodes(chain(MAX_DEPTH + 1))
    assert info.value.code == "INVALID_STRUCTURE"
    # the children list of the 16th-level node is where the tree gets too deep
    assert info.value.field == (
        "request.children[0]" + ".children[0]" * (MAX_DEPTH - 1) + ".children")
    assert "16" in info.value.message


def test_parse_nodes_rejects_depth_when_called_too_deep() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_nodes([{"identifier": "a"}], path="x", depth=MAX_DEPTH + 1)
    assert info.value.field == "x"
