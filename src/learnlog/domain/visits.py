"""User sessions (SPEC §2.8): when a heartbeat continues a visit, what a visit keeps; and
when an anonymous visitor's content session (SPEC §3) counts as completed."""

from __future__ import annotations

from collections.abc import Sequence

from .progress import is_complete

IDLE_MS = 5 * 60 * 1000  # a visit ends after 5 minutes without interaction
MAX_LISTED = 100  # pages and channels kept per visit (the most recent)


def continues(last_interaction_at: int | None, now: int) -> bool:
    """Whether a heartbeat at `now` extends the visit last active at `last_interaction_at`."""
    return last_interaction_at is not None and now - last_interaction_at <= IDLE_MS


def add_recent(listed: Sequence[str], value: str | None) -> list[str]:
    """`listed` with `value` added once, keeping the most recent MAX_LISTED."""
    if value is None or value in listed:
        return list(listed)
    return [*listed, value][-MAX_LISTED:]


def visitor_completed_at(completed_at: int | None, progress: float, now: int) -> int | None:
    """A visitor session is completed when its progress first becomes complete (`now`);
    once set, that time is kept."""
    if completed_at is None and is_complete(progress):
        return now
    return completed_at
