"""The id forms and timeline rules of tracking-log analytics (SPEC §6), by hand."""

from __future__ import annotations

from typing import Any

import pytest

from learnlog.domain.collection import Node
from learnlog.domain.tracking import (
    Unit,
    block_name,
    course_id,
    course_of_root,
    end_segment,
    is_course,
    places,
    units_of,
    units_of_tree,
    users_at_end,
    video_id,
)

pytestmark = pytest.mark.unit

COURSES = [
    ("edX/DemoX/Demo_Course", "course-v1:edX+DemoX+Demo_Course"),
    ("course-v1:edX+DemoX+Demo_Course", "course-v1:edX+DemoX+Demo_Course"),
    ("  course-v1:edX+DemoX+Test_2014\n", "course-v1:edX+DemoX+Test_2014"),
    ("", None),
    ("   ", None),
    (None, None),
    ("a/b", "a/b"),  # not a course id of either form: kept as it is
]
VIDEOS = [
    ("i4x-edX-DemoX-video-3cb54a11efae4ccc8a0aade24d14b255",
     "3cb54a11efae4ccc8a0aade24d14b255"),
    ("3cb54a11efae4ccc8a0aade24d14b255", "3cb54a11efae4ccc8a0aade24d14b255"),
    ("\n0b9e39477cf34507a7a48f74be381fdd", "0b9e39477cf34507a7a48f74be381fdd"),
    ("block-v1:edX+DemoX+Demo_Course+type@video+block@0b9e39477cf34507a7a48f74be381fdd",
     "0b9e39477cf34507a7a48f74be381fdd"),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "expected"), COURSES)
def test_both_course_id_forms_become_one(raw: str | None, expected: str | None) -> None:
    assert course_id(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), VIDEOS)
def test_video_ids_become_their_bare_hash(raw: str | None, expected: str | None) -> None:
    assert video_id(raw) == expected


def test_the_end_segment_is_30_s_or_5_percent_before_the_end() -> None:
    assert end_segment(444.0) == 84  # max(414, 421.8) = 421.8 → 421 // 5
    assert end_segment(1000.0) == 194  # max(970, 950) = 970 → 970 // 5
    assert end_segment(10.0) == 1  # max(-20, 9.5) → 9 // 5
    assert end_segment(0.0) == 0


def test_users_at_end_with_a_known_duration_read_the_end_segment() -> None:
    segments = [(0, 10), (83, 4), (84, 3)]
    assert users_at_end(segments, 444.0) == 3
    assert users_at_end(segments, 1000.0) == 0  # nobody reached segment 194


def test_users_at_end_without_a_duration_stop_where_the_audience_falls_away() -> None:
    # 40 → 30 → 20 → 1: 1 is 5 % of 20, so the audience ended at segment 2 (20 users).
    assert users_at_end([(0, 40), (1, 30), (2, 20), (3, 1), (4, 1)], None) == 20
    # 40 → 3: 3 > 5 % of 40 (2), so it goes on; then nothing after segment 2.
    assert users_at_end([(0, 40), (1, 3), (2, 3)], None) == 3
    # A gap (segment 1 unwatched) ends it at segment 0.
    assert users_at_end([(0, 2), (2, 2)], None) == 2
    assert users_at_end([(3, 5), (4, 5)], None) == 5  # starts at the first watched segment
    assert users_at_end([], None) == 0
    assert users_at_end([], 100.0) == 0


def blocks_document() -> dict[str, Any]:
    """A Blocks API answer: one course, two chapters, three sequentials, and a block a
    parent names that the document lacks."""
    key = "block-v1:edX+DemoX+2025+type@{}+block@{}".format
    blocks: dict[str, Any] = {
        key("course", "course"): {"type": "course",
                                   "children": [key("chapter", "c1"), key("chapter", "c2")]},
        key("chapter", "c1"): {"type": "chapter",
                               "children": [key("sequential", "s1"), key("sequential", "s2")]},
        key("chapter", "c2"): {"type": "chapter", "children": [key("sequential", "s3")]},
        key("sequential", "s1"): {"type": "sequential", "children": [
            key("vertical", "u1"), key("vertical", "u2"), key("html", "x")]},
        key("sequential", "s2"): {"type": "sequential", "children": [key("vertical", "u3"),
                                                                     key("vertical", "gone")]},
        key("sequential", "s3"): {"type": "sequential", "children": None},
        key("vertical", "u1"): {"type": "vertical", "display_name": "Welcome"},
        key("vertical", "u2"): {"type": "vertical", "display_name": None},
        key("vertical", "u3"): {"type": "vertical", "display_name": "Quiz"},
        key("html", "x"): {"type": "html"},
    }
    return {"root": key("course", "course"), "blocks": blocks}


def test_the_units_of_a_blocks_document_in_course_order() -> None:
    doc = blocks_document()
    found = units_of(doc["blocks"], doc["root"])
    assert [(u.chapter, u.sequential, u.position, block_name(u.unit_id), u.name)
            for u in found] == [("c1", "s1", 1, "u1", "Welcome"), ("c1", "s1", 2, "u2", ""),
                                ("c1", "s2", 1, "u3", "Quiz")]
    assert units_of(doc["blocks"], "block-v1:missing") == []
    assert course_of_root(doc["root"]) == "course-v1:edX+DemoX+2025"
    assert course_of_root("i4x://edX/DemoX/course/2025") is None
    assert block_name("i4x://edX/DemoX/vertical/abc/") == "abc"


def test_places_map_to_units_active_ones_first_and_moves_across_sequentials() -> None:
    def unit(name: str, sequential: str, position: int) -> Unit:
        return Unit(f"block-v1:x+y+z+type@vertical+block@{name}", "c1", sequential,
                    position, name)
    old, u1, u2, u3 = (unit("old", "s1", 1), unit("u1", "s1", 1), unit("u2", "s1", 2),
                       unit("u3", "s2", 1))
    found = places([(u1, True), (old, False), (u2, True), (u3, True)])
    assert found["s1#1"] == u1.unit_id  # the active unit wins the place
    assert found["old"] == old.unit_id  # an inactive unit keeps its own name
    assert (found["s1#2"], found["u3"]) == (u2.unit_id, u3.unit_id)
    assert (found["next:s1"], found["prev:s2"]) == (u3.unit_id, u2.unit_id)
    assert "next:s2" not in found and "prev:s1" not in found
    assert places([]) == {}


def test_course_collections_are_named_by_a_course_id_of_either_form() -> None:
    assert is_course("course-v1:edX+DemoX+Demo_Course")
    assert is_course("edX/DemoX/Demo_Course")
    assert not is_course("k1")
    assert not is_course("")


def test_the_units_of_a_collection_tree_are_its_units_holding_contents() -> None:
    def content(name: str) -> Node:
        return Node(name, "content")

    def unit(name: str, *children: Node, title: str | None = None) -> Node:
        return Node(name, "unit", name=title, children=children)
    tree = (
        unit("block-v1:X+C+R+type@chapter+block@ch1",
             unit("block-v1:X+C+R+type@sequential+block@s1",
                  unit("block-v1:X+C+R+type@vertical+block@u1", content("a"), title="One"),
                  unit("u2", content("b"), unit("deeper", content("c")))),
             unit("empty")),  # no contents: not a unit
        unit("top", content("d")),  # a unit at the top: no sequential, no chapter
        content("e"),
    )
    assert units_of_tree(tree) == [
        Unit("block-v1:X+C+R+type@vertical+block@u1", "ch1", "s1", 1, "One"),
        Unit("u2", "ch1", "s1", 2, ""),
        Unit("deeper", "s1", "u2", 1, ""),  # a unit inside a unit: that one is its sequential
        Unit("top", "", "", 1, ""),
    ]
