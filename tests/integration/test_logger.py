"""The logger family's trackprogress routes (SPEC §4.3), Kolibri's scenarios over HTTP.

Mirrors `kolibri/core/logger/test/test_integrated_api.py` ("Start fresh", "Resume",
"Update"), see reference/kolibri-facts.md §4. Where learnlog deliberately differs (an
absolute progress never lowers progress) the test asserts learnlog's rule; decision 0008
says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.domain import mastery
from learnlog.domain.keys import SummaryKey
from learnlog.settings import Settings
from learnlog.store.uow import BatchUnitOfWork
from tests.support import Api

TRACK = "/api/logger/trackprogress/"


class Logger:
    """A learner calling the logger routes."""

    def __init__(self, api: Api, user: str) -> None:
        self.api = api.as_user(user)
        self.user = user

    def start(self, content: str, *, status: int = 200, **fields: Any) -> dict[str, Any]:
        body = {"content_id": content, "kind": "video", **fields}
        return self.api.call("POST", TRACK, body, status=status)

    def put(self, session_id: str, *, status: int = 200, **fields: Any) -> dict[str, Any]:
        return self.api.call("PUT", f"{TRACK}{session_id}/", fields, status=status)

    def state(self, content: str) -> dict[str, Any]:
        """The summary's figures, as a resumed session answers them."""
        return self.start(content)


@pytest.fixture
def alice(api: Api) -> Logger:
    return Logger(api, "alice")


def test_a_fresh_start_creates_the_summary_and_echoes_it(alice: Logger) -> None:
    started = alice.start("c1")
    assert isinstance(started["session_id"], str) and started["session_id"]
    assert {k: v for k, v in started.items() if k != "session_id"} == {
        "progress": 0.0, "time_spent": 0.0, "extra_fields": {}, "complete": False}
    row = alice.api.one("alice", "c1")
    assert (row["status"], row["viewCount"]) == (1, 1)


def test_a_second_start_resumes_the_same_summary(alice: Logger) -> None:
    first = alice.start("c1")
    alice.put(first["session_id"], progress_delta=0.25, time_spent_delta=10)
    second = alice.start("c1")
    assert second["session_id"] != first["session_id"]
    assert (second["progress"], second["time_spent"]) == (0.25, 10.0)
    assert alice.api.one("alice", "c1")["viewCount"] == 2  # two sessions, one summary


def test_an_empty_update_is_accepted_and_changes_nothing(alice: Logger) -> None:
    sid = alice.start("c1")["session_id"]
    assert alice.put(sid) == {"complete": False}
    state = alice.state("c1")
    assert (state["progress"], state["time_spent"]) == (0.0, 0.0)


@pytest.mark.parametrize(("deltas", "expected", "complete"), [
    ((0.1, 0.1), 0.2, False),  # no float noise: 0.2, not 0.20000000000000004
    ((0.9, 0.9), 1.0, True),  # overflow is clamped
    ((0.666, 0.3331), 1.0, True),  # 0.9991 rounds up to the next thousandth: complete
    ((0.5, 0.0), 0.5, False),
])
def test_progress_deltas_add_up_with_kolibri_rounding(
        alice: Logger, deltas: tuple[float, ...], expected: float, complete: bool) -> None:
    sid = alice.start("c1")["session_id"]
    answers = [alice.put(sid, progress_delta=d) for d in deltas]
    assert answers[-1] == {"complete": complete}
    assert alice.state("c1")["progress"] == expected
    assert alice.api.one("alice", "c1")["status"] == (2 if complete else 1)


def test_an_absolute_progress_never_lowers_progress(alice: Logger) -> None:
    """Kolibri lowers 0.3 to 0.1 here; learnlog keeps 0.3 (decision 0008)."""
    sid = alice.start("c1")["session_id"]
    alice.put(sid, progress=0.3)
    alice.put(sid, progress=0.1)
    assert alice.state("c1")["progress"] == 0.3
    alice.put(sid, progress=1)
    assert alice.state("c1")["complete"] is True


def test_completion_with_an_absolute_progress_and_with_a_delta(alice: Logger) -> None:
    by_value = alice.start("c1")["session_id"]
    assert alice.put(by_value, progress=1.0) == {"complete": True}
    by_delta = alice.start("c2")["session_id"]
    alice.put(by_delta, progress_delta=0.5)
    assert alice.put(by_delta, progress_delta=0.5) == {"complete": True}
    rows = alice.api.read("alice", ["c1", "c2"])
    assert [rows[c]["status"] for c in ("c1", "c2")] == [2, 2]
    assert all(rows[c]["completedOn"] is not None for c in ("c1", "c2"))


def test_both_progress_fields_is_a_400_that_changes_nothing(alice: Logger) -> None:
    sid = alice.start("c1")["session_id"]
    answer = alice.put(sid, status=400, progress=0.5, progress_delta=0.1, time_spent_delta=9)
    assert (answer["params"]["err"], answer["result"]["field"]) == (
        "CONFLICTING_FIELDS", "progress")
    state = alice.state("c1")
    assert (state["progress"], state["time_spent"]) == (0.0, 0.0)


def test_time_spent_deltas_add_up(alice: Logger) -> None:
    sid = alice.start("c1")["session_id"]
    alice.put(sid, time_spent_delta=30)
    alice.put(sid, time_spent_delta=40)
    assert alice.state("c1")["time_spent"] == 70.0
    assert alice.api.one("alice", "c1")["timeSpent"] == 70.0


def test_time_spent_delta_above_the_maximum_is_refused(alice: Logger) -> None:
    sid = alice.start("c1")["session_id"]
    answer = alice.put(sid, status=400, time_spent_delta=10**7)
    assert (answer["params"]["err"], answer["result"]["field"]) == (
        "TIMESPENT_TOO_LARGE", "time_spent_delta")
    assert alice.state("c1")["time_spent"] == 0.0


def test_extra_fields_are_replaced_whole(alice: Logger) -> None:
    sid = alice.start("c1")["session_id"]
    alice.put(sid, extra_fields={"contentState": {"page": 3}, "theme": "dark"})
    alice.put(sid, extra_fields={"contentState": {"page": 4}})
    assert alice.state("c1")["extra_fields"] == {"contentState": {"page": 4}}


def test_another_learners_session_is_not_found(api: Api, alice: Logger) -> None:
    sid = alice.start("c1")["session_id"]
    bob = Logger(api, "bob")
    answer = bob.put(sid, status=404, progress_delta=0.5, time_spent_delta=5)
    assert answer["params"]["err"] == "SESSION_NOT_FOUND"
    assert alice.state("c1")["progress"] == 0.0
    bob.put("no-such-session", status=404)


def test_an_admin_cannot_update_a_learners_session_by_id_either(api: Api, alice: Logger) -> None:
    """Sessions are looked up under the caller's own id, whatever its roles."""
    sid = alice.start("c1")["session_id"]
    api.call("PUT", f"{TRACK}{sid}/", {"progress_delta": 0.5}, status=404)
    assert alice.state("c1")["progress"] == 0.0


def test_repeat_starts_over_and_keeps_time_and_first_completion(alice: Logger) -> None:
    sid = alice.start("c1")["session_id"]
    alice.put(sid, progress=1.0, time_spent_delta=20)
    completed_on = alice.api.one("alice", "c1")["completedOn"]
    again = alice.start("c1", repeat=True)
    assert (again["progress"], again["time_spent"], again["complete"]) == (0.0, 20.0, False)
    alice.put(again["session_id"], progress_delta=0.4, time_spent_delta=5)
    state = alice.state("c1")
    assert (state["progress"], state["time_spent"]) == (0.4, 25.0)
    row = alice.api.one("alice", "c1")
    assert (row["status"], row["completedOn"]) == (2, completed_on)  # completion is sticky


@pytest.fixture
def content_mode(settings: Settings) -> Iterator[Api]:
    rt = bootstrap(settings.model_copy(update={"context_mode": "content"}))
    rt.start()
    try:
        with TestClient(create_app(settings, rt)) as client:
            yield Api(client, mint(rt.secret, "admin", ["admin"]), rt.secret)
    finally:
        rt.close()


def test_viewer_and_logger_sessions_land_in_one_summary_under_content_mode(
        content_mode: Api) -> None:
    learner = content_mode.as_user("carol")
    learner.start("carol", "c1", "maths", "batch-1")
    learner.update("carol", "c1", "maths", "batch-1", timespent=10, progress=30)
    logger = Logger(content_mode, "carol")
    sid = logger.start("c1", collection_id="science")["session_id"]
    resumed = logger.start("c1")
    assert (resumed["progress"], resumed["time_spent"]) == (0.3, 10.0)
    logger.put(sid, progress_delta=0.2, time_spent_delta=5)
    for collection in ("maths", "science", None):
        row = learner.one("carol", "c1", collection)
        assert (row["progress"], row["timeSpent"], row["viewCount"]) == (50, 15.0, 3)


# -- exercises: tries, item attempts, mastery decided on the server ------------------------

def answer(item: str, correct: float, *, time_spent: float = 5, **fields: Any
           ) -> dict[str, Any]:
    return {"item": item, "correct": correct, "time_spent": time_spent,
            "answer": {"response": "x"}, **fields}


def exercise(learner: Logger, model: dict[str, Any], content: str = "ex1",
             **fields: Any) -> dict[str, Any]:
    return learner.start(content, kind="exercise", mastery_model=model, **fields)


M_OF_N = {"type": "m_of_n", "m": 3, "n": 5}


def test_an_exercise_start_opens_a_try_with_its_criterion(alice: Logger) -> None:
    started = exercise(alice, M_OF_N)
    assert started["mastery_criterion"] == M_OF_N
    assert (started["pastattempts"], started["totalattempts"], started["complete"]) == (
        [], 0, False)


def test_m_of_n_is_mastered_on_the_server(alice: Logger) -> None:
    sid = exercise(alice, M_OF_N)["session_id"]
    assert alice.put(sid, interactions=[answer("q1", 1)])["complete"] is False
    assert alice.put(sid, interactions=[answer("q2", 0)])["complete"] is False
    assert alice.state("ex1")["progress"] == 0.334  # 1 of the 3 needed, rounded up
    alice.put(sid, interactions=[answer("q3", 1)])
    done = alice.put(sid, interactions=[answer("q4", 1)])
    assert done["complete"] is True
    row = alice.api.one("alice", "ex1")
    assert (row["status"], row["progress"]) == (2, 100)


def test_in_a_row_needs_the_last_answers_correct(alice: Logger) -> None:
    sid = exercise(alice, {"type": "num_correct_in_a_row_3"})["session_id"]
    for item, correct in (("q1", 1), ("q2", 1), ("q3", 0), ("q4", 1), ("q5", 1)):
        assert alice.put(sid, interactions=[answer(item, correct)])["complete"] is False
    assert alice.put(sid, interactions=[answer("q6", 1)])["complete"] is True


def test_client_progress_on_an_exercise_is_not_used(alice: Logger) -> None:
    """Decision 0009: the criterion decides; a client's progress: 1 completes nothing."""
    sid = exercise(alice, M_OF_N)["session_id"]
    assert alice.put(sid, progress=1.0, interactions=[answer("q1", 1)])["complete"] is False
    assert alice.state("ex1")["progress"] == 0.334  # the criterion's 1 of 3, not 1.0


def test_first_try_correctness_sticks_unless_replace(alice: Logger) -> None:
    sid = exercise(alice, M_OF_N)["session_id"]
    wrong_then_right = alice.put(sid, interactions=[answer("q1", 0), answer("q1", 1)])
    [attempt] = wrong_then_right["attempts"]
    assert attempt["correct"] == 0
    replaced = alice.put(sid, interactions=[answer("q1", 1, id=attempt["id"], replace=True)])
    assert [a["correct"] for a in replaced["attempts"]] == [1]
    kept = alice.put(sid, interactions=[answer("q1", 0, id=attempt["id"])])
    assert [a["correct"] for a in kept["attempts"]] == [1]  # no replace: stays correct
    assert exercise(alice, M_OF_N)["totalattempts"] == 1  # all on one attempt


def test_hint_then_error_make_one_attempt_with_the_last_time(alice: Logger) -> None:
    sid = exercise(alice, M_OF_N)["session_id"]
    result = alice.put(sid, interactions=[
        answer("q1", 0, time_spent=10, hinted=True),
        {"item": "q1", "correct": 0, "time_spent": 20, "error": True}])
    [attempt] = result["attempts"]
    assert (attempt["hinted"], attempt["error"], attempt["time_spent"]) == (True, True, 20)


def test_hinted_after_a_correct_answer_is_not_set(alice: Logger) -> None:
    sid = exercise(alice, M_OF_N)["session_id"]
    [first] = alice.put(sid, interactions=[answer("q1", 1)])["attempts"]
    [after] = alice.put(sid, interactions=[answer("q1", 1, id=first["id"], hinted=True)])[
        "attempts"]
    assert after["hinted"] is False


def test_replace_without_an_id_updates_the_items_attempt(alice: Logger) -> None:
    sid = exercise(alice, M_OF_N)["session_id"]
    alice.put(sid, interactions=[answer("q1", 0, replace=True)])
    alice.put(sid, interactions=[answer("q1", 1, replace=True)])
    resumed = exercise(alice, M_OF_N)
    assert resumed["totalattempts"] == 1
    assert resumed["pastattempts"][0]["correct"] == 1


def test_an_unknown_attempt_id_is_a_400_that_changes_nothing(alice: Logger) -> None:
    sid = exercise(alice, M_OF_N)["session_id"]
    result = alice.put(sid, status=400, time_spent_delta=30,
                       interactions=[answer("q0", 1), answer("q1", 1, id="nope")])
    assert result["result"]["field"] == "interactions[1].id"
    resumed = exercise(alice, M_OF_N)
    assert (resumed["totalattempts"], resumed["time_spent"]) == (0, 0.0)


def test_the_stored_criterion_wins_over_a_changed_model(alice: Logger) -> None:
    exercise(alice, M_OF_N)
    resumed = exercise(alice, {"type": "num_correct_in_a_row_2"})
    assert resumed["mastery_criterion"] == M_OF_N


def test_a_completed_try_is_continued_unless_repeat(alice: Logger) -> None:
    model = {"type": "num_correct_in_a_row_2"}
    sid = exercise(alice, model)["session_id"]
    alice.put(sid, interactions=[answer("q1", 1)])
    alice.put(sid, interactions=[answer("q2", 1)], time_spent_delta=12)
    again = exercise(alice, model)
    assert (again["complete"], again["totalattempts"], again["time_spent"]) == (True, 2, 12.0)
    fresh = exercise(alice, M_OF_N, repeat=True)
    assert (fresh["complete"], fresh["totalattempts"], fresh["time_spent"]) == (False, 0, 0.0)
    assert fresh["mastery_criterion"] == M_OF_N  # a new try takes the model in force now
    assert fresh["progress"] == 0.0  # the summary starts over with the repeat
    assert exercise(alice, model)["totalattempts"] == 0  # the incomplete try is preferred


@pytest.mark.parametrize(("model", "shown"), [
    ({"type": "m_of_n", "m": 3, "n": 4}, 4),
    ({"type": "num_correct_in_a_row_2"}, 2),
    ({"type": "do_all", "n": 30}, 10),
])
def test_past_attempts_are_truncated_by_the_criterion(
        alice: Logger, model: dict[str, Any], shown: int) -> None:
    sid = exercise(alice, model)["session_id"]
    alice.put(sid, interactions=[answer(f"q{i}", 0) for i in range(12)])
    resumed = exercise(alice, model)
    assert resumed["totalattempts"] == 12
    assert [a["item"] for a in resumed["pastattempts"]] == [
        f"q{i}" for i in range(11, 11 - shown, -1)]  # newest first


def test_a_long_try_keeps_every_rule_beyond_its_window(alice: Logger) -> None:
    """A try's rules read its latest attempts (the criterion's window, here 2) and the
    attempts interactions name: an early attempt named by id or replaced by item is
    updated, not duplicated, and the count covers every attempt."""
    model = {"type": "num_correct_in_a_row_2"}
    sid = exercise(alice, model)["session_id"]
    first = alice.put(sid, interactions=[answer("q0", 0)])["attempts"][0]["id"]
    for i in range(1, 25):
        alice.put(sid, interactions=[answer(f"q{i}", 0)])
    by_id = alice.put(sid, interactions=[answer("q0", 0, id=first, hinted=True)])
    assert by_id["attempts"][0]["id"] == first and by_id["attempts"][0]["hinted"] is True
    replaced = alice.put(sid, interactions=[answer("q1", 1, replace=True)])
    assert replaced["attempts"][0]["correct"] == 1.0
    resumed = exercise(alice, model)
    assert resumed["totalattempts"] == 25  # nothing duplicated
    assert resumed["complete"] is False  # q1 is not among the latest 2
    alice.put(sid, interactions=[answer("q25", 1)])
    done = alice.put(sid, interactions=[answer("q26", 1)])
    assert done["complete"] is True
    assert exercise(alice, model)["totalattempts"] == 27
    assert len(listing(alice.api, "attemptlog", limit=100)["results"]) == 27


def _store_try(runtime: Runtime, t: mastery.Try, correct: Callable[[int], float]) -> None:
    """Store a try with 30 item attempts a00…a29 (started at 0…29, `correct(n)` each)."""
    with runtime.engine.begin() as conn:
        uow = BatchUnitOfWork(conn, "i", 1_000)
        uow.begin_command()
        for n in range(30):
            uow.tries.put_attempt(mastery.ItemAttempt(
                f"a{n:02}", t.key, 1, "s", f"q{n}", correct(n), n, n, 1.0, {},
                ordinal=n + 1))
        uow.tries.put(replace(t, attempt_count=30))
        uow.commit_command()
        uow.flush()


def test_a_window_of_attempts_is_all_a_try_reads(runtime: Runtime) -> None:
    """The unit of work loads a try's latest `window` attempts, not all of them."""
    key = SummaryKey("d", "u", "k", "x", "ex1")
    t = mastery.Try(key, 1, mastery.Criterion("num_correct_in_a_row_2", 2, 2), 0, 0)
    _store_try(runtime, t, lambda n: 1.0)
    with runtime.engine.begin() as conn:
        uow = BatchUnitOfWork(conn, "i", 2_000)
        uow.tries.load_attempts([(key, 1, 2)])
        assert sorted(a.attempt_id for a in uow.tries.attempts_of(key, 1, 2)) == ["a28", "a29"]
        assert len(uow.tries.attempts_of(key, 1, 5)) == 5
        assert len(uow.tries.attempts_of(key, 1)) == 30
        assert uow.tries.at(key, 1) == replace(t, attempt_count=30)


def test_a_criterion_reads_marks_of_the_window_and_the_staged_attempts(
        runtime: Runtime) -> None:
    """`attempt_marks` gives the order and score of a try's latest `window` attempts
    (four columns, not the attempts), with this batch's staged attempts over them; the
    whole attempts stay unloaded until named."""
    key = SummaryKey("d", "u", "k", "x", "ex2")
    t = mastery.Try(key, 1, mastery.Criterion("m_of_n", 2, 3), 0, 0)
    _store_try(runtime, t, lambda n: float(n % 2))
    with runtime.engine.begin() as conn:
        uow = BatchUnitOfWork(conn, "i", 2_000)
        uow.tries.load_marks([(key, 1, 3)])
        marks = sorted(uow.tries.marks(key, 1, 3), key=lambda m: m.order)
        assert marks == [mastery.Mark("a27", 1, 27, 28, 1.0), mastery.Mark("a28", 1, 28, 29, 0.0),
                         mastery.Mark("a29", 1, 29, 30, 1.0)]
        assert uow.tries.named_attempts(key, 1) == []  # no whole attempt was read
        uow.begin_command()
        uow.tries.put_attempt(mastery.ItemAttempt(
            "a30", key, 1, "s", "q30", 1.0, 30, 30, 1.0, {}, ordinal=31))
        uow.tries.put_attempt(mastery.ItemAttempt(
            "a28", key, 1, "s", "q28", 1.0, 28, 30, 1.0, {}, ordinal=29))
        latest = {m.attempt_id: m.correct for m in uow.tries.marks(key, 1, 3)}
        assert latest == {"a27": 1.0, "a28": 1.0, "a29": 1.0, "a30": 1.0}
        assert mastery.try_progress(t, uow.tries.marks(key, 1, 3)) == 1.0
        uow.commit_command()  # a later command of the batch sees them as well
        uow.begin_command()
        assert {m.attempt_id for m in uow.tries.named_attempts(key, 1)} == {"a28", "a30"}
        assert len(uow.tries.marks(key, 1, None)) == 31  # every stored one, plus a30


def test_try_time_adds_the_session_deltas(alice: Logger) -> None:
    sid = exercise(alice, M_OF_N)["session_id"]
    alice.put(sid, time_spent_delta=30, interactions=[answer("q1", 1)])
    alice.put(sid, time_spent_delta=40)
    assert exercise(alice, M_OF_N)["time_spent"] == 70.0
    assert alice.api.one("alice", "ex1")["timeSpent"] == 70.0


def test_erasing_a_learner_erases_its_tries(api: Api, alice: Logger) -> None:
    sid = exercise(alice, M_OF_N)["session_id"]
    alice.put(sid, interactions=[answer("q1", 1)])
    api.call("DELETE", "/v1/summary/delete/alice?all=true")
    alice.put(sid, status=404, interactions=[answer("q2", 1)])
    assert exercise(alice, M_OF_N)["totalattempts"] == 0


# -- listings ------------------------------------------------------------------------------

LOGS = "/api/logger/"


def listing(api: Api, kind: str, status: int = 200, **params: Any) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.call("GET", f"{LOGS}{kind}/?{query}", status=status)


def test_a_learner_lists_its_own_sessions_only(api: Api, alice: Logger) -> None:
    bob = Logger(api, "bob")
    alice.start("c1")
    alice.start("c2")
    bob.start("c1")
    mine = listing(alice.api, "contentsessionlog")["results"]
    assert sorted((r["user_id"], r["content_id"]) for r in mine) == [
        ("alice", "c1"), ("alice", "c2")]
    assert mine[0]["kind"] == "video" and mine[0]["start_timestamp"].endswith("Z")
    refused = listing(alice.api, "contentsessionlog", status=403, user_id="bob")
    assert refused["params"]["err"] == "FORBIDDEN"
    everyone = listing(api, "contentsessionlog")["results"]
    assert len(everyone) == 3
    assert [r["user_id"] for r in listing(api, "contentsessionlog", user_id="bob")[
        "results"]] == ["bob"]
    assert {r["content_id"] for r in listing(api, "contentsessionlog", content_id="c1")[
        "results"]} == {"c1"}


def test_listings_never_cross_datasets(api: Api, alice: Logger) -> None:
    alice.start("c1")
    other_admin = mint(api.secret or "", "root-b", ["admin"], dataset="b")
    for kind in ("contentsessionlog", "contentsummarylog", "masterylog", "attemptlog"):
        assert api.call("GET", f"{LOGS}{kind}/", token=other_admin)["results"] == []
    assert len(listing(api, "contentsummarylog")["results"]) == 1


def test_pages_walk_every_row_once(api: Api, alice: Logger) -> None:
    for content in ("c1", "c2", "c3", "c4", "c5"):
        alice.start(content)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        answer = listing(api, "contentsessionlog", **params)
        seen += [r["id"] for r in answer["results"]]
        cursor = answer["next"]
        if cursor is None:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    assert cursor is None


def test_time_filters(api: Api, alice: Logger) -> None:
    alice.start("c1")
    assert listing(api, "contentsessionlog", start="2999-01-01")["results"] == []
    assert listing(api, "contentsessionlog", end="2000-01-01T00:00:00Z")["results"] == []
    assert len(listing(api, "contentsessionlog", start="2000-01-01",
                       end="2999-01-01T00:00:00%2B02:00")["results"]) == 1


def test_summaries_tries_and_attempts_are_listed(api: Api, alice: Logger) -> None:
    sid = alice.start("c1")["session_id"]
    alice.put(sid, progress_delta=0.5, time_spent_delta=30, extra_fields={"page": 3})
    [summary] = listing(alice.api, "contentsummarylog")["results"]
    assert (summary["progress"], summary["time_spent"], summary["extra_fields"],
            summary["completion_timestamp"]) == (0.5, 30.0, {"page": 3}, None)
    ex = exercise(alice, M_OF_N)["session_id"]
    alice.put(ex, interactions=[answer("q1", 0, hinted=True), answer("q1", 1)])
    [attempt_try] = listing(alice.api, "masterylog", content_id="ex1")["results"]
    assert (attempt_try["mastery_level"], attempt_try["mastery_criterion"],
            attempt_try["complete"]) == (1, M_OF_N, False)
    [attempt] = listing(alice.api, "attemptlog")["results"]
    assert (attempt["item"], attempt["correct"], attempt["hinted"], attempt["session_id"]) == (
        "q1", 0, True, ex)
    assert [h["type"] for h in attempt["interaction_history"]] == ["hint", "answer"]


@pytest.mark.parametrize(("params", "field"), [
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "WzEsMiwzXQ"}, "cursor"),  # [1,2,3]: the wrong width for sessions
    ({"cursor": "WzEsMl0"}, "cursor"),  # [1,2]: numbers where the key has strings
    ({"cursor": "eyJhIjoxfQ"}, "cursor"),  # {"a":1}: not a list
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"start": "yesterday"}, "start"),
    ({"end": "2024-13-01"}, "end"),
    ({"user_id": "a%01b"}, "user_id"),
    ({"content_id": "c" * 257}, "content_id"),
])
def test_bad_listing_parameters_are_a_400_naming_them(
        api: Api, params: dict[str, Any], field: str) -> None:
    answer = listing(api, "contentsessionlog", status=400, **params)
    assert answer["result"]["field"] == field, answer


def test_user_progress_counts_completed_contents_and_completed_tries(
        api: Api, alice: Logger) -> None:
    """Kolibri's scenario: 3 completed summaries + an exercise with 2 completed tries and
    an incomplete one = 5; partial progress counts nothing."""
    for content in ("v1", "v2", "v3"):
        alice.put(alice.start(content)["session_id"], progress=1.0)
    alice.put(alice.start("v4")["session_id"], progress=0.5)
    model = {"type": "num_correct_in_a_row_2"}
    for repeat in (False, True):
        sid = exercise(alice, model, repeat=repeat)["session_id"]
        alice.put(sid, interactions=[answer("q1", 1), answer("q2", 1)])
    exercise(alice, model, repeat=True)  # a third try, not completed
    assert alice.api.call("GET", "/api/logger/userprogress/alice/") == {
        "id": "alice", "progress": 5}
    assert api.call("GET", "/api/logger/userprogress/alice/")["progress"] == 5  # an admin
    alice.api.call("GET", "/api/logger/userprogress/bob/", status=403)


def test_an_exercise_with_only_an_incomplete_try_counts_nothing(alice: Logger) -> None:
    sid = exercise(alice, M_OF_N)["session_id"]
    alice.put(sid, interactions=[answer("q1", 1)])
    assert alice.api.call("GET", "/api/logger/userprogress/alice/")["progress"] == 0


# -- user sessions (heartbeat) --------------------------------------------------------------

CHROME_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/120.0.0.0 Safari/537.36")
HEARTBEAT = "/api/logger/usersessionlog/heartbeat/"


def beat(api: Api, token: str, **body: Any) -> dict[str, Any]:
    response = api.client.put(HEARTBEAT, json=body, headers={
        "Authorization": f"Bearer {token}", "User-Agent": CHROME_LINUX})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_heartbeats_extend_a_user_session_for_five_minutes(
        api: Api, runtime: Any) -> None:
    token = mint(api.secret or "", "dana", ["learner"])
    clock = [1_800_000_000_000]
    runtime.writer.clock = lambda: clock[0]
    first = beat(api, token, page="/learn", channel_id="ch1")
    assert first["started"] is True and first["device_info"] == "Linux,/Chrome,120"
    clock[0] += 5 * 60 * 1000  # exactly 5 minutes later: the same session
    again = beat(api, token, page="/learn/topic", channel_id="ch1")
    assert (again["session_id"], again["started"]) == (first["session_id"], False)
    clock[0] += 5 * 60 * 1000 + 1  # idle for longer: a new one
    later = beat(api, token)
    assert later["started"] is True and later["session_id"] != first["session_id"]
    assert beat(api, token, active=False) == {"session_id": None, "started": False,
                                              "device_info": None}
    sessions = {r["id"]: r for r in api.call(
        "GET", "/api/logger/usersessionlog/?user_id=dana")["results"]}
    assert len(sessions) == 2
    kept = sessions[first["session_id"]]
    assert (kept["pages"], kept["channels"]) == (["/learn", "/learn/topic"], ["ch1"])
    assert kept["start_timestamp"] == "2027-01-15T08:00:00.000Z"
    assert kept["last_interaction_timestamp"] == "2027-01-15T08:05:00.000Z"


def test_two_heartbeats_in_one_batch_share_one_user_session(runtime: Runtime) -> None:
    """A heartbeat sees the user session an earlier command of its batch started (the
    writer batches a learner's concurrent requests): one session, both pages, not two."""
    from sqlalchemy import func, select

    from learnlog.service.usersessions import Heartbeat
    from learnlog.store.schema import user_sessions

    with runtime.engine.begin() as conn:
        uow = BatchUnitOfWork(conn, runtime.ctx.instance_id, 1_800_000_000_000)
        answers = []
        for page in ("/a", "/b"):
            uow.begin_command()
            answers.append(Heartbeat("d", "hb", None, page).apply(uow, runtime.ctx))
            uow.commit_command()
        uow.flush()
    assert [a["started"] for a in answers] == [True, False]
    assert answers[0]["session_id"] == answers[1]["session_id"]
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(user_sessions).where(
            user_sessions.c.user_id == "hb")).scalar() == 1
        assert conn.execute(select(user_sessions.c.pages).where(
            user_sessions.c.user_id == "hb")).scalar() == '["/a","/b"]'


def test_a_heartbeat_without_a_user_agent_records_no_device(api: Api) -> None:
    token = mint(api.secret or "", "eve", ["learner"])
    answer = api.call("PUT", HEARTBEAT, {}, token=token)
    assert answer["started"] is True  # the test client sends its own User-Agent
    response = api.client.put(HEARTBEAT, json={}, headers={
        "Authorization": f"Bearer {token}", "User-Agent": ""})
    assert response.status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"active": "yes"}, "active"),
    ({"page": ""}, "page"),
    ({"page": "a\nb"}, "page"),
    ({"page": "p" * 2049}, "page"),
    ({"channel_id": 5}, "channel_id"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_heartbeats_are_a_400_naming_the_field(
        api: Api, body: dict[str, Any], field: str) -> None:
    answer = api.call("PUT", HEARTBEAT, body, status=400)
    assert answer["result"]["field"] == field


def test_user_sessions_cannot_be_filtered_by_content(api: Api) -> None:
    answer = listing(api, "usersessionlog", status=400, content_id="c1")
    assert answer["result"]["field"] == "content_id"
