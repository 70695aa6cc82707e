"""Certificate criteria (SPEC §2.6): which templates an enrolment has earned."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput
from .progress import COMPLETED

OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class Template:
    """A certificate template: its name, the status it needs and an optional score rule."""

    name: str
    status: int = COMPLETED
    score_op: str | None = None
    score_value: float | None = None


def parse_template(raw: Mapping[str, Any], path: str) -> Template:
    """Read `{name, criteria: {status?, score?: {op: value}}}`; unknown operators are a 400."""
    criteria = raw.get("criteria") or {}
    status = criteria.get("status", COMPLETED)
    if isinstance(status, bool) or status not in (0, 1, 2):
        raise InvalidInput("criteria.status must be 0, 1 or 2.", field=f"{path}.criteria.status")
    score = criteria.get("score")
    if score is None:
        return Template(raw["name"], status)
    if not isinstance(score, Mapping) or len(score) != 1:
        raise InvalidInput("criteria.score must be one {operator: number}.",
                           field=f"{path}.criteria.score")
    ((op, value),) = score.items()
    if op not in OPERATORS:
        raise InvalidInput(f"Unknown score operator {op!r}; use one of {', '.join(OPERATORS)}.",
                           field=f"{path}.criteria.score")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("criteria.score value must be a number.",
                           field=f"{path}.criteria.score")
    return Template(raw["name"], status, op, float(value))


def earned(
    templates: Sequence[Template],
    status: int,
    score_percent: float | None,
    already: Sequence[str],
) -> list[Template]:
    """The templates met now and not issued before; a score rule needs a score."""
    met = []
    for template in templates:
        if template.name in already or status < template.status:
            continue
        if template.score_op is not None:
            if score_percent is None:
                continue
            assert template.score_value is not None
            if not OPERATORS[template.score_op](score_percent, template.score_value):
                continue
        met.append(template)
    return met
