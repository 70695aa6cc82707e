"""Merge rules for sync (SPEC §5): every rule is a join — commutative, associative,
idempotent — and the join of an older and a newer version written by one instance is the
newer one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from learnlog.domain.assessment import Attempt, ItemResponse
from learnlog.domain.enrolment import Enrolment, IssuedCertificate
from learnlog.domain.keys import SummaryKey
from learnlog.domain.mastery import Criterion, ItemAttempt, Try
from learnlog.domain.merge import (
    held,
    join_vectors,
    merge_attempt,
    merge_enrolment,
    merge_item_attempt,
    merge_record,
    merge_session,
    merge_try,
)
from learnlog.domain.summary import Session

pytestmark = pytest.mark.unit

KEY = SummaryKey("d", "u", "k", "x", "c1")
times = st.integers(0, 50)
small = st.floats(0, 10, allow_nan=False).map(lambda f: round(f, 2))
details = st.none() | st.dictionaries(st.sampled_from("ab"), st.integers(0, 3), max_size=2)

sessions = st.builds(
    lambda start, length, progress, spent, done, repeat, closed, d, e, kind: Session(
        "s1", KEY, "i1", start, start + length, progress, spent, done, repeat, closed, d, e,
        kind),
    times, times, st.floats(0, 1).map(lambda f: round(f, 3)), small, st.none() | times,
    st.booleans(), st.booleans(), details, details, st.none() | st.sampled_from(["video"]))
tries = st.builds(
    lambda start, length, spent, complete, done, count, n: Try(
        KEY, 1, Criterion("m_of_n", 1, n), start, start + length, spent, complete, done,
        count),
    times, times, small, st.booleans(), st.none() | times, st.integers(0, 5),
    st.integers(1, 3))
histories = st.lists(st.sampled_from([{"type": "hint"}, {"type": "error"},
                                      {"type": "answer", "correct": 1}]), max_size=3)
item_attempts = st.builds(
    lambda start, length, spent, correct, answer, complete, done, hinted, error, history,
    ordinal, session: ItemAttempt(
        "a1", KEY, 1, session, "q1", correct, start, start + length, spent,
        {"response": answer}, None, complete, done, hinted, error, tuple(history), ordinal),
    times, times, small, st.sampled_from([0.0, 1.0]), st.sampled_from(["4", "5"]),
    st.booleans(), st.none() | times, st.booleans(), st.booleans(), histories,
    st.integers(0, 3), st.sampled_from(["s1", "s2"]))
attempts = st.builds(
    lambda updated, score, ets: Attempt(
        KEY, "t1", score, 3.0, ets, 0, updated,
        (ItemResponse("q1", ets, score, 3.0, {"id": "q1"}, {}),)),
    times, st.sampled_from([0.0, 1.0, 2.0]), times)

certificates = st.lists(st.builds(
    lambda cid, name, at: IssuedCertificate(cid, name, "tok-" + cid, at),
    st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(["gold", "silver"]), times),
    max_size=2, unique_by=lambda c: c.name)  # an enrolment holds one certificate per name
# An enrolment version with the time it was written (what the join orders by); its
# certificates in the order they were issued.
enrolments = st.builds(
    lambda when, at, active, certs: (when, Enrolment("d", "u", "col", "ctx", at, active,
                                                     certificates=tuple(sorted(
                                                         certs, key=lambda c: (c.issued_on,
                                                                               c.name))))),
    times, times, st.booleans(), certificates)
records = st.tuples(times, st.dictionaries(st.sampled_from("ab"), st.integers(0, 2),
                                           max_size=2))


def _timed(rule: Any) -> Any:
    """A rule over (time, value) pairs, as a join over the pairs."""
    return lambda a, b: (max(a[0], b[0]), rule(a[0], a[1], b[0], b[1]))


RULES: list[tuple[Any, Any]] = [(merge_session, sessions), (merge_try, tries),
                                 (merge_item_attempt, item_attempts),
                                 (merge_attempt, attempts),
                                 (_timed(merge_enrolment), enrolments),
                                 (_timed(merge_record), records)]


@pytest.mark.parametrize(("merge", "facts"), RULES,
                         ids=["session", "try", "item attempt", "attempt", "enrolment",
                              "record"])
def test_every_rule_is_a_join(merge: Any, facts: Any) -> None:
    @given(facts, facts, facts)
    def check(a: Any, b: Any, c: Any) -> None:
        assert merge(a, b) == merge(b, a)
        assert merge(merge(a, b), c) == merge(a, merge(b, c))
        assert merge(a, a) == a
        assert merge(a, merge(a, b)) == merge(a, b)

    check()


def test_an_older_and_a_newer_session_give_the_newer() -> None:
    old = Session("s1", KEY, "i1", 10, 20, 0.4, 30.0, None, False, False, {"current": 3})
    new = replace(old, ended_at=40, progress=1.0, time_spent=70.0, completed_at=35,
                  closed=True, progress_details={"current": 9}, extra_fields={"x": 1})
    assert merge_session(old, new) == new == merge_session(new, old)


def test_a_session_changed_by_two_writers_keeps_the_most_of_each_field() -> None:
    """Should the single-writer rule ever be broken: field-wise, nothing is lost."""
    base = Session("s1", KEY, "i1", 10, 20, 0.2, 5.0)
    a = replace(base, ended_at=30, progress=0.9, time_spent=7.0, completed_at=None)
    b = replace(base, ended_at=25, progress=0.5, time_spent=100.0, completed_at=24)
    merged = merge_session(a, b)
    assert (merged.progress, merged.time_spent, merged.ended_at, merged.completed_at) == (
        0.9, 100.0, 30, 24)


def test_an_item_attempts_answer_comes_from_its_last_write() -> None:
    first = ItemAttempt("a1", KEY, 1, "s1", "q1", 0.0, 10, 12, 2.0, {"response": "4"},
                        history=({"type": "answer", "correct": 0},))
    replaced = replace(first, correct=1.0, answer={"response": "5"}, ended_at=20,
                       time_spent=9.0, complete=True, completed_at=20,
                       history=(*first.history, {"type": "answer", "correct": 1}))
    assert merge_item_attempt(first, replaced) == replaced
    assert merge_item_attempt(replaced, first) == replaced


def test_facts_of_different_identities_are_never_merged() -> None:
    s = Session("s1", KEY, "i1", 1, 2)
    with pytest.raises(ValueError, match="sessions"):
        merge_session(s, replace(s, session_id="s2"))
    t = Try(KEY, 1, Criterion("m_of_n", 1, 1), 1, 2)
    with pytest.raises(ValueError, match="tries"):
        merge_try(t, replace(t, level=2))


def test_version_vectors() -> None:
    assert join_vectors({"a": 3, "b": 1}, {"b": 4, "c": 2}) == {"a": 3, "b": 4, "c": 2}
    assert held({"a": 3}, "a", 3) and not held({"a": 3}, "a", 4)
    assert not held({}, "b", 1)


def test_canonical_json_orders_mappings_and_refuses_the_unknown() -> None:
    from types import MappingProxyType

    from learnlog.domain.merge import canonical

    assert canonical(MappingProxyType({"b": 1, "a": 2})) == '{"a":2,"b":1}'
    with pytest.raises(TypeError):
        canonical(object())


def test_an_enrolment_keeps_its_first_time_its_last_state_and_each_certificate_once() -> None:
    gold_a = IssuedCertificate("x", "gold", "t1", 50)
    gold_b = IssuedCertificate("y", "gold", "t2", 40)
    silver = IssuedCertificate("z", "silver", "t3", 60)
    a = Enrolment("d", "u", "col", "ctx", 10, True, certificates=(gold_a, silver))
    b = Enrolment("d", "u", "col", "ctx", 5, False, certificates=(gold_b,))
    merged = merge_enrolment(100, a, 200, b)  # b (unenrolled) was written last
    assert (merged.enrolled_at, merged.active) == (5, False)
    assert merged.certificates == (gold_b, silver)  # the first gold issued, then silver
    with pytest.raises(ValueError, match="enrolments"):
        merge_enrolment(1, a, 2, replace(b, context_id="other"))


def test_a_record_is_the_one_written_last() -> None:
    assert merge_record(1, {"role": "coach"}, 2, {"role": "learner"}) == {"role": "learner"}
    assert merge_record(2, {"role": "coach"}, 1, {"role": "learner"}) == {"role": "coach"}


def test_a_deletion_removes_what_was_written_before_it() -> None:
    from learnlog.domain.merge import written_before

    erasure = (1_000, "a", 50)
    # By the deleting instance: its counter orders, even within one millisecond.
    assert written_before((1_000, "a", 49), erasure)
    assert not written_before((1_000, "a", 51), erasure)
    # By another instance: its clock, a tie counting as before.
    assert written_before((1_000, "b", 999), erasure)
    assert not written_before((1_001, "b", 1), erasure)


def test_what_an_erasure_covers() -> None:
    from learnlog.domain.merge import erasure_covers

    assert erasure_covers(None, None, ("k", "x"), is_enrolment=False)  # everything
    assert erasure_covers(("k", "x"), ("k", "b"), ("k", "x"), is_enrolment=False)
    assert not erasure_covers(("k", "x"), ("k", "b"), ("k", "y"), is_enrolment=False)
    assert erasure_covers(None, ("k", "b"), ("k", "b"), is_enrolment=True)
    assert not erasure_covers(("k", "x"), None, ("k", "x"), is_enrolment=True)
