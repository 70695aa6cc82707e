"""Days (domain/dates.py): YYYY-MM-DD real dates, the stats routes' week form, spans."""

from __future__ import annotations

import pytest

from learnlog.domain.dates import in_order, is_day

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("value", ["2024-01-01", "2024-02-29", "1999-12-31", "0001-01-01"])
def test_a_real_yyyy_mm_dd_date_is_a_day(value: str) -> None:
    assert is_day(value)
    assert is_day(value, week_form=True)


@pytest.mark.parametrize("value", [
    "2023-02-29", "2024-13-45", "2024-1-1", "20240101", "tomorrow", "", "2024-01-01T00:00",
    "2024-01-01 ", "\uff12\uff10\uff12\uff14-01-01", "2024/01/01"])
def test_anything_else_is_not_a_day(value: str) -> None:
    assert not is_day(value)
    assert not is_day(value, week_form=True)


def test_the_week_form_is_a_day_only_when_asked_for() -> None:
    assert not is_day("2023-W01-1")
    assert is_day("2023-W01-1", week_form=True)
    assert not is_day("2023-W54-1", week_form=True)
    assert not is_day("2023-w01-1", week_form=True)


def test_a_span_is_in_order_unless_it_ends_before_it_starts() -> None:
    assert in_order("2024-01-01", "2024-01-01")
    assert in_order("2024-01-01", "2024-06-30")
    assert not in_order("2024-01-02", "2024-01-01")
    assert in_order(None, "2024-01-01")
    assert in_order("2024-01-01", None)
    assert in_order(None, None)
    assert in_order("", "9999-12-31")
