"""The viewer rules of SPEC §2.2 to §2.5 through the HTTP API, on SQLite and PostgreSQL.

Progress and status are monotonic, time is additive, assessments keep the latest answer per
item and the best attempt, collections count required leaves of the current structure.
After every scenario `learnlog verify` (the fold of the facts) must agree with what the
API maintained incrementally (SPEC §2.3).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from learnlog.bootstrap import Runtime
from learnlog.jobs.outbox import pending
from learnlog.service.verify import verify
from tests.support import Api, assess, leaf, unit

pytestmark = pytest.mark.integration

T = TypeVar("T")

USER = "learner-1"
CONTENT = "do_video_1"
COURSE = "course-1"
MAX_DELTA = 6 * 3600  # max_time_spent_delta default (SPEC §2.2)
ETS = 1_700_000_000_000


# --- helpers ------------------------------------------------------------------------------

def eventually(probe: Callable[[], T], accept: Callable[[T], bool], timeout: float = 5.0) -> T:
    """Poll `probe` until `accept` holds (the outbox runs every ~0.2 s); returns the last value
    so that the assertion after it shows what was seen when it never held."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if accept(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def settle(runtime: Runtime, timeout: float = 10.0) -> None:
    """Wait until the outbox (structure changes) is drained."""
    left = eventually(lambda: pending(runtime.engine), lambda n: n == 0, timeout)
    assert left == 0, f"{left} outbox rows still pending after {timeout} s"


def assert_facts_agree(runtime: Runtime) -> None:
    """`learnlog verify`: every stored summary and enrolment equals the fold of the facts."""
    settle(runtime)
    with runtime.read_engine.connect() as conn:
        report = verify(conn, runtime.ctx.mode)
    assert report.problems == [], report.problems
    assert report.summaries > 0


def tick() -> None:
    """Let the millisecond clock move, so that "later" is observable in timestamps."""
    time.sleep(0.02)


def error_of(response: dict[str, Any]) -> str | None:
    err: str | None = response["params"]["err"]
    return err


def attempt_events(*scores: float, ets: int = ETS, prefix: str = "q") -> list[dict[str, Any]]:
    """One ASSESS event per item (maxscore 1), items q1, q2, … one second apart."""
    return [assess(f"{prefix}{i}", s, 1.0, ets + 1000 * i) for i, s in enumerate(scores, 1)]


# --- §2.2 progress and status are monotonic ----------------------------------------------

def test_progress_never_goes_down(api: Api, runtime: Runtime) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, progress=60, timespent=5)
    api.update(USER, CONTENT, progress=30, timespent=5)

    row = api.one(USER, CONTENT)
    assert row["progress"] == 60
    assert row["status"] == 1
    assert row["completedOn"] is None
    assert_facts_agree(runtime)


def test_update_to_100_percent_completes(api: Api, runtime: Runtime) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, progress=100, timespent=12)

    row = api.one(USER, CONTENT)
    assert row["status"] == 2
    assert row["progress"] == 100
    assert isinstance(row["completedOn"], int)
    assert_facts_agree(runtime)


def test_status_and_progress_never_go_back_after_completion(api: Api, runtime: Runtime
                                                             ) -> None:
    api.start(USER, CONTENT)
    api.end(USER, CONTENT)
    done = api.one(USER, CONTENT)
    tick()
    api.update(USER, CONTENT, progress=30, timespent=3)
    api.update(USER, CONTENT, progressDetails={"progress": 10}, timespent=3)

    row = api.one(USER, CONTENT)
    assert (row["status"], row["progress"]) == (2, 100)
    assert row["completedOn"] == done["completedOn"]
    assert_facts_agree(runtime)


@pytest.mark.parametrize(("details", "percent", "status"), [
    ({"progress": 45}, 45, 1),
    ({"visitedLength": 50, "totalLength": 200}, 25, 1),
    ({"endPageSeen": True}, 100, 2),
    ({"visitedContentEnd": True}, 100, 2),
], ids=["progress", "visited-over-total", "endPageSeen", "visitedContentEnd"])
def test_progress_is_derived_from_progress_details(api: Api, runtime: Runtime,
                                                   details: dict[str, Any], percent: int,
                                                   status: int) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, progressDetails=details, timespent=1)

    row = api.one(USER, CONTENT)
    assert row["progress"] == percent
    assert row["status"] == status
    assert row["progressDetails"] == details
    assert_facts_agree(runtime)


def test_details_that_imply_nothing_leave_progress_unchanged(api: Api, runtime: Runtime
                                                             ) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, progress=40)
    api.update(USER, CONTENT, progressDetails={"currentPage": 3}, timespent=2)

    row = api.one(USER, CONTENT)
    assert row["progress"] == 40
    assert row["status"] == 1
    assert row["progressDetails"] == {"currentPage": 3}  # replaced, not merged
    assert_facts_agree(runtime)


def test_explicit_progress_wins_over_progress_details(api: Api, runtime: Runtime) -> None:
    # Derivation applies only when `progress` is absent (SPEC §4.1.2).
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, progress=20, progressDetails={"endPageSeen": True})

    row = api.one(USER, CONTENT)
    assert (row["progress"], row["status"]) == (20, 1)
    assert_facts_agree(runtime)


# --- §2.2 out-of-order and duplicate updates ------------------------------------------

def test_duplicate_update_adds_time_but_not_progress(api: Api, runtime: Runtime) -> None:
    api.start(USER, CONTENT)
    update: dict[str, Any] = {"progress": 50, "timespent": 10,
                              "progressDetails": {"progress": 50}}
    api.update(USER, CONTENT, **update)
    api.update(USER, CONTENT, **update)

    row = api.one(USER, CONTENT)
    assert row["timeSpent"] == pytest.approx(20)  # time is additive
    assert (row["progress"], row["status"]) == (50, 1)
    assert row["viewCount"] == 1
    assert_facts_agree(runtime)


def test_older_lower_progress_after_a_higher_one_changes_nothing(api: Api, runtime: Runtime
                                                                 ) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, progress=80)
    api.update(USER, CONTENT, progress=50)  # a late, older update delivered last
    api.update(USER, CONTENT, progressDetails={"visitedLength": 10, "totalLength": 100})

    row = api.one(USER, CONTENT)
    assert (row["progress"], row["status"]) == (80, 1)
    assert row["completedOn"] is None
    assert_facts_agree(runtime)


# --- §4.1.1 revisit ---------------------------------------------------------------------

def test_revisit_of_completed_content_keeps_completion(api: Api, runtime: Runtime) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, progress=100, timespent=30)
    before = api.one(USER, CONTENT)
    tick()
    api.start(USER, CONTENT)

    after = api.one(USER, CONTENT)
    assert (after["status"], after["progress"]) == (2, 100)
    assert after["completedOn"] == before["completedOn"]
    assert after["viewCount"] == before["viewCount"] + 1
    assert after["lastAccessTime"] > before["lastAccessTime"]
    assert after["timeSpent"] == pytest.approx(30)

    # Working through it again does not undo or re-stamp the completion either.
    tick()
    api.update(USER, CONTENT, progress=10, timespent=5)
    again = api.one(USER, CONTENT)
    assert (again["status"], again["progress"]) == (2, 100)
    assert again["completedOn"] == before["completedOn"]
    assert again["timeSpent"] == pytest.approx(35)
    assert_facts_agree(runtime)


# --- §4.1.2/3 start, update, end ------------------------------------------------------

def test_update_before_start_is_rejected(api: Api, runtime: Runtime) -> None:
    response = api.update(USER, CONTENT, progress=50, timespent=10, status=400)
    assert error_of(response) == "VIEW_NOT_STARTED"
    assert response["responseCode"] == "CLIENT_ERROR"

    row = api.one(USER, CONTENT)  # nothing was recorded
    assert (row["status"], row["progress"], row["timeSpent"], row["viewCount"]) == (0, 0, 0, 0)

    api.start(USER, CONTENT)  # and once started, the same update works
    api.update(USER, CONTENT, progress=50, timespent=10)
    assert api.one(USER, CONTENT)["progress"] == 50
    assert_facts_agree(runtime)


def test_end_before_start_is_rejected(api: Api, runtime: Runtime) -> None:
    response = api.end(USER, CONTENT, status=400)
    assert error_of(response) == "VIEW_NOT_STARTED"
    assert api.one(USER, CONTENT)["status"] == 0


def test_end_completes_and_stamps_completion_once(api: Api, runtime: Runtime) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, progress=40, timespent=20)
    assert api.end(USER, CONTENT)["result"] == {CONTENT: "Progress ended"}
    first = api.one(USER, CONTENT)
    assert (first["status"], first["progress"]) == (2, 100)
    assert isinstance(first["completedOn"], int)
    assert first["completedOn"] <= first["lastAccessTime"]

    tick()
    api.end(USER, CONTENT)
    second = api.one(USER, CONTENT)
    assert second["completedOn"] == first["completedOn"]
    assert (second["status"], second["progress"]) == (2, 100)
    assert second["timeSpent"] == pytest.approx(20)
    assert_facts_agree(runtime)


# --- §2.2 time ----------------------------------------------------------------------------

def test_time_spent_is_summed(api: Api, runtime: Runtime) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, timespent=30)
    api.update(USER, CONTENT, timespent=40)
    assert api.one(USER, CONTENT)["timeSpent"] == pytest.approx(70)
    assert_facts_agree(runtime)


def test_time_spent_is_summed_over_sessions(api: Api, runtime: Runtime) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, timespent=30)
    api.end(USER, CONTENT)
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, timespent=40.5)

    row = api.one(USER, CONTENT)
    assert row["timeSpent"] == pytest.approx(70.5)
    assert row["viewCount"] == 2
    assert_facts_agree(runtime)


def test_timespent_above_the_limit_is_a_400_and_applies_nothing(api: Api, runtime: Runtime
                                                                ) -> None:
    api.start(USER, CONTENT)
    api.update(USER, CONTENT, timespent=MAX_DELTA)  # exactly 6 h is allowed
    response = api.update(USER, CONTENT, progress=90, timespent=MAX_DELTA + 1, status=400)
    assert response["responseCode"] == "CLIENT_ERROR"
    assert "timespent" in (response["params"]["errmsg"] + str(response["result"]))

    row = api.one(USER, CONTENT)
    assert row["timeSpent"] == pytest.approx(MAX_DELTA)  # never capped silently, not added
    assert row["progress"] == 0
    assert_facts_agree(runtime)


# --- §2.4 assessments -----------------------------------------------------------------

QUIZ = "do_quiz_1"


def test_best_score_over_attempts(api: Api, runtime: Runtime) -> None:
    api.start(USER, QUIZ)
    # The better attempt first: the best score is the highest, not the latest.
    api.submit(USER, QUIZ, attemptId="attempt-2", assessmentTs=ETS,
               assessments=attempt_events(1, 1, 0, ets=ETS))
    api.submit(USER, QUIZ, attemptId="attempt-1", assessmentTs=ETS + 60_000,
               assessments=attempt_events(1, 0.33, 0, ets=ETS + 60_000))

    read = api.assessments(USER, [QUIZ])[QUIZ]
    assert read["score"] == pytest.approx(2.0)
    assert read["max_score"] == pytest.approx(3.0)
    assert read["attempts_count"] == 2
    by_id = {a["attemptId"]: a for a in read["attempts"]}
    assert by_id["attempt-1"]["grandTotal"] == "1.33/3.0"
    assert by_id["attempt-1"]["score"] == pytest.approx(1.33)  # floats, never truncated
    assert by_id["attempt-2"]["grandTotal"] == "2.0/3.0"
    assert by_id["attempt-1"]["lastAttemptedOn"] == ETS + 60_000

    row = api.one(USER, QUIZ)
    assert row["score"] == pytest.approx(2.0)
    assert row["max_score"] == pytest.approx(3.0)
    assert_facts_agree(runtime)


def test_latest_answer_per_item_wins(api: Api, runtime: Runtime) -> None:
    events = [
        assess("q1", 0.0, 1.0, ETS + 5_000),  # the learner's final answer to q1 (listed first)
        assess("q1", 1.0, 1.0, ETS),          # an earlier, correct answer to q1
        assess("q2", 1.0, 1.0, ETS + 2_000),
    ]
    api.start(USER, QUIZ)
    api.submit(USER, QUIZ, attemptId="a1", assessmentTs=ETS, assessments=events)

    read = api.assessments(USER, [QUIZ])[QUIZ]
    assert read["attempts_count"] == 1
    assert read["score"] == pytest.approx(1.0)
    assert read["max_score"] == pytest.approx(2.0)  # q1 counted once
    assert read["attempts"][0]["grandTotal"] == "1.0/2.0"
    assert_facts_agree(runtime)


def test_resubmitted_attempt_replaces_only_when_strictly_newer(api: Api, runtime: Runtime
                                                               ) -> None:
    api.start(USER, QUIZ)
    api.submit(USER, QUIZ, attemptId="a1", assessmentTs=ETS + 1_000,
               assessments=attempt_events(1, 1, 1))
    # equal and older assessmentTs: ignored
    api.submit(USER, QUIZ, attemptId="a1", assessmentTs=ETS + 1_000,
               assessments=attempt_events(0, 0, 0))
    api.submit(USER, QUIZ, attemptId="a1", assessmentTs=ETS,
               assessments=attempt_events(0, 0, 0))
    kept = api.assessments(USER, [QUIZ])[QUIZ]
    assert kept["attempts_count"] == 1
    assert kept["score"] == pytest.approx(3.0)
    assert kept["attempts"][0]["grandTotal"] == "3.0/3.0"
    assert kept["attempts"][0]["lastAttemptedOn"] == ETS + 1_000

    # strictly newer: replaces (the best score follows, even though it is lower)
    api.submit(USER, QUIZ, attemptId="a1", assessmentTs=ETS + 2_000,
               assessments=attempt_events(1, 0, 0))
    replaced = api.assessments(USER, [QUIZ])[QUIZ]
    assert replaced["attempts_count"] == 1
    assert replaced["score"] == pytest.approx(1.0)
    assert replaced["attempts"][0]["grandTotal"] == "1.0/3.0"
    assert replaced["attempts"][0]["lastAttemptedOn"] == ETS + 2_000
    assert api.one(USER, QUIZ)["score"] == pytest.approx(1.0)
    assert_facts_agree(runtime)


def test_submission_completes_the_content_without_a_view(api: Api, runtime: Runtime) -> None:
    response = api.submit(USER, QUIZ, attemptId="a1", assessmentTs=ETS,
                          assessments=attempt_events(1, 0))
    assert response["result"] == {QUIZ: "SUCCESS"}

    row = api.one(USER, QUIZ)
    assert (row["status"], row["progress"]) == (2, 100)
    assert isinstance(row["completedOn"], int)
    assert row["score"] == pytest.approx(1.0)
    assert row["max_score"] == pytest.approx(2.0)
    assert_facts_agree(runtime)


def test_submission_completes_a_started_content(api: Api, runtime: Runtime) -> None:
    api.start(USER, QUIZ)
    api.update(USER, QUIZ, progress=30, timespent=15)
    api.submit(USER, QUIZ, attemptId="a1", assessmentTs=ETS, assessments=attempt_events(1))

    row = api.one(USER, QUIZ)
    assert (row["status"], row["progress"]) == (2, 100)
    assert row["timeSpent"] == pytest.approx(15)
    assert_facts_agree(runtime)


def test_lms_service_shape_of_assessments(api: Api, runtime: Runtime) -> None:
    api.start(USER, QUIZ)
    api.submit(USER, QUIZ, assessments=[
        {"assessmentTs": ETS, "attemptId": "lms-1", "events": attempt_events(1, 0.5, 0)},
        {"assessmentTs": ETS + 60_000, "attemptId": "lms-2",
         "events": attempt_events(1, 1, 0.5, ets=ETS + 60_000)},
    ])

    read = api.assessments(USER, [QUIZ])[QUIZ]
    assert read["attempts_count"] == 2
    totals = {a["attemptId"]: a["grandTotal"] for a in read["attempts"]}
    assert totals == {"lms-1": "1.5/3.0", "lms-2": "2.5/3.0"}
    assert read["score"] == pytest.approx(2.5)
    assert (api.one(USER, QUIZ)["status"]) == 2
    assert_facts_agree(runtime)


def test_missing_attempt_id_is_derived_deterministically(api: Api, runtime: Runtime) -> None:
    api.start(USER, QUIZ)
    events = attempt_events(1, 0, 1)
    api.submit(USER, QUIZ, assessments=events)
    api.submit(USER, QUIZ, assessments=events)  # a retry of the same submission

    read = api.assessments(USER, [QUIZ])[QUIZ]
    assert read["attempts_count"] == 1
    assert len(read["attempts"]) == 1
    first_id = read["attempts"][0]["attemptId"]
    assert first_id

    # Another try (other event times) is another attempt.
    api.submit(USER, QUIZ, assessments=attempt_events(1, 1, 1, ets=ETS + 600_000))
    read = api.assessments(USER, [QUIZ])[QUIZ]
    assert read["attempts_count"] == 2
    assert first_id in {a["attemptId"] for a in read["attempts"]}
    assert read["score"] == pytest.approx(3.0)
    assert_facts_agree(runtime)


def test_duplicate_submission_is_idempotent(api: Api, runtime: Runtime) -> None:
    # SPEC §2.4: re-submitting an attempt with an equal assessmentTs is ignored (idempotent),
    # e.g. a client retrying after a lost response. The retry must not count as a visit.
    api.start(USER, QUIZ)
    api.submit(USER, QUIZ, attemptId="a1", assessmentTs=ETS, assessments=attempt_events(1, 0))
    first = api.one(USER, QUIZ)
    tick()
    api.submit(USER, QUIZ, attemptId="a1", assessmentTs=ETS, assessments=attempt_events(1, 0))

    again = api.one(USER, QUIZ)
    assert api.assessments(USER, [QUIZ])[QUIZ]["attempts_count"] == 1
    assert again["completedOn"] == first["completedOn"]
    assert again["viewCount"] == first["viewCount"]
    assert_facts_agree(runtime)


# --- §2.5 collections -------------------------------------------------------------------

A, B, C, OPT, D = "do_a", "do_b", "do_c", "do_optional", "do_d"


def course(*extra_u2: dict[str, Any], with_c: bool = True) -> list[dict[str, Any]]:
    """Two units: u1 = [a, b], u2 = [c, optional (, extra…)]; required = {a, b, c}."""
    u2 = [leaf(C)] if with_c else []
    return [unit("u1", leaf(A), leaf(B)), unit("u2", *u2, leaf(OPT, optional=True), *extra_u2)]


def register(api: Api, runtime: Runtime) -> None:
    """Register the course and wait until the structure change has been processed, so
    that the scenario's own writes are what the enrolment figures come from."""
    api.put_collection(COURSE, course())
    settle(runtime)


def complete(api: Api, content: str, collection: str = COURSE,
             context: str | None = None) -> None:
    api.start(USER, content, collection, context)
    api.update(USER, content, collection, context, progress=50, timespent=10)
    api.end(USER, content, collection, context)


def test_collection_structure_counts_leaves_and_required(api: Api) -> None:
    put = api.put_collection(COURSE, course())["result"]
    assert put == {"collectionId": COURSE, "version": 1, "leafNodesCount": 4,
                   "requiredCount": 3}
    assert api.put_collection(COURSE, course())["result"]["version"] == 2


def test_completing_required_leaves_completes_the_enrolment(api: Api, runtime: Runtime
                                                            ) -> None:
    register(api, runtime)
    seen = []
    for content in (B, A, C):  # the optional leaf is never opened
        complete(api, content)
        s = api.summary(USER, COURSE)
        seen.append((s["status"], s["progress"]))
        tick()
    assert seen == [(1, 33), (1, 66), (2, 100)]  # percent floors: 1/3 → 33, 2/3 → 66

    summary = api.summary(USER, COURSE)
    last = api.one(USER, C, COURSE)
    assert summary["completedOn"] == last["completedOn"]  # the content that completed the set
    assert summary["completedOn"] > api.one(USER, A, COURSE)["completedOn"]
    assert summary["contentStatus"] == {A: 2, B: 2, C: 2, OPT: 0}
    assert_facts_agree(runtime)


def test_every_way_of_completing_a_content_counts_for_the_collection(api: Api,
                                                                     runtime: Runtime) -> None:
    # SPEC §2.2: progress reaching 100, progressDetails implying 100, an assessment.
    register(api, runtime)
    api.start(USER, A, COURSE)
    api.update(USER, A, COURSE, progress=100)
    api.start(USER, B, COURSE)
    api.update(USER, B, COURSE, progressDetails={"endPageSeen": True})
    assert api.summary(USER, COURSE)["progress"] == 66
    tick()
    api.submit(USER, C, COURSE, attemptId="a1", assessmentTs=ETS,
               assessments=attempt_events(1))

    summary = api.summary(USER, COURSE)
    assert (summary["status"], summary["progress"]) == (2, 100)
    assert summary["completedOn"] == api.one(USER, C, COURSE)["completedOn"]
    assert_facts_agree(runtime)


def test_optional_leaf_alone_does_not_count(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    complete(api, OPT)

    summary = api.summary(USER, COURSE)
    assert summary["progress"] == 0
    assert summary["status"] == 1  # something was consumed, nothing required completed
    assert summary["completedOn"] is None
    assert summary["contentStatus"][OPT] == 2
    assert_facts_agree(runtime)


def test_completion_is_reached_without_the_optional_leaf_and_it_changes_nothing_after(
        api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    for content in (A, B, C):
        complete(api, content)
    done = api.summary(USER, COURSE)
    assert (done["status"], done["progress"]) == (2, 100)
    tick()
    complete(api, OPT)
    after = api.summary(USER, COURSE)
    assert (after["status"], after["progress"], after["completedOn"]) == (
        2, 100, done["completedOn"])
    assert_facts_agree(runtime)


def test_completions_of_removed_contents_do_not_count(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    complete(api, A)
    complete(api, C)
    assert api.summary(USER, COURSE)["progress"] == 66

    assert api.put_collection(COURSE, course(with_c=False))["result"]["requiredCount"] == 2
    summary = eventually(lambda: api.summary(USER, COURSE), lambda s: s["progress"] == 50)
    assert (summary["status"], summary["progress"]) == (1, 50)  # 1 of {a, b}
    assert C not in summary["contentStatus"]
    assert summary["collection"]["leafNodesCount"] == 3
    # the list reads the enrolment's scope whole: C's row is there, and is not shown
    (listed,) = api.summaries(USER)
    assert C not in listed["contentStatus"] and listed["progress"] == 50

    complete(api, C)  # completing it again does not count either
    summary = api.summary(USER, COURSE)
    assert (summary["status"], summary["progress"]) == (1, 50)
    assert_facts_agree(runtime)


def test_structure_shrink_completes_with_the_last_completion_time(api: Api, runtime: Runtime
                                                                  ) -> None:
    register(api, runtime)
    complete(api, A)
    tick()
    complete(api, B)
    b_done = api.one(USER, B, COURSE)["completedOn"]
    tick()

    api.put_collection(COURSE, course(with_c=False))  # c, the one left to do, is removed
    summary = eventually(lambda: api.summary(USER, COURSE), lambda s: s["status"] == 2)
    assert (summary["status"], summary["progress"]) == (2, 100)
    # the completion time of the content that completed the set, not when it was noticed
    assert summary["completedOn"] == b_done
    assert_facts_agree(runtime)


def test_collection_completion_is_sticky_when_the_structure_grows(api: Api, runtime: Runtime
                                                                  ) -> None:
    register(api, runtime)
    for content in (A, B, C):
        complete(api, content)
    done = api.summary(USER, COURSE)
    assert done["status"] == 2

    assert api.put_collection(COURSE, course(leaf(D)))["result"]["requiredCount"] == 4
    summary = eventually(lambda: api.summary(USER, COURSE),
                         lambda s: s["collection"]["leafNodesCount"] == 5 and D in
                         s["contentStatus"])
    settle(runtime)
    summary = api.summary(USER, COURSE)
    assert summary["collection"]["leafNodesCount"] == 5
    assert summary["contentStatus"][D] == 0
    assert (summary["status"], summary["progress"]) == (2, 100)
    assert summary["completedOn"] == done["completedOn"]
    assert_facts_agree(runtime)


def test_structure_growth_lowers_progress_of_an_unfinished_enrolment(api: Api,
                                                                     runtime: Runtime) -> None:
    register(api, runtime)
    complete(api, A)
    complete(api, B)
    assert api.summary(USER, COURSE)["progress"] == 66

    api.put_collection(COURSE, course(leaf(D)))  # 2 of 4 required now
    summary = eventually(lambda: api.summary(USER, COURSE), lambda s: s["progress"] == 50)
    assert (summary["status"], summary["progress"]) == (1, 50)
    assert_facts_agree(runtime)


def test_implicit_enrolment_on_first_start_in_a_collection(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    assert api.summaries(USER) == []
    api.start(USER, A, COURSE)

    (summary,) = api.summaries(USER)
    assert (summary["userId"], summary["collectionId"], summary["contextId"]) == (
        USER, COURSE, COURSE)
    assert summary["active"] is True
    assert isinstance(summary["enrolledDate"], int)
    assert (summary["status"], summary["progress"]) == (1, 0)
    assert summary["contentStatus"][A] == 1
    assert_facts_agree(runtime)


def test_implicit_enrolment_records_the_context(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    complete(api, A, COURSE, "batch-1")

    (summary,) = api.summaries(USER)
    assert (summary["collectionId"], summary["contextId"]) == (COURSE, "batch-1")
    assert summary["progress"] == 33
    # strict mode: the progress counts in its own context only
    assert api.summary(USER, COURSE, "batch-1")["contentStatus"][A] == 2
    assert_facts_agree(runtime)


def test_explicit_enrolment_starts_not_started(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    api.post("/v1/enrol", {"userId": USER, "collectionId": COURSE})

    summary = api.summary(USER, COURSE)
    assert summary["active"] is True
    assert (summary["status"], summary["progress"], summary["completedOn"]) == (0, 0, None)
    assert summary["contentStatus"] == {A: 0, B: 0, C: 0, OPT: 0}


def test_explicit_enrolment_is_in_progress_after_the_first_start(api: Api, runtime: Runtime
                                                                  ) -> None:
    # SPEC §2.5: collection status is 0 if nothing consumed, 1 in progress.
    register(api, runtime)
    api.post("/v1/enrol", {"userId": USER, "collectionId": COURSE})
    api.start(USER, A, COURSE)

    summary = api.summary(USER, COURSE)
    assert summary["contentStatus"][A] == 1
    assert (summary["status"], summary["progress"]) == (1, 0)
    assert_facts_agree(runtime)


def test_unenrol_marks_inactive_and_keeps_progress(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    api.post("/v1/enrol", {"userId": USER, "collectionId": COURSE})
    complete(api, A)
    assert api.summary(USER, COURSE)["progress"] == 33

    api.post("/v1/unenrol", {"userId": USER, "collectionId": COURSE})
    summary = api.summary(USER, COURSE)
    assert summary["active"] is False
    assert (summary["status"], summary["progress"]) == (1, 33)
    assert summary["contentStatus"][A] == 2
    assert_facts_agree(runtime)


def test_enrolling_again_after_unenrol_reactivates(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    api.post("/v1/enrol", {"userId": USER, "collectionId": COURSE})
    complete(api, A)
    api.post("/v1/unenrol", {"userId": USER, "collectionId": COURSE})
    assert api.summary(USER, COURSE)["active"] is False

    assert api.post("/v1/enrol", {"userId": USER, "collectionId": COURSE})["result"] == {
        "response": "SUCCESS"}
    summary = api.summary(USER, COURSE)
    assert summary["active"] is True
    assert (summary["status"], summary["progress"]) == (1, 33)  # the progress was kept
    assert_facts_agree(runtime)


def test_consumption_before_the_structure_counts_once_registered(api: Api, runtime: Runtime
                                                                 ) -> None:
    complete(api, A)  # the collection is not registered yet
    api.start(USER, B, COURSE)
    register(api, runtime)

    summary = eventually(lambda: api.summary(USER, COURSE), lambda s: s["progress"] == 33)
    assert (summary["status"], summary["progress"]) == (1, 33)
    assert summary["contentStatus"] == {A: 2, B: 1, C: 0, OPT: 0}
    assert_facts_agree(runtime)


def test_unenrol_without_enrolment_is_not_found(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    response = api.post("/v1/unenrol", {"userId": USER, "collectionId": COURSE}, status=404)
    assert response["params"]["status"] == "failed"


def test_summary_list_shows_statuses_scores_and_collection(api: Api, runtime: Runtime) -> None:
    api.put_collection(COURSE, [unit("u1", leaf(A), leaf(QUIZ, kind="exercise")),
                                unit("u2", leaf(OPT, optional=True))],
                       description="Maths, class 1", logo="https://example.org/logo.png")
    settle(runtime)
    api.start(USER, A, COURSE)
    api.submit(USER, QUIZ, COURSE, attemptId="a1", assessmentTs=ETS,
               assessments=attempt_events(1, 1, 0))

    (summary,) = api.summaries(USER)
    assert summary["contentStatus"] == {A: 1, QUIZ: 2, OPT: 0}
    assert set(summary["assessmentStatus"]) == {QUIZ}
    assert summary["assessmentStatus"][QUIZ]["score"] == pytest.approx(2.0)
    assert summary["assessmentStatus"][QUIZ]["max_score"] == pytest.approx(3.0)
    collection = summary["collection"]
    assert collection["identifier"] == COURSE
    assert collection["name"] == COURSE
    assert collection["leafNodesCount"] == 3
    assert collection["description"] == "Maths, class 1"
    assert collection["logo"] == "https://example.org/logo.png"
    assert summary["issuedCertificates"] == []
    assert (summary["status"], summary["progress"]) == (1, 50)
    assert summary == api.summary(USER, COURSE)  # summary/read gives the same enrolment
    assert_facts_agree(runtime)


def test_a_repeated_view_end_is_a_harmless_retry(api: Api) -> None:
    api.start("u-end", "c1", "k", "x")
    api.update("u-end", "c1", "k", "x", timespent=5)
    api.end("u-end", "c1", "k", "x")
    first = api.one("u-end", "c1", "k", "x")
    api.end("u-end", "c1", "k", "x")
    again = api.one("u-end", "c1", "k", "x")
    assert again == first
    assert (again["viewCount"], again["status"]) == (1, 2)
