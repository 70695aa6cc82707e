"""Progress arithmetic: one normalisation, one percent conversion, one derivation rule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Floating products such as 0.1 * 1000 = 100.00000000000001 must not round up to the next
# thousandth, and 0.29 * 100 = 28.999999999999996 must not floor to 28.
_EPS = 1e-9

NOT_STARTED = 0
IN_PROGRESS = 1
COMPLETED = 2


def normalize(progress: float) -> float:
    """Clamp progress to [0, 1], rounding up to the next thousandth (0.9999999 completes)."""
    if math.isnan(progress) or progress <= 0.0:
        return 0.0
    if progress >= 1.0:
        return 1.0
    return math.ceil(progress * 1000 - _EPS) / 1000


def asked(current: float, delta: float | None, absolute: float | None) -> float | None:
    """The progress an update asks for: the current one plus a delta (Kolibri's wire
    format), or an absolute value; None when it sends neither."""
    return current + delta if delta is not None else absolute


def advance(current: float, wanted: float | None) -> float:
    """Progress after an update: never lower than before (decision 0008)."""
    return current if wanted is None else max(current, normalize(wanted))


def is_complete(progress: float) -> bool:
    """Kolibri's completion rule: progress has reached 1."""
    return progress >= 1.0


def to_percent(progress: float) -> int:
    """Progress as the integer percent the Sunbird-family routes speak: floor(100·p)."""
    return math.floor(progress * 100 + _EPS)


def from_percent(percent: float) -> float:
    """A percent in [0, 100] as normalised progress."""
    return normalize(percent / 100)


def percent_from_details(details: Mapping[str, Any] | None) -> float | None:
    """The percent a progressDetails object implies, or None when it implies nothing.

    `{"progress": p}` → p; `{"visitedLength": v, "totalLength": t}` → 100·v/t;
    `{"endPageSeen": true}` or `{"visitedContentEnd": true}` → 100.
    """
    if not details:
        return None
    if details.get("endPageSeen") is True or details.get("visitedContentEnd") is True:
        return 100.0
    explicit = _number(details.get("progress"))
    if explicit is not None:
        return max(0.0, min(100.0, explicit))
    visited = _number(details.get("visitedLength"))
    total = _number(details.get("totalLength"))
    if visited is not None and total is not None and total > 0:
        return max(0.0, min(100.0, 100.0 * visited / total))
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def floor_to_ten_thousandths(progress: float) -> float:
    """Progress rounded down to 4 decimals (Kolibri's CSV rule: floor(p·10000)/10000), float
    noise aside: 0.29 stays 0.29 although 0.29 · 10000 = 2899.9999999999995."""
    return math.floor(progress * 10_000 + _EPS) / 10_000
