"""The summary fold and its incremental maintenance (SPEC §2.2, §2.3, §4.1.1)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnlog.domain.keys import SummaryKey
from learnlog.domain.progress import COMPLETED, IN_PROGRESS, NOT_STARTED
from learnlog.domain.summary import (
    SESSION_FIELDS,
    Session,
    Summary,
    _raise,
    apply_session,
    close_session,
    differences,
    fold,
    new_session,
    record_progress,
)

pytestmark = pytest.mark.unit

KEY = SummaryKey("default", "alice", "course", "batch", "video-1")


def session(sid: str, start: int, end: int | None = None, *, progress: float = 0.0,
            time_spent: float = 0.0, completed_at: int | None = None, repeat: bool = False,
            details: dict[str, object] | None = None,
            extra: dict[str, object] | None = None) -> Session:
    return Session(sid, KEY, "inst-a", start, start if end is None else end, progress,
                   time_spent, completed_at, repeat, False, details, extra)


def apply_all(sessions: list[Session], summary: Summary | None = None) -> Summary:
    result = Summary(KEY) if summary is None else summary
    for s in sessions:
        result = apply_session(result, None, s)
    return result


def assert_matches_fold_in_every_order(sessions: list[Session]) -> Summary:
    expected = fold(KEY, sessions)
    for order in itertools.permutations(sessions):
        got = apply_all(list(order))
        assert differences(got, expected) == {}, [s.session_id for s in order]
    return expected


# --- sessions -----------------------------------------------------------------------------

def test_session_order_and_written() -> None:
    s = session("b", 10, 20)
    assert s.order == (10, "b")
    assert s.written == (20, "b")


def test_new_session_starts_at_reached_progress() -> None:
    summary = Summary(KEY, status=IN_PROGRESS, progress=0.4)
    s = new_session("s1", KEY, "inst-a", 1000, summary)
    assert (s.session_id, s.key, s.instance_id) == ("s1", KEY, "inst-a")
    assert (s.started_at, s.ended_at, s.progress, s.time_spent) == (1000, 1000, 0.4, 0.0)
    assert s.completed_at is None
    assert not s.repeat
    assert not s.closed


def test_new_session_without_summary_starts_at_zero() -> None:
    assert new_session("s1", KEY, "inst-a", 5, None).progress == 0.0


def test_new_repeat_session_starts_at_zero() -> None:
    summary = Summary(KEY, status=COMPLETED, progress=1.0)
    s = new_session("s1", KEY, "inst-a", 5, summary, repeat=True)
    assert s.repeat
    assert s.progress == 0.0


def test_record_progress_adds_time_and_raises_progress() -> None:
    s = record_progress(session("s", 100), 200, progress=0.3, time_delta=12.5)
    assert (s.progress, s.time_spent, s.ended_at, s.completed_at) == (0.3, 12.5, 200, None)
    s = record_progress(s, 300, progress=0.5, time_delta=2.5)
    assert (s.progress, s.time_spent, s.ended_at) == (0.5, 15.0, 300)


def test_record_progress_never_lowers_progress() -> None:
    s = record_progress(session("s", 100, progress=0.6), 200, progress=0.2)
    assert s.progress == 0.6


def test_record_progress_normalises() -> None:
    s = record_progress(session("s", 100), 200, progress=0.0001)
    assert s.progress == 0.001
    assert record_progress(s, 300, progress=float("nan")).progress == 0.001


def test_record_progress_reaching_one_completes_once() -> None:
    s = record_progress(session("s", 100), 200, progress=0.9999999)
    assert (s.progress, s.completed_at) == (1.0, 200)
    s = record_progress(s, 300, progress=1.0, complete=True)
    assert s.completed_at == 200


def test_record_progress_complete_flag_completes() -> None:
    s = record_progress(session("s", 100, progress=0.2), 250, complete=True)
    assert (s.progress, s.completed_at) == (1.0, 250)


def test_record_progress_end_never_moves_back() -> None:
    s = record_progress(session("s", 100, 500), 300, time_delta=1.0)
    assert s.ended_at == 500


def test_record_progress_details_replace_only_when_given() -> None:
    s = record_progress(session("s", 1), 2, progress_details={"p": 1}, extra_fields={"e": 1})
    assert (s.progress_details, s.extra_fields) == ({"p": 1}, {"e": 1})
    s = record_progress(s, 3, time_delta=1.0)
    assert (s.progress_details, s.extra_fields) == ({"p": 1}, {"e": 1})
    s = record_progress(s, 4, progress_details={}, extra_fields={"e": 2})
    assert (s.progress_details, s.extra_fields) == ({}, {"e": 2})


def test_close_session_completes_and_closes() -> None:
    s = close_session(session("s", 100, progress=0.3, time_spent=4.0), 900)
    assert s.closed
    assert (s.progress, s.completed_at, s.ended_at, s.time_spent) == (1.0, 900, 900, 4.0)


def test_close_session_keeps_first_completion_time() -> None:
    s = close_session(record_progress(session("s", 100), 200, progress=1.0), 900)
    assert s.completed_at == 200


# --- fold basics -----------------------------------------------------------------------------

def test_fold_of_nothing_is_not_started() -> None:
    s = fold(KEY, [])
    assert s == Summary(KEY)
    assert (s.status, s.progress, s.view_count, s.first_access) == (NOT_STARTED, 0.0, 0, None)


def test_fold_of_one_open_session_is_in_progress() -> None:
    s = fold(KEY, [session("a", 100, 300, progress=0.4, time_spent=20.0)])
    assert (s.status, s.progress, s.time_spent, s.view_count) == (IN_PROGRESS, 0.4, 20.0, 1)
    assert (s.first_access, s.last_access) == (100, 300)
    assert (s.completed_at, s.last_completed_at) == (None, None)


def test_fold_carries_assessment_figures_from_base() -> None:
    base = Summary(KEY, best_score=0.0, best_max_score=3.0, attempts_count=2, progress=0.9)
    s = fold(KEY, [session("a", 100, progress=0.2)], base)
    assert (s.best_score, s.best_max_score, s.attempts_count) == (0.0, 3.0, 2)
    assert s.progress == 0.2  # session fields still come from the sessions only


def test_first_access_is_min_start_and_last_access_max_of_end_and_start() -> None:
    sessions = [session("a", 500, 700), session("b", 100, 200), session("c", 900, 800)]
    s = assert_matches_fold_in_every_order(sessions)
    assert (s.first_access, s.last_access, s.view_count) == (100, 900, 3)


# --- monotonic status and progress -----------------------------------------------------------

def test_status_never_goes_down_after_completion() -> None:
    done = session("a", 100, 200, progress=1.0, completed_at=200)
    later = session("b", 300, 400, progress=0.1)
    s = assert_matches_fold_in_every_order([done, later])
    assert s.status == COMPLETED
    assert s.completed_at == 200


def test_progress_never_goes_down_without_repeat() -> None:
    s = assert_matches_fold_in_every_order(
        [session("a", 100, progress=0.8), session("b", 300, progress=0.3)])
    assert s.progress == 0.8
    assert s.status == IN_PROGRESS


def test_incremental_updates_of_one_session_are_monotonic() -> None:
    s0 = session("a", 100)
    summary = apply_session(Summary(KEY), None, s0)
    prev = summary
    s = s0
    for t, p in [(200, 0.5), (300, 0.2), (400, 0.7), (500, 0.1)]:
        new = record_progress(s, t, progress=p, time_delta=1.0)
        summary = apply_session(summary, s, new)
        assert summary.progress >= prev.progress
        assert summary.status >= prev.status
        prev, s = summary, new
    assert summary.progress == 0.7
    assert summary.time_spent == 4.0
    assert summary.view_count == 1


# --- order and duplicates ----------------------------------------------------------------

def test_out_of_order_sessions_give_the_same_summary() -> None:
    a = session("a", 100, 150, progress=0.3, time_spent=10.0, details={"at": "a"})
    b = session("b", 200, 260, progress=0.6, time_spent=20.0, details={"at": "b"})
    c = session("c", 300, 320, progress=1.0, time_spent=5.0, completed_at=320)
    s = assert_matches_fold_in_every_order([a, b, c])
    assert (s.status, s.progress, s.time_spent, s.view_count) == (COMPLETED, 1.0, 35.0, 3)
    assert s.progress_details is None  # c was written last and has none


def test_out_of_order_updates_across_sessions() -> None:
    a0, b0 = session("a", 100), session("b", 200)
    a1 = record_progress(a0, 500, progress=0.4, time_delta=3.0)
    b1 = record_progress(b0, 300, progress=0.2, time_delta=4.0)
    expected = fold(KEY, [a1, b1])
    # b's session arrives (both versions) before a's first version.
    s = Summary(KEY)
    s = apply_session(s, None, b0)
    s = apply_session(s, b0, b1)
    s = apply_session(s, None, a0)
    s = apply_session(s, a0, a1)
    assert differences(s, expected) == {}
    assert (s.progress, s.time_spent, s.last_access) == (0.4, 7.0, 500)


def test_duplicate_update_is_a_no_op() -> None:
    a = session("a", 100, 200, progress=0.5, time_spent=9.0, details={"x": 1})
    summary = apply_session(Summary(KEY), None, a)
    assert apply_session(summary, a, a) == summary
    assert apply_session(apply_session(summary, a, a), a, a) == summary


def test_skipped_intermediate_versions_give_the_same_summary() -> None:
    a0 = session("a", 100)
    a1 = record_progress(a0, 200, progress=0.3, time_delta=5.0)
    a2 = record_progress(a1, 300, progress=0.6, time_delta=5.0)
    stepwise = apply_session(apply_session(apply_session(Summary(KEY), None, a0), a0, a1), a1, a2)
    direct = apply_session(Summary(KEY), None, a2)
    assert stepwise == direct
    assert differences(direct, fold(KEY, [a2])) == {}


# --- revisit -------------------------------------------------------------------------------

def test_revisit_keeps_status_progress_and_completion_time() -> None:
    first = close_session(record_progress(session("a", 100), 200, time_delta=60.0), 250)
    summary = apply_session(Summary(KEY), None, first)
    assert (summary.status, summary.progress, summary.completed_at) == (COMPLETED, 1.0, 250)

    revisit = new_session("b", KEY, "inst-a", 10_000, summary)
    after = apply_session(summary, None, revisit)
    assert after.status == COMPLETED
    assert after.progress == 1.0
    assert after.completed_at == 250
    assert after.view_count == 2
    assert after.last_access == 10_000
    assert after.first_access == 100
    assert after.time_spent == 60.0
    assert differences(after, fold(KEY, [first, revisit])) == {}


def test_revisit_time_is_added_and_first_completion_kept() -> None:
    first = close_session(session("a", 100), 250)
    summary = apply_session(Summary(KEY), None, first)
    revisit = new_session("b", KEY, "inst-a", 1000, summary)
    summary = apply_session(summary, None, revisit)
    later = record_progress(revisit, 2000, time_delta=30.0)
    summary = apply_session(summary, revisit, later)
    assert (summary.status, summary.progress, summary.completed_at) == (COMPLETED, 1.0, 250)
    assert (summary.time_spent, summary.last_access, summary.view_count) == (30.0, 2000, 2)


# --- completion times -------------------------------------------------------------------------

def test_completed_at_is_min_and_last_completed_at_is_max() -> None:
    a = session("a", 100, 400, progress=1.0, completed_at=400)
    b = session("b", 50, 900, progress=1.0, completed_at=900)
    c = session("c", 600, 700, progress=0.5)
    s = assert_matches_fold_in_every_order([a, b, c])
    assert (s.completed_at, s.last_completed_at) == (400, 900)


def test_completion_time_zero_is_a_time() -> None:
    s = fold(KEY, [session("a", 0, 0, progress=1.0, completed_at=0)])
    assert (s.status, s.completed_at, s.last_completed_at) == (COMPLETED, 0, 0)


# --- repeat ---------------------------------------------------------------------------------

def test_repeat_resets_progress_but_not_status() -> None:
    done = close_session(session("a", 100), 200)
    summary = apply_session(Summary(KEY), None, done)
    again = new_session("b", KEY, "inst-a", 300, summary, repeat=True)
    summary = apply_session(summary, None, again)
    assert summary.progress == 0.0
    assert summary.status == COMPLETED
    assert summary.completed_at == 200
    assert summary.view_count == 2
    moved = record_progress(again, 400, progress=0.4, time_delta=3.0)
    summary = apply_session(summary, again, moved)
    assert summary.progress == 0.4
    assert differences(summary, fold(KEY, [done, moved])) == {}


def test_sessions_before_the_latest_repeat_do_not_count() -> None:
    early = session("a", 100, 2000, progress=0.9)
    rep = session("b", 300, 400, progress=0.2, repeat=True)
    s = fold(KEY, [early, rep])
    assert s.progress == 0.2
    # the earlier session arriving after the repeat does not raise progress either
    s2 = apply_session(apply_session(Summary(KEY), None, rep), None, early)
    assert s2.progress == 0.2
    assert differences(s2, s) == {}


def test_progress_is_max_since_latest_repeat_inclusive() -> None:
    sessions = [
        session("a", 100, progress=0.9),
        session("b", 200, progress=0.5, repeat=True),
        session("c", 300, progress=0.3),
        session("d", 400, progress=0.1, repeat=True),
        session("e", 500, progress=0.2),
    ]
    assert fold(KEY, sessions).progress == 0.2
    assert fold(KEY, sessions[:3]).progress == 0.5
    assert fold(KEY, sessions[:4]).progress == 0.1
    assert apply_all(sessions).progress == 0.2


def test_updating_the_repeat_session_after_a_later_session_keeps_the_max() -> None:
    # SPEC §2.3: progress = max over sessions since the latest repeat (inclusive).
    # Repeat session r is followed by session b (progress 0.3); a later write to r
    # (0.1 → 0.2) must leave the summary at max(0.2, 0.3) = 0.3. apply_session
    # instead overwrites progress with r's own 0.2.
    r0 = session("r", 100, 150, progress=0.1, repeat=True)
    b = session("b", 200, 250, progress=0.3)
    summary = apply_all([r0, b])
    assert summary.progress == 0.3
    r1 = record_progress(r0, 300, progress=0.2)
    expected = fold(KEY, [r1, b])
    assert expected.progress == 0.3
    assert differences(apply_session(summary, r0, r1), expected) == {}


def test_repeat_session_arriving_after_later_sessions_matches_fold() -> None:
    # A repeat session synced in after a later-started session was already folded:
    # the fold keeps max(repeat, later) = 0.3; apply_session resets to the repeat's 0.1.
    a = session("a", 100, progress=0.5)
    r = session("r", 200, progress=0.1, repeat=True)
    b = session("b", 300, progress=0.3)
    assert fold(KEY, [a, r, b]).progress == 0.3
    assert differences(apply_all([a, b, r]), fold(KEY, [a, r, b])) == {}


# --- details and time -------------------------------------------------------------------------

def test_details_come_from_the_session_written_last() -> None:
    a = session("a", 100, 900, details={"pos": "a"}, extra={"e": "a"})
    b = session("b", 500, 600, details={"pos": "b"}, extra={"e": "b"})
    s = assert_matches_fold_in_every_order([a, b])
    assert (s.progress_details, s.extra_fields) == ({"pos": "a"}, {"e": "a"})


def test_details_tie_on_write_time_is_broken_by_session_id() -> None:
    a = session("a", 100, 700, details={"pos": "a"}, extra={"e": "a"})
    b = session("b", 200, 700, details={"pos": "b"}, extra={"e": "b"})
    s = assert_matches_fold_in_every_order([a, b])
    assert (s.progress_details, s.extra_fields) == ({"pos": "b"}, {"e": "b"})


def test_details_follow_a_later_write_to_an_older_session() -> None:
    a0 = session("a", 100, 200, details={"pos": 1})
    b = session("b", 300, 400, details={"pos": 2})
    summary = apply_all([a0, b])
    assert summary.progress_details == {"pos": 2}
    a1 = record_progress(a0, 500, progress_details={"pos": 3})
    summary = apply_session(summary, a0, a1)
    assert summary.progress_details == {"pos": 3}
    assert differences(summary, fold(KEY, [a1, b])) == {}


def test_time_spent_is_the_exact_sum() -> None:
    sessions = [session("a", 1, time_spent=1.5), session("b", 2, time_spent=2.25),
                session("c", 3, time_spent=100.0), session("d", 4, time_spent=0.0)]
    assert fold(KEY, sessions).time_spent == 103.75
    assert apply_all(sessions).time_spent == 103.75


def test_time_spent_counts_repeat_sessions_too() -> None:
    sessions = [session("a", 1, time_spent=100.0, progress=1.0, completed_at=1),
                session("b", 2, time_spent=7.0, repeat=True)]
    assert fold(KEY, sessions).time_spent == 107.0


def test_time_spent_on_update_adds_only_the_difference() -> None:
    a0 = session("a", 1, time_spent=10.0)
    a1 = replace(a0, time_spent=25.0, ended_at=5)
    summary = apply_session(apply_session(Summary(KEY), None, a0), a0, a1)
    assert summary.time_spent == 25.0
    assert summary.view_count == 1


def test_kolibri_loss_case_two_devices_sum() -> None:
    # SPEC §5: advanced by 100 s on one device and by 7 s on another → both count.
    server = Session("s1", KEY, "server", 1000, 2000, 0.5, 100.0)
    tablet = Session("s2", KEY, "tablet", 1500, 1600, 0.2, 7.0)
    s = assert_matches_fold_in_every_order([server, tablet])
    assert s.time_spent == 107.0


# --- differences -----------------------------------------------------------------------------

def test_differences_of_equal_summaries_is_empty() -> None:
    s = fold(KEY, [session("a", 1, 2, progress=0.5, details={"x": 1})])
    assert differences(s, s) == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", COMPLETED),
        ("progress", 0.75),
        ("time_spent", 0.01),
        ("first_access", 5),
        ("last_access", 6),
        ("view_count", 3),
        ("completed_at", 7),
        ("last_completed_at", 8),
        ("progress_details", {"x": 1}),
        ("extra_fields", {"y": 2}),
    ],
)
def test_differences_reports_each_session_field(field: str, value: Any) -> None:
    base = Summary(KEY)
    changed = replace(base, **{field: value})
    assert differences(changed, base) == {field: (value, getattr(base, field))}


def test_differences_cover_exactly_the_session_fields() -> None:
    assert set(SESSION_FIELDS) == {
        "status", "progress", "time_spent", "first_access", "last_access", "view_count",
        "completed_at", "last_completed_at", "progress_details", "extra_fields"}


def test_differences_tolerate_sub_millisecond_time() -> None:
    base = Summary(KEY, time_spent=10.0)
    assert differences(replace(base, time_spent=10.0005), base) == {}
    assert differences(replace(base, time_spent=9.998), base) == {"time_spent": (9.998, 10.0)}


def test_differences_ignore_bookkeeping_and_assessment_fields() -> None:
    base = Summary(KEY)
    other = replace(base, details_from=(1, "a"), repeat_from=(1, "a"), best_score=1.0,
                    best_max_score=2.0, attempts_count=1)
    assert differences(other, base) == {}


def _frontier_by_definition(frontier: Any, order: Any, progress: float) -> Any:
    """The frontier after a session reached `progress`, computed from its definition: every
    session whose progress is above that of every later session, in order."""
    entries = dict(frontier)
    entries[order] = max(progress, entries.get(order, progress))
    ordered = sorted(entries.items())
    return tuple(e for i, e in enumerate(ordered)
                 if all(e[1] > later[1] for later in ordered[i + 1:]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
                max_size=12))
def test_frontier_raise_matches_its_definition(moves: list[tuple[int, float]]) -> None:
    """The latest session moving is taken by a shortcut; any order of moves must give the
    frontier the definition gives (sessions out of order, as sync delivers them)."""
    frontier: Any = ()
    for at, progress in moves:
        order = (at, f"s{at}")
        expected = _frontier_by_definition(frontier, order, progress)
        frontier = _raise(frontier, order, progress)
        assert frontier == expected
