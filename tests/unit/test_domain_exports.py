"""CSV export rules (Kolibri's csv_export): columns, cells and the download name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from learnlog.domain.exports import (
    SESSION,
    SUMMARY,
    channel_of,
    filename,
    headers,
    progress_cell,
    seconds_cell,
)
from learnlog.domain.progress import floor_to_ten_thousandths

pytestmark = pytest.mark.unit


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def test_only_the_summary_export_has_a_completion_column() -> None:
    assert "Time of completion" not in headers(SESSION)
    summary = headers(SUMMARY)
    assert summary[8:11] == ["Time of last interaction", "Time of completion",
                             "Time Spent (sec)"]
    assert len(summary) == len(headers(SESSION)) + 1 == 13
    assert summary[0] == "Dataset name" and summary[-1] == "Content kind"


@pytest.mark.parametrize(("progress", "cell"), [
    (0.0, "0.0000"), (1.0, "1.0000"), (0.12345, "0.1234"), (0.99999, "0.9999"),
    (0.29, "0.2900"),  # 0.29 · 10000 = 2899.9999999999995 is not floored to 2899
    (0.5, "0.5000"), (1.01, "1.0100"),
])
def test_progress_is_rounded_down_to_four_decimals(progress: float, cell: str) -> None:
    assert progress_cell(progress) == cell


def test_floor_to_ten_thousandths_keeps_exact_values() -> None:
    assert [floor_to_ten_thousandths(p) for p in (0.57, 0.58, 0.0001)] == [0.57, 0.58, 0.0001]


@pytest.mark.parametrize(("seconds", "cell"), [(0, "0.0"), (12.34, "12.3"), (59.96, "60.0")])
def test_time_spent_has_one_decimal(seconds: float, cell: str) -> None:
    assert seconds_cell(seconds) == cell


def test_a_key_without_a_collection_has_no_channel() -> None:
    assert channel_of("maths", "c1") == "maths"
    assert channel_of("c1", "c1") == ""


def test_the_download_is_named_after_the_days_it_covers() -> None:
    assert filename("default", SESSION, ms(2024, 1, 1), ms(2024, 2, 1), ms(2024, 3, 5)) == (
        "default_content_session_logs_from_2024-01-01_to_2024-01-31.csv")
    assert filename("a/b c", SUMMARY, None, None, ms(2024, 3, 5, 12)) == (
        "a_b_c_content_summary_logs_from_beginning_to_2024-03-05.csv")
    assert filename("école", SESSION, None, None, ms(2024, 3, 5)).startswith("école_")
