"""Small rules of the logger family and identity: visits, group parents, exercise
criteria by content kind, Kolibri's progress total and completion."""

from __future__ import annotations

import pytest

from learnlog.domain.errors import InvalidInput
from learnlog.domain.groups import check_parent
from learnlog.domain.mastery import Criterion, criterion_for, total_progress
from learnlog.domain.progress import is_complete
from learnlog.domain.visits import IDLE_MS, MAX_LISTED, add_recent, continues

pytestmark = pytest.mark.unit


def test_a_visit_continues_for_five_minutes_exactly() -> None:
    assert continues(1_000, 1_000 + IDLE_MS)
    assert not continues(1_000, 1_000 + IDLE_MS + 1)
    assert not continues(None, 1_000)


def test_recent_pages_are_kept_once_and_bounded() -> None:
    assert add_recent(["/a"], "/a") == ["/a"]
    assert add_recent(["/a"], None) == ["/a"]
    assert add_recent(["/a"], "/b") == ["/a", "/b"]
    full = [f"/{i}" for i in range(MAX_LISTED)]
    assert add_recent(full, "/new") == [*full[1:], "/new"]


def test_a_learnergroup_lives_in_a_classroom() -> None:
    check_parent("learnergroup", "c1", "classroom")
    check_parent("classroom", None, None)
    for kind, parent, parent_kind in (("learnergroup", None, None),
                                      ("learnergroup", "g1", "learnergroup"),
                                      ("learnergroup", "nope", None),
                                      ("classroom", "c1", "classroom")):
        with pytest.raises(InvalidInput) as raised:
            check_parent(kind, parent, parent_kind)
        assert raised.value.field == "request.parentId"


def test_only_exercises_have_a_criterion() -> None:
    assert criterion_for("exercise", {"type": "num_correct_in_a_row_2"}) == Criterion(
        "num_correct_in_a_row_2", 2, 2)
    assert criterion_for("video", None) is None
    with pytest.raises(InvalidInput) as missing:
        criterion_for("exercise", None)
    assert (missing.value.code, missing.value.field) == (
        "MANDATORY_PARAMETER_MISSING", "mastery_model")
    with pytest.raises(InvalidInput) as extra:
        criterion_for("video", {"type": "do_all", "n": 3})
    assert (extra.value.code, extra.value.field) == ("INVALID_PARAMETER_VALUE", "mastery_model")


def test_total_progress_counts_completions_and_completed_tries() -> None:
    # 3 completed contents, a partial one, an exercise with 2 completed tries, and a
    # completed summary whose tries are all incomplete (counts 0).
    assert total_progress([(1.0, None), (1.0, None), (1.0, None), (0.5, None), (1.0, 2),
                           (1.0, 0)]) == 5
    assert total_progress([]) == 0


def test_complete_means_progress_reached_one() -> None:
    assert is_complete(1.0) and not is_complete(0.999)
