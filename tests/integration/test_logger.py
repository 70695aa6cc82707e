"""The logger family's trackprogress routes (SPEC §4.3), Kolibri's scenarios over HTTP.

Mirrors `kolibri/core/logger/test/test_integrated_api.py` ("Start fresh", "Resume",
"Update"), see reference/kolibri-facts.md §4. Where learnlog deliberately differs (an
absolute progress never lowers progress) the test asserts learnlog's rule; decision 0008
says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import bootstrap
from learnlog.settings import Settings
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


def test_a_learner_without_a_token_gets_401(api: Api) -> None:
    response = api.client.post(TRACK, json={"content_id": "c1", "kind": "video"})
    assert response.status_code == 401


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
