"""Unit-level progress: the collection rules applied to each unit's subtree."""

from __future__ import annotations

import pytest

from learnlog.domain.collection import Node, Structure, UnitProgress, unit_progress

pytestmark = pytest.mark.unit


def _leaf(identifier: str, optional: bool = False) -> Node:
    return Node(identifier, "content", optional=optional)


# The activity-aggregate-updater fixture's shape: unit1 [R1, R3], unit2 [R2, R3, R4 optional].
STRUCTURE = Structure("course001", 1, (
    Node("unit1", "unit", children=(_leaf("R1"), _leaf("R3"))),
    Node("unit2", "unit", children=(_leaf("R2"), _leaf("R3"), _leaf("R4", optional=True))),
))


def test_a_content_in_two_units_counts_for_both() -> None:
    units = unit_progress(STRUCTURE, {"R3": 2})
    assert units["unit1"] == UnitProgress(1, 2, 50, 1)
    assert units["unit2"] == UnitProgress(1, 2, 50, 1)


def test_optional_leaves_do_not_count_and_a_unit_completes() -> None:
    units = unit_progress(STRUCTURE, {"R1": 2, "R3": 2, "R4": 2})
    assert units["unit1"] == UnitProgress(2, 2, 100, 2)
    assert units["unit2"] == UnitProgress(1, 2, 50, 1)


def test_untouched_and_merely_started_units() -> None:
    units = unit_progress(STRUCTURE, {"R4": 1})
    assert units["unit1"] == UnitProgress(0, 2, 0, 0)
    assert units["unit2"] == UnitProgress(0, 2, 0, 1)  # consumed, nothing required done


def test_nested_units_roll_up() -> None:
    structure = Structure("k", 1, (Node("outer", "unit", children=(
        Node("inner", "unit", children=(_leaf("a"), _leaf("b"))), _leaf("c"))),))
    units = unit_progress(structure, {"a": 2, "c": 2})
    assert units["inner"] == UnitProgress(1, 2, 50, 1)
    assert units["outer"] == UnitProgress(2, 3, 66, 1)


def test_a_unit_of_only_optional_leaves_never_completes() -> None:
    structure = Structure("k", 1, (Node("extras", "unit", children=(_leaf("x", True),)),))
    assert unit_progress(structure, {"x": 2})["extras"] == UnitProgress(0, 0, 0, 1)


def test_a_consumption_outside_the_structure_still_starts_the_enrolment() -> None:
    from learnlog.domain.collection import EnrolmentProgress, enrolment_progress

    fresh = EnrolmentProgress(0, 0, 0, None)
    assert enrolment_progress(fresh, frozenset(), {}, {}).status == 0
    assert enrolment_progress(fresh, frozenset(), {}, {}, consumed=True).status == 1
