"""Demo data for `learnlog demo` and `make run`: idempotent (fixed ids, fixed times)."""

from __future__ import annotations

from typing import Any

from ..domain.assessment import ItemResponse
from ..domain.certificates import Template
from ..domain.collection import Node
from ..domain.enrolment import ContextRecord
from . import viewer as svc

DATASET = "default"
T0 = 1_763_000_000_000  # fixed event times keep the demo idempotent


def _content(identifier: str, kind: str, name: str, optional: bool = False) -> Node:
    return Node(identifier, "content", name, kind, optional)


def commands() -> list[Any]:
    """Two collections with units and an optional leaf, a dated context, three learners."""
    maths = (
        Node("unit-addition", "unit", "Addition", children=(
            _content("single-digit-addition", "video", "Single digit addition"),
            _content("double-digit-addition", "exercise", "Double digit addition"),
        )),
        Node("unit-extra", "unit", "Going further", children=(
            _content("triple-digit-addition", "document", "Triple digit addition"),
            _content("addition-fun-facts", "html5", "Fun facts", optional=True),
        )),
    )
    science = (
        Node("unit-plants", "unit", "Plants", children=(
            _content("what-plants-need", "video", "What plants need"),
            _content("plants-quiz", "quiz", "Plants quiz"),
        )),
    )
    out: list[Any] = [
        svc.PutCollection(DATASET, "class-1-maths", "Class 1 maths", "Counting and adding.",
                          None, maths, (Template("Class 1 maths certificate"),)),
        svc.PutCollection(DATASET, "class-1-science", "Class 1 science", "Living things.",
                          None, science, (Template("Plants badge", 2, ">=", 60.0),)),
        svc.PutContext(ContextRecord(DATASET, "batch-1", "class-1-maths", "Batch 1",
                                     "2026-01-05", "2026-12-18")),
    ]
    rahul = svc.Keys(DATASET, "rahul", "single-digit-addition", "class-1-maths", "batch-1")
    out += [svc.StartView(rahul), svc.UpdateView(rahul, 120, 100), svc.EndView(rahul)]
    second = svc.Keys(DATASET, "rahul", "double-digit-addition", "class-1-maths", "batch-1")
    out += [svc.StartView(second), svc.UpdateView(second, 45, 40)]
    asha = svc.Keys(DATASET, "asha", "plants-quiz", "class-1-science", None)
    out += [svc.StartView(asha)]
    for attempt, score in (("asha-plants-1", 1.33), ("asha-plants-2", 2.0)):
        responses = tuple(
            ItemResponse(f"q{i}", T0 + i, s, 1.0, {"id": f"q{i}", "maxscore": 1.0}, {})
            for i, s in enumerate((min(score, 1.0), max(score - 1.0, 0.0), 0.0)))
        out.append(svc.SubmitAssessment(asha, (svc.AttemptInput(attempt, T0, responses),)))
    out.append(svc.Enrol(DATASET, "meena", "class-1-maths", "batch-1"))
    return out
