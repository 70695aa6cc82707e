"""Assessment rules (SPEC §2.4): item responses, attempt totals, replacement, best score."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .keys import SummaryKey


@dataclass(frozen=True, slots=True)
class ItemResponse:
    """One answer to one item of an assessment, at event time `ets` (epoch ms)."""

    item_id: str
    ets: int
    score: float
    max_score: float
    item: Mapping[str, Any]
    extra: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at an assessment, keyed by (summary key, attempt id)."""

    key: SummaryKey
    attempt_id: str
    total_score: float
    total_max_score: float
    last_attempted_on: int  # the attempt's assessmentTs, epoch ms
    created_on: int
    updated_on: int
    responses: tuple[ItemResponse, ...]

    @property
    def grand_total(self) -> str:
        """`"<score>/<max>"` with one or two decimals, as Sunbird prints it."""
        return f"{format_score(self.total_score)}/{format_score(self.total_max_score)}"


def format_score(value: float) -> str:
    """Format like Java's DecimalFormat("0.0#"): at least one, at most two decimals."""
    text = str(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0") or "0"
    return f"{whole}.{frac}"


def latest_per_item(responses: Iterable[ItemResponse]) -> tuple[ItemResponse, ...]:
    """Keep the latest response per item id (by event time; a later duplicate wins ties)."""
    latest: dict[str, ItemResponse] = {}
    for response in responses:
        held = latest.get(response.item_id)
        if held is None or response.ets >= held.ets:
            latest[response.item_id] = response
    return tuple(sorted(latest.values(), key=lambda r: (r.ets, r.item_id)))


def build_attempt(
    key: SummaryKey,
    attempt_id: str,
    assessment_ts: int,
    responses: Iterable[ItemResponse],
    now: int,
) -> Attempt:
    """Total an attempt over the latest response per item."""
    kept = latest_per_item(responses)
    return Attempt(
        key=key,
        attempt_id=attempt_id,
        total_score=sum(r.score for r in kept),
        total_max_score=sum(r.max_score for r in kept),
        last_attempted_on=assessment_ts,
        created_on=now,
        updated_on=now,
        responses=kept,
    )


def merge_attempt(stored: Attempt | None, incoming: Attempt) -> Attempt | None:
    """The attempt to store, or None when the incoming one is not strictly newer (ignored)."""
    if stored is None:
        return incoming
    if incoming.last_attempted_on <= stored.last_attempted_on:
        return None
    return Attempt(
        key=incoming.key,
        attempt_id=incoming.attempt_id,
        total_score=incoming.total_score,
        total_max_score=incoming.total_max_score,
        last_attempted_on=incoming.last_attempted_on,
        created_on=stored.created_on,
        updated_on=incoming.updated_on,
        responses=incoming.responses,
    )


@dataclass(frozen=True, slots=True)
class BestScore:
    """The figures a content's attempts give: best score, its max score, the count."""

    score: float | None
    max_score: float | None
    attempts_count: int


def best_score(attempts: Sequence[Attempt]) -> BestScore:
    """The attempt with the highest total score wins; ties go to the latest attempt."""
    if not attempts:
        return BestScore(None, None, 0)
    best = max(attempts, key=lambda a: (a.total_score, a.last_attempted_on, a.attempt_id))
    return BestScore(best.total_score, best.total_max_score, len(attempts))


def derive_attempt_id(key: SummaryKey, first_ets: int) -> str:
    """A deterministic attempt id for clients that send none: keys and earliest event time."""
    raw = "-".join((key.collection_key, key.context_key, key.content_id, key.user_id,
                    str(first_ets)))
    return hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest()


def score_percent(score: float | None, max_score: float | None) -> float | None:
    """A score as a percent of its maximum, or None when there is nothing to divide by."""
    if score is None or max_score is None or max_score <= 0:
        return None
    return 100.0 * score / max_score
