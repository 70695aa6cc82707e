"""Pushed facts are checked a column at a time when they are well formed (the fast path of
`sync.facts.check_rows`) and row by row otherwise, to name the first bad field. The fast
path must never accept what the row-by-row check refuses, and must return the same rows
and domain values when both accept."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learnlog.domain.errors import InvalidInput
from learnlog.sync.facts import _column_wise, _row_by_row, check_rows, tables

SESSION = {
    "dataset": "default", "user_id": "ana", "session_id": "s1", "collection_key": "k1",
    "context_key": "k1", "content_id": "c1", "started_at": 1_000, "ended_at": 9_000,
    "progress": 0.5, "time_spent": 8.0, "completed_at": None, "repeat": False,
    "closed": True, "progress_details": '{"a":1}', "extra_fields": None,
    "partition": "default:user:ana", "instance_id": "i1", "counter": 3,
    "updated_at": 9_000, "kind": "video", "mastery_level": None}
GROUP = {"dataset": "default", "group_id": "g1", "kind": "class", "name": "Class 1",
         "parent_id": None, "partition": "default:shared", "instance_id": "i1",
         "counter": 4, "updated_at": 5}
VISIT = {"dataset": "default", "session_id": "v1", "visitor_id": "x1", "content_id": "c1",
         "kind": "video", "started_at": 1, "ended_at": 2, "progress": 1.0,
         "time_spent": 1.0, "completed_at": 2, "extra_fields": None,
         "partition": "default:anonymous", "instance_id": "i1", "counter": 5,
         "updated_at": 2}
VALID: dict[str, list[dict[str, Any]]] = {
    "sessions": [SESSION, {**SESSION, "session_id": "s2", "counter": 4},
                 {**SESSION, "user_id": "ben", "partition": "default:user:ben",
                  "session_id": "s3", "counter": 5, "progress": 1.0,
                  "completed_at": 9_000}],
    "groups": [GROUP, {**GROUP, "group_id": "g2", "parent_id": "g1", "counter": 5}],
    "visitor_sessions": [VISIT],
}
ODD = [None, -1, 0, 1, 2, 1.5, -0.5, 2**63, -2**63 - 1, True, False, "", "x\x00y",
       "a" * 300, "not json", "{}", "[1]", float("nan"), float("inf"), [], {},
       "default:user:ben", "default:shared", "other", "default:anonymous", "default"]


def wire(table: str) -> tuple[list[str], list[list[Any]]]:
    columns = [c.name for c in tables()[table].columns]
    return columns, [[row[c] for c in columns] for row in VALID[table]]


def slow(table: str, columns: list[str], raw: list[Any]) -> Any:
    try:
        return _row_by_row(table, columns, raw, "default", "facts[0]")
    except InvalidInput:
        return None


@pytest.mark.parametrize("table", sorted(VALID))
def test_well_formed_rows_take_the_column_wise_path(table: str) -> None:
    columns, raw = wire(table)
    fast = _column_wise(table, columns, raw, "default")
    assert fast is not None
    assert fast == slow(table, columns, raw)
    assert check_rows(table, columns, raw, "default", "facts[0]") == fast


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(table=st.sampled_from(sorted(VALID)), data=st.data())
def test_the_column_wise_path_never_accepts_what_the_rows_refuse(
        table: str, data: st.DataObject) -> None:
    columns, raw = wire(table)
    for _ in range(data.draw(st.integers(1, 3))):  # a few odd values anywhere
        i = data.draw(st.integers(0, len(raw) - 1))
        j = data.draw(st.integers(0, len(columns) - 1))
        raw[i][j] = data.draw(st.sampled_from(ODD))
    if data.draw(st.booleans()):  # now and then a row of the wrong shape
        raw[data.draw(st.integers(0, len(raw) - 1))].append(None)
    fast = _column_wise(table, columns, raw, "default")
    expected = slow(table, columns, raw)
    if fast is not None:
        assert fast == expected
    if expected is None:  # refused: check_rows says which field
        with pytest.raises(InvalidInput, match=r"facts\[0\]"):
            check_rows(table, columns, raw, "default", "facts[0]")


@pytest.mark.parametrize("table", sorted(VALID))
def test_every_odd_value_in_every_column_is_judged_alike(table: str) -> None:
    """One odd value at a time, everywhere: the column-wise path accepts it only where
    the row-by-row check does, with the same result."""
    columns, valid = wire(table)
    for j in range(len(columns)):
        for value in ODD:
            raw = [list(r) for r in valid]
            raw[-1][j] = value
            fast = _column_wise(table, columns, raw, "default")
            assert fast is None or fast == slow(table, columns, raw), (columns[j], value)
