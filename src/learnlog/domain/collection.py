"""Collections: structures, required leaves and the one progress formula (SPEC §2.5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInput
from .progress import COMPLETED, IN_PROGRESS, NOT_STARTED

MAX_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Node:
    """A node of a collection tree: a unit with children, or a content leaf."""

    identifier: str
    type: str  # "unit" | "content"
    name: str | None = None
    kind: str | None = None
    optional: bool = False
    children: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class Structure:
    """A collection's current tree, with its leaves and units indexed once."""

    collection_id: str
    version: int
    children: tuple[Node, ...]
    leaves: tuple[str, ...] = field(init=False)
    required: frozenset[str] = field(init=False)
    kinds: Mapping[str, str | None] = field(init=False)
    units: Mapping[str, tuple[frozenset[str], frozenset[str]]] = field(init=False)

    def __post_init__(self) -> None:
        leaves: dict[str, None] = {}
        kinds: dict[str, str | None] = {}
        units: dict[str, tuple[frozenset[str], frozenset[str]]] = {}

        def walk(nodes: Sequence[Node]) -> tuple[set[str], set[str]]:
            """Index a subtree; returns its leaves and its required leaves."""
            all_leaves: set[str] = set()
            required: set[str] = set()
            for node in nodes:
                if node.type == "unit":
                    sub_leaves, sub_required = walk(node.children)
                    units[node.identifier] = (frozenset(sub_leaves), frozenset(sub_required))
                    all_leaves |= sub_leaves
                    required |= sub_required
                else:
                    leaves.setdefault(node.identifier)
                    kinds[node.identifier] = node.kind
                    all_leaves.add(node.identifier)
                    if not node.optional:
                        required.add(node.identifier)
            return all_leaves, required

        # A content optional in one place and required in another is required.
        _, required = walk(self.children)
        object.__setattr__(self, "leaves", tuple(leaves))
        object.__setattr__(self, "required", frozenset(required))
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "units", units)

    @property
    def leaf_count(self) -> int:
        """Number of distinct leaf contents."""
        return len(self.leaves)


def parse_nodes(raw: Sequence[Mapping[str, Any]], path: str = "request.children",
                depth: int = 1) -> tuple[Node, ...]:
    """Build nodes from plain mappings already checked for shape at the edge."""
    if depth > MAX_DEPTH:
        raise InvalidInput(f"Collection tree is deeper than {MAX_DEPTH} levels.",
                           code="INVALID_STRUCTURE", field=path)
    nodes = []
    for i, item in enumerate(raw):
        here = f"{path}[{i}]"
        node_type = item.get("type", "content")
        children = item.get("children") or []
        if node_type == "content" and children:
            raise InvalidInput("A content node cannot have children.", code="INVALID_STRUCTURE",
                               field=f"{here}.children")
        nodes.append(Node(
            identifier=item["identifier"],
            type=node_type,
            name=item.get("name"),
            kind=item.get("kind"),
            optional=bool(item.get("optional", False)),
            children=parse_nodes(children, f"{here}.children", depth + 1) if children else (),
        ))
    return tuple(nodes)


def progress_percent(completed_count: int, required_count: int) -> int:
    """The one formula: 0 if nothing completed, 100 once all required, else floor(100·c/n)."""
    if completed_count == 0:
        return 0
    if completed_count >= required_count:
        return 100
    return (100 * completed_count) // required_count


def completed_required(required: frozenset[str], statuses: Mapping[str, int]) -> int:
    """How many required contents have status 2; completions of other contents do not count."""
    return sum(1 for content_id in required if statuses.get(content_id) == COMPLETED)


@dataclass(frozen=True, slots=True)
class EnrolmentProgress:
    """The figures of an enrolment: count, percent, status and completion time."""

    completed_count: int
    progress: int
    status: int
    completed_on: int | None


def enrolment_progress(
    previous: EnrolmentProgress,
    required: frozenset[str],
    statuses: Mapping[str, int],
    completion_times: Mapping[str, int | None],
    *,
    consumed: bool = False,
) -> EnrolmentProgress:
    """Recompute an enrolment's figures; completion is sticky and keeps its first time.

    `consumed` says the learner consumed content of the collection even if none of the
    structure's leaves shows it (an unregistered structure, a removed content).

    `completed_on` is the completion time of the content that completed the set: the
    latest completion among the required contents.
    """
    count = completed_required(required, statuses)
    percent = progress_percent(count, len(required))
    if previous.status == COMPLETED:
        return EnrolmentProgress(count, 100, COMPLETED, previous.completed_on)
    if required and count >= len(required):
        times = [t for c in required if (t := completion_times.get(c)) is not None]
        return EnrolmentProgress(count, 100, COMPLETED, max(times) if times else None)
    consumed = consumed or any(s > NOT_STARTED for s in statuses.values())
    status = IN_PROGRESS if consumed or previous.status == IN_PROGRESS else NOT_STARTED
    return EnrolmentProgress(count, percent, status, None)


@dataclass(frozen=True, slots=True)
class UnitProgress:
    """A unit's figures under one enrolment: the collection rules on the unit's subtree."""

    completed_count: int
    required_count: int
    progress: int
    status: int


def unit_progress(structure: Structure, statuses: Mapping[str, int]) -> dict[str, UnitProgress]:
    """Per unit: required leaves of its subtree completed, the one percent formula, status."""
    out: dict[str, UnitProgress] = {}
    for unit_id, (leaves, required) in structure.units.items():
        count = completed_required(required, statuses)
        consumed = any(statuses.get(c, NOT_STARTED) > NOT_STARTED for c in leaves)
        if required and count >= len(required):
            status = COMPLETED
        else:
            status = IN_PROGRESS if consumed else NOT_STARTED
        out[unit_id] = UnitProgress(count, len(required), progress_percent(count, len(required)),
                                    status)
    return out
