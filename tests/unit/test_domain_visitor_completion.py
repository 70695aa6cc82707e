"""When an anonymous visitor's content session counts as completed (domain/visits.py)."""

from __future__ import annotations

import pytest

from learnlog.domain.visits import visitor_completed_at

pytestmark = pytest.mark.unit


def test_a_visit_is_completed_when_its_progress_first_becomes_complete() -> None:
    assert visitor_completed_at(None, 1.0, 500) == 500


def test_an_incomplete_visit_has_no_completion_time() -> None:
    assert visitor_completed_at(None, 0.0, 500) is None
    assert visitor_completed_at(None, 0.99, 500) is None


def test_the_first_completion_time_is_kept() -> None:
    assert visitor_completed_at(100, 1.0, 500) == 100
    assert visitor_completed_at(100, 0.5, 500) == 100
