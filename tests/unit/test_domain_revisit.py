"""Revisits: where a learner left off is kept, and merely looking again completes nothing."""

from __future__ import annotations

import pytest

from learnlog.domain.keys import SummaryKey
from learnlog.domain.summary import (
    Summary,
    apply_session,
    close_session,
    new_session,
    record_progress,
)

pytestmark = pytest.mark.unit
KEY = SummaryKey("d", "u", "k", "x", "video")


def _completed() -> tuple[Summary, int]:
    first = new_session("s1", KEY, "i", 1_000, None)
    watched = record_progress(first, 2_000, progress=1.0, progress_details={"position": 300})
    return apply_session(apply_session(Summary(KEY), None, first), first, watched), 2_000


def test_a_revisit_starts_with_the_learners_progress_details() -> None:
    summary, _ = _completed()
    again = new_session("s2", KEY, "i", 5_000, summary)
    after = apply_session(summary, None, again)
    assert again.progress_details == {"position": 300}
    assert after.progress_details == {"position": 300}


def test_updating_a_revisit_is_not_a_new_completion() -> None:
    summary, completed_at = _completed()
    again = new_session("s2", KEY, "i", 5_000, summary)
    updated = record_progress(again, 6_000, time_delta=30)
    after = apply_session(apply_session(summary, None, again), again, updated)
    assert updated.completed_at is None
    assert (after.completed_at, after.last_completed_at) == (completed_at, completed_at)
    assert after.time_spent == 30


def test_ending_a_revisit_is_a_new_completion() -> None:
    summary, completed_at = _completed()
    again = new_session("s2", KEY, "i", 5_000, summary)
    ended = close_session(again, 7_000)
    after = apply_session(apply_session(summary, None, again), again, ended)
    assert (after.completed_at, after.last_completed_at) == (completed_at, 7_000)
