"""Group activity aggregates (SPEC §2.7): a hand-computed group, and incremental upkeep
equal to recomputation in any order.

The fixture, worked out by hand: a group of five learners and two activities.
Activity A (a collection; its assessment content is worth 3 points):
  m1  enrolled under x: completed (status 2, 100 %, 4 of 4), best score 2 of 3 → 66.666667 %
  m2  enrolled under x (status 1, 25 %, score 3/3) and under y (status 1, 50 %, score
      1/3): counts once, with y, the more advanced → 50 %, 33.333333 %
  m3  enrolled, never started (status 0, 0 %), no score
  m4  neither enrolled nor consumed anything: not enrolled
  m5  consumed without an enrolment (status 1, 25 %), no score
  memberCount 5, enrolledCount 4 (m1 m2 m3 m5), startedCount 3 (m1 m2 m5),
  completedCount 1, completionPercentage 100·1/4 = 25.00,
  avgProgress (100 + 50 + 0 + 25)/4 = 43.75,
  avgScorePercent over the 2 scored members (66.666667 + 33.333333)/2 = 50.00.
  After m1 leaves: 4 members, 3 enrolled, 2 started, 0 completed, 0.00 %,
  avgProgress (50 + 0 + 25)/3 = 25.00, avgScorePercent 33.33.
Activity B: nobody enrolled: every count 0 except memberCount 5, every percentage 0.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from learnlog.domain.group_aggregates import (
    NOBODY,
    ContentFigures,
    ContextFigures,
    MemberFigures,
    Totals,
    member_figures,
    member_row,
    most_advanced,
    single_content,
    totals_of,
)

pytestmark = pytest.mark.unit

A = {
    "m1": [ContextFigures(2, 100, 4, enrolled=True, consumed=True, score=2, max_score=3)],
    "m2": [ContextFigures(1, 25, 1, enrolled=True, consumed=True, score=3, max_score=3),
           ContextFigures(1, 50, 2, enrolled=True, consumed=True, score=1, max_score=3)],
    "m3": [ContextFigures(0, 0, 0, enrolled=True)],
    "m4": [],
    "m5": [ContextFigures(1, 25, 1, consumed=True)],
}


def test_the_hand_computed_group() -> None:
    figures = {m: member_figures(contexts) for m, contexts in A.items()}
    assert figures["m2"] == MemberFigures(True, True, False, 50, 33_333_333)
    assert figures["m1"].score_micro == 66_666_667
    assert figures["m3"] == MemberFigures(enrolled=True)
    assert figures["m4"] == NOBODY
    totals = totals_of(figures.values())
    assert totals.metrics() == {
        "memberCount": 5, "enrolledCount": 4, "startedCount": 3, "completedCount": 1,
        "completionPercentage": 25.0, "avgProgress": 43.75, "avgScorePercent": 50.0}
    after_m1_left = totals.minus(figures["m1"])
    assert after_m1_left.metrics() == {
        "memberCount": 4, "enrolledCount": 3, "startedCount": 2, "completedCount": 0,
        "completionPercentage": 0.0, "avgProgress": 25.0, "avgScorePercent": 33.33}
    assert after_m1_left == totals_of(f for m, f in figures.items() if m != "m1")


def test_nobody_enrolled_is_zero_not_an_error() -> None:
    totals = totals_of([NOBODY] * 5)
    assert totals.metrics() == {
        "memberCount": 5, "enrolledCount": 0, "startedCount": 0, "completedCount": 0,
        "completionPercentage": 0.0, "avgProgress": 0.0, "avgScorePercent": 0.0}
    assert Totals().metrics()["avgProgress"] == 0.0


def test_the_most_advanced_standing_counts_and_ties_keep_the_first() -> None:
    done = ContextFigures(2, 100, 3, enrolled=True)
    ahead = ContextFigures(1, 80, 2, enrolled=True, score=1, max_score=2)
    level = ContextFigures(1, 80, 2, enrolled=True, score=2, max_score=2)
    assert member_figures([ahead, done]).completed is True
    assert member_figures([ahead, level]).score_micro == 50 * 1_000_000
    assert member_figures([level, ahead]).score_micro == 100 * 1_000_000
    assert member_figures([ContextFigures(1, 10, 0)]) == NOBODY  # neither enrolled nor used


def test_two_decimals_round_half_up() -> None:
    thirds = totals_of([MemberFigures(True, True, True, 100),
                        MemberFigures(True, False, False, 0),
                        MemberFigures(True, False, False, 0)])
    assert thirds.metrics()["completionPercentage"] == 33.33
    assert thirds.metrics()["avgProgress"] == 33.33
    two_thirds = totals_of([MemberFigures(True, True, True, 100),
                            MemberFigures(True, True, True, 100),
                            MemberFigures(True, False, False, 1)])
    assert two_thirds.metrics()["completionPercentage"] == 66.67
    assert totals_of([MemberFigures(True, True, False, 1),
                      MemberFigures(True, True, False, 0)]).metrics()["avgProgress"] == 0.5
    assert totals_of([MemberFigures(True, score_micro=125),
                      MemberFigures(True, score_micro=0)]).metrics()[
        "avgScorePercent"] == 0.0  # 0.0000625 % rounds to 0.00
    assert member_figures([ContextFigures(1, 0, 0, consumed=True, score=0.5, max_score=3)]
                          ).shown == {"status": 1, "progress": 0, "scorePercent": 16.666667}


figures = st.builds(
    MemberFigures, st.booleans(), st.booleans(), st.booleans(), st.integers(0, 100),
    st.one_of(st.none(), st.integers(0, 100 * 1_000_000)))


@given(st.lists(st.tuples(st.integers(0, 7), figures), max_size=40))
def test_incremental_changes_equal_the_fold(changes: list[tuple[int, MemberFigures]]) -> None:
    """Members join (NOBODY → figures) and change in any order; each change applied as
    minus-old-plus-new gives exactly the totals recomputed from the final figures."""
    current: dict[int, MemberFigures] = {}
    totals = Totals()
    for member, new in changes:
        if member not in current:
            totals = totals.plus(NOBODY)
            current[member] = NOBODY
        totals = totals.changed(current[member], new)
        current[member] = new
    assert totals == totals_of(current.values())


def test_two_changes_combine_into_one() -> None:
    a = Totals().plus(MemberFigures(True, True, False, 40, 5))
    b = Totals().minus(MemberFigures(True, False, False, 10))
    assert a.combined(b) == Totals(0, 0, 1, 0, 30, 1, 5)
    assert Totals(2, 2, 2, 1, 150, 1, 7).plus(MemberFigures()).combined(a.combined(b)) == (
        Totals(3, 2, 3, 1, 180, 2, 12))


def test_a_change_moves_the_metrics_whose_inputs_it_changes() -> None:
    joined = Totals().plus(MemberFigures())
    assert joined.moved() == {"memberCount"}
    scored = Totals().changed(MemberFigures(True, True), MemberFigures(True, True, True, 100, 7))
    assert scored.moved() == {"completedCount", "completionPercentage", "avgProgress",
                              "avgScorePercent"}
    assert Totals().moved() == frozenset()


def test_a_content_activity_is_a_collection_of_one() -> None:
    assert member_figures([single_content(1, None, None)]) == MemberFigures(True, True)
    assert member_figures([single_content(2, 2.0, 4.0)]) == MemberFigures(
        True, True, True, 100, 50_000_000)


def test_a_members_row_shows_its_most_advanced_standing() -> None:
    behind = ContextFigures(1, 25, 1, enrolled=True, consumed=True, score=3, max_score=3)
    ahead = ContextFigures(1, 50, 2, enrolled=True, consumed=True, score=1, max_score=3)
    quiz = ContentFigures("c4", 30.5, 1.0, 3.0, 2, 2_000)
    video = ContentFigures("c1", 60.25, None, None, 0, 5_000)
    row = member_row([behind, ahead], [[ContentFigures("c4", 9, 3.0, 3.0, 1, 1_000)],
                                       [quiz, video]])
    assert row == [("status", 1, 5_000), ("progress", 50, 5_000),
                   ("completedCount", 2, 5_000), ("scorePercent", 33.333333, 5_000),
                   ("timeSpent", 90.75, 5_000), ("score:c4", 1.0, 2_000),
                   ("max_score:c4", 3.0, 2_000), ("attempts_count:c4", 2, 2_000)]
    assert most_advanced([behind, ahead]) == 1
    assert most_advanced([ahead, ahead]) == 0  # ties: the first


def test_a_member_with_no_standing_shows_zeros_with_no_time() -> None:
    assert member_row([ContextFigures(1, 10, 0)], [[]]) == [
        ("status", 0, None), ("progress", 0, None), ("completedCount", 0, None),
        ("scorePercent", 0, None), ("timeSpent", 0, None)]
    enrolled = ContextFigures(0, 0, 0, enrolled=True)
    assert member_row([enrolled], [[]])[0] == ("status", 0, None)


def test_the_change_between_two_totals_takes_one_to_the_other() -> None:
    have, want = Totals(5, 4, 3, 2, 150, 1, 7), Totals(5, 3, 3, 1, 90, 2, 9)
    assert want.less(have) == Totals(0, -1, 0, -1, -60, 1, 2)
    assert have.combined(want.less(have)) == want
