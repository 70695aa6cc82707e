"""Rules of tracking-log analytics that are not dataframe work (SPEC §6): the one form of a
course id and of a video id, and where a video's audience is read from its timeline.

The pipelines in `analytics/` apply the same id rules inside the engine; a test holds the
two equal on every form the logs use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .collection import Node

SEGMENT_SECONDS = 5
MAX_VIDEO_SECONDS = 36_000.0  # a time value beyond this is not a real position
ACTIVITY_LABELS = ("ACTIVE", "PLAYED_VIDEO", "ATTEMPTED_PROBLEM", "POSTED_FORUM")
END_DROP = 0.05  # unknown duration: the audience ends where it falls to 5 % of the segment before

_OLD_COURSE = re.compile(r"^([^/+:\s]+)/([^/+:\s]+)/([^/+:\s]+)$")
_VIDEO_HASH = re.compile(r"(?:^i4x-.+-video-|^block-v1:.+\+type@video\+block@)([^\s/+@]+)$")


def course_id(raw: str | None) -> str | None:
    """A course id in its `course-v1:org+course+run` form; the old `org/course/run` form of
    the same course becomes that too. Empty or None: None (an event without a course)."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    old = _OLD_COURSE.match(text)
    if old is not None:
        return "course-v1:" + "+".join(old.groups())
    return text


def video_id(raw: str | None) -> str | None:
    """A video id as its bare hash: `i4x-org-course-video-<hash>` and
    `block-v1:…+type@video+block@<hash>` both become `<hash>`; surrounding whitespace (the
    logs hold ids with a leading newline) goes. Empty or None: None."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    found = _VIDEO_HASH.match(text)
    return found.group(1) if found is not None else text


def end_segment(duration: float) -> int:
    """The timeline segment whose viewers count as having watched to the end: the one
    holding max(duration - 30 s, 95 % of the duration)."""
    return int(max(duration - 30.0, 0.95 * duration)) // SEGMENT_SECONDS


def users_at_end(segments: Sequence[tuple[int, int]], duration: float | None) -> int:
    """How many users watched to the end, from (segment, users) pairs in ascending order:
    with a known duration, the users of `end_segment`; with none, the users of the last
    segment before the count falls to 5 % or less of the segment before it (a missing
    segment has none)."""
    users = dict(segments)
    if duration is not None:
        return users.get(end_segment(duration), 0)
    if not segments:
        return 0
    segment = segments[0][0]
    while users.get(segment + 1, 0) > END_DROP * users.get(segment, 0):
        segment += 1
    return users.get(segment, 0)


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit (an Open edX vertical) and where it sits in its course."""

    unit_id: str  # the vertical's usage key
    chapter: str  # block names (the last part of the usage keys)
    sequential: str
    position: int  # 1-based, within its sequential
    name: str


def block_name(usage_key: str) -> str:
    """The last part of a usage key: `…+type@vertical+block@<name>`, `i4x://…/<name>`."""
    return re.split(r"[/@+]", usage_key.rstrip("/"))[-1]


def is_course(collection_id: str) -> bool:
    """Whether a collection id names an Open edX course (either form): such a collection's
    registered structure is that course's structure for the tracking-log statistics."""
    return (course_id(collection_id) or "").startswith("course-v1:")


def units_of_tree(children: Sequence[Node]) -> list[Unit]:
    """The units of a registered collection tree (SPEC §2.5), in tree order: a unit node
    with content leaves of its own is an Open edX unit (a vertical); the unit node that
    holds it is its sequential and the one above that its chapter (blank at the top);
    its position is its 1-based place among such units of the same sequential."""
    out: list[Unit] = []

    def walk(nodes: Sequence[Node], parents: tuple[str, ...]) -> None:
        position = 0
        for node in nodes:
            if node.type != "unit":
                continue
            if any(child.type != "unit" for child in node.children):
                position += 1
                sequential, chapter = (*reversed(parents), "", "")[:2]
                out.append(Unit(node.identifier, block_name(chapter) if chapter else "",
                                block_name(sequential) if sequential else "", position,
                                node.name or ""))
            walk(node.children, (*parents, node.identifier))
    walk(children, ())
    return out


def course_of_root(root: str) -> str | None:
    """The course id of a Blocks API root (`block-v1:ORG+COURSE+RUN+type@course+block@…`),
    or None when the root is not such a key."""
    found = re.match(r"^block-v1:([^+]+)\+([^+]+)\+([^+]+)\+type@course\+block@", root)
    return "course-v1:" + "+".join(found.groups()) if found is not None else None


def units_of(blocks: Mapping[str, Any], root: str) -> list[Unit]:
    """The units of an Open edX Blocks API document (`blocks`: usage key → {type,
    display_name, children}), course → chapters → sequentials → verticals, in course
    order. Blocks a parent names but the document lacks are skipped."""
    out: list[Unit] = []

    def children(key: str, kind: str) -> list[str]:
        found = blocks.get(key) or {}
        return [c for c in found.get("children") or []
                if isinstance(c, str) and (blocks.get(c) or {}).get("type") == kind]
    for chapter in children(root, "chapter"):
        for sequential in children(chapter, "sequential"):
            for position, vertical in enumerate(children(sequential, "vertical"), start=1):
                name = (blocks.get(vertical) or {}).get("display_name")
                out.append(Unit(vertical, block_name(chapter), block_name(sequential),
                                position, name if isinstance(name, str) else ""))
    return out


def places(units: Sequence[tuple[Unit, bool]]) -> dict[str, str]:
    """How the places a log names become unit ids, from a course's units in course order
    with whether each is active: `<sequential>#<n>` and the unit's block name (an active
    unit wins over an inactive one at the same place), and among active units
    `next:<sequential>` (the first unit of the sequential after it) and
    `prev:<sequential>` (the last unit of the one before)."""
    out: dict[str, str] = {}
    for unit, _ in sorted(units, key=lambda held: held[1]):  # inactive first, stable
        out[f"{unit.sequential}#{unit.position}"] = unit.unit_id
        out[block_name(unit.unit_id)] = unit.unit_id
    runs: list[list[Unit]] = []
    for unit, active in units:
        if not active:
            continue
        if not runs or runs[-1][0].sequential != unit.sequential:
            runs.append([])
        runs[-1].append(unit)
    for before, after in pairwise(runs):
        out[f"next:{before[0].sequential}"] = after[0].unit_id
        out[f"prev:{after[0].sequential}"] = before[-1].unit_id
    return out
