"""Coach quizzes, practice quizzes, anonymous visitors and group listings (SPEC §4.3).

Mirrors Kolibri's "coach quiz" scenarios (reference/kolibri-facts.md §4): a quiz assigned
to a group is taken by its members only, answers are sent with `replace`, the submit
(progress 1) closes the try and a submitted or closed quiz refuses more work with 403;
`repeat` starts a new try. Quiz tries take random negative levels, so a practice quiz is
never confused with the exercise tries of the same content.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from learnlog.api.app import create_app
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.settings import Settings
from learnlog.store.schema import visitor_sessions
from tests.integration.test_logger import TRACK, Logger, answer, listing
from tests.support import Api


def put(api: Api, path: str, request: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return api.call("PUT", path, {"request": request}, status=status)


@pytest.fixture
def school(api: Api) -> Api:
    """Classroom c1 with learner group g1; alice in c1, carol in g1 only, bob in c2;
    coach cora of c1; quiz q1 for c1, active."""
    put(api, "/v1/groups/c1", {"kind": "classroom", "name": "Class 1"})
    put(api, "/v1/groups/c2", {"kind": "classroom", "name": "Class 2"})
    put(api, "/v1/groups/g1", {"kind": "learnergroup", "name": "Group 1", "parentId": "c1"})
    for group, user, role in (("c1", "alice", "learner"), ("g1", "carol", "learner"),
                              ("c2", "bob", "learner"), ("c1", "cora", "coach")):
        put(api, f"/v1/groups/{group}/members/{user}", {"role": role})
    put(api, "/v1/quizzes/q1", {"title": "Fractions", "groupIds": ["c1"]})
    return api


def quiz(learner: Logger, quiz_id: str = "q1", status: int = 200, **fields: Any
         ) -> dict[str, Any]:
    return learner.api.call("POST", TRACK, {"quiz_id": quiz_id, **fields}, status=status)


def test_a_member_starts_a_coach_quiz_with_its_criterion(school: Api) -> None:
    alice = Logger(school, "alice")
    started = quiz(alice)
    assert started["mastery_criterion"] == {"type": "quiz", "coach_assigned": True}
    assert (started["pastattempts"], started["totalattempts"], started["complete"]) == (
        [], 0, False)
    [exam] = listing(school, "examlog", user_id="alice")["results"]
    assert exam["quiz_id"] == "q1" and exam["mastery_level"] < 0
    assert (exam["closed"], exam["coach_assigned"]) == (False, True)
    [session] = listing(school, "contentsessionlog", user_id="alice")["results"]
    assert (session["content_id"], session["kind"]) == ("q1", "quiz")


def test_only_members_of_an_assigned_group_take_a_quiz(school: Api) -> None:
    refused = quiz(Logger(school, "bob"), status=403)
    assert refused["params"]["err"] == "QUIZ_NOT_ASSIGNED"
    assert quiz(Logger(school, "alice"), "nope", status=403)["params"]["err"] == (
        "QUIZ_NOT_ASSIGNED")
    quiz(Logger(school, "carol"))  # a member of a learner group of the classroom
    assert listing(school, "examlog", user_id="bob")["results"] == []


def test_a_closed_quiz_refuses_starts_and_updates(school: Api) -> None:
    alice = Logger(school, "alice")
    sid = quiz(alice)["session_id"]
    put(school, "/v1/quizzes/q1", {"title": "Fractions", "groupIds": ["c1"],
                                   "active": False})
    closed = alice.put(sid, status=403, interactions=[answer("i1", 1, replace=True)])
    assert closed["params"]["err"] == "QUIZ_CLOSED"
    assert quiz(alice, status=403)["params"]["err"] == "QUIZ_CLOSED"
    assert listing(school, "examattemptlog", user_id="alice")["results"] == []


def test_quiz_answers_replace_and_the_submit_locks_the_quiz(school: Api) -> None:
    alice = Logger(school, "alice")
    sid = quiz(alice)["session_id"]
    alice.put(sid, interactions=[answer("i1", 0, replace=True)])
    changed = alice.put(sid, interactions=[answer("i1", 1, replace=True),
                                           answer("i2", 0, replace=True)])
    assert changed["complete"] is False
    attempts = listing(school, "examattemptlog", user_id="alice")["results"]
    assert sorted((a["item"], a["correct"]) for a in attempts) == [("i1", 1.0), ("i2", 0.0)]
    assert all(a["quiz_id"] == "q1" for a in attempts)
    # The submit: progress 1 completes the try and the summary.
    assert alice.put(sid, progress=1, time_spent_delta=60)["complete"] is True
    [exam] = listing(school, "examlog", user_id="alice")["results"]
    assert exam["closed"] is True and exam["completion_timestamp"] is not None
    assert exam["time_spent"] == 60.0
    after = alice.put(sid, status=403, interactions=[answer("i2", 1, replace=True)])
    assert after["params"]["err"] == "QUIZ_SUBMITTED"
    assert [a["correct"] for a in listing(school, "examattemptlog", user_id="alice")[
        "results"] if a["item"] == "i2"] == [0.0]  # nothing applied
    assert quiz(alice, status=403)["params"]["err"] == "QUIZ_SUBMITTED"
    again = quiz(alice, repeat=True)  # a new try
    assert (again["complete"], again["totalattempts"]) == (False, 0)
    levels = {e["mastery_level"] for e in listing(school, "examlog", user_id="alice")[
        "results"]}
    assert len(levels) == 2 and all(level < 0 for level in levels)


def test_a_resumed_quiz_shows_every_past_attempt(school: Api) -> None:
    alice = Logger(school, "alice")
    sid = quiz(alice)["session_id"]
    alice.put(sid, interactions=[answer(f"i{n}", 1, replace=True) for n in range(12)])
    resumed = quiz(alice)
    assert resumed["session_id"] != sid
    assert (resumed["totalattempts"], len(resumed["pastattempts"])) == (12, 12)


def test_a_practice_quiz_is_not_confused_with_the_exercise(school: Api) -> None:
    alice = Logger(school, "alice")
    practice = alice.start("ex1", kind="exercise", mastery_model={"type": "quiz"})
    assert practice["mastery_criterion"] == {"type": "quiz", "coach_assigned": False}
    alice.put(practice["session_id"], interactions=[answer("i1", 1, replace=True)])
    assert alice.put(practice["session_id"], progress=1)["complete"] is True
    drill = alice.start("ex1", kind="exercise",
                        mastery_model={"type": "m_of_n", "m": 2, "n": 3})
    assert (drill["totalattempts"], drill["complete"]) == (0, False)
    levels = sorted(t["mastery_level"] for t in listing(school, "masterylog",
                                                        user_id="alice")["results"])
    assert levels[0] < 0 < levels[1] == 1
    # A completed practice quiz is resumed, not refused (only coach quizzes lock).
    assert alice.start("ex1", kind="exercise", mastery_model={"type": "quiz"})["complete"]


@pytest.mark.parametrize(("body", "field"), [
    ({"quiz_id": "q1", "content_id": "c1"}, "content_id"),
    ({"quiz_id": "q1", "mastery_model": {"type": "quiz"}}, "mastery_model"),
    ({"quiz_id": "q1", "kind": "video"}, "kind"),
    ({"content_id": "q1", "kind": "quiz"}, "quiz_id"),
    ({"kind": "video"}, "content_id"),
    ({"content_id": "c1"}, "kind"),
])
def test_bad_quiz_starts_are_a_400_naming_the_field(school: Api, body: dict[str, Any],
                                                    field: str) -> None:
    refused = Logger(school, "alice").api.call("POST", TRACK, body, status=400)
    assert refused["params"]["errmsg"] and refused["result"]["field"] == field


def test_a_quiz_for_an_unknown_group_is_refused(school: Api) -> None:
    refused = put(school, "/v1/quizzes/q2", {"title": "T", "groupIds": ["c1", "zz"]},
                  status=404)
    assert (refused["params"]["err"], refused["result"]["field"]) == (
        "GROUP_NOT_FOUND", "request.groupIds[1]")
    school.call("GET", "/v1/quizzes/q2", status=404)
    shown = school.call("GET", "/v1/quizzes/q1")["result"]
    assert shown == {"quizId": "q1", "title": "Fractions", "active": True,
                     "groupIds": ["c1"]}
    school.as_user("cora", "coach").call("GET", "/v1/quizzes/q1", status=403)


# -- group and dataset filters -------------------------------------------------------------

def test_a_coach_lists_its_groups_members_and_no_one_else(school: Api) -> None:
    for user in ("alice", "bob", "carol"):
        Logger(school, user).start("v1")
    cora = school.as_user("cora", "coach")
    rows = listing(cora, "contentsessionlog", group_id="c1")["results"]
    assert sorted(r["user_id"] for r in rows) == ["alice", "carol"]  # carol via g1
    assert [r["user_id"] for r in listing(cora, "contentsessionlog", group_id="g1")[
        "results"]] == ["carol"]
    assert listing(cora, "contentsessionlog", status=403, group_id="c2")["params"][
        "err"] == "FORBIDDEN"
    # a classroom coach reads a member of its learner group one by one too
    assert len(listing(cora, "contentsummarylog", user_id="carol")["results"]) == 1
    listing(cora, "contentsessionlog", status=403, user_id="bob")
    alice = school.as_user("alice")
    listing(alice, "contentsessionlog", status=403, group_id="c1")
    assert len(listing(school, "contentsessionlog", group_id="c2")["results"]) == 1


def test_the_dataset_filter_never_crosses_datasets(school: Api) -> None:
    Logger(school, "alice").start("v1")
    assert len(listing(school, "contentsessionlog", dataset="default")["results"]) == 1
    refused = listing(school, "contentsessionlog", status=403, dataset="other")
    assert refused["result"]["field"] == "dataset"


# -- anonymous visitors --------------------------------------------------------------------

def test_a_visitor_records_a_session_under_its_cookie(api: Api, runtime: Runtime) -> None:
    client = api.client
    started = client.post(TRACK, json={"content_id": "c1", "kind": "video"})
    assert started.status_code == 200, started.text
    body = started.json()
    assert {k: v for k, v in body.items() if k != "session_id"} == {
        "progress": 0.0, "time_spent": 0.0, "extra_fields": {}, "complete": False}
    visitor = started.cookies.get("visitor_id")
    assert visitor and len(visitor) == 32
    client.cookies.set("visitor_id", visitor)
    again = client.post(TRACK, json={"content_id": "c2", "kind": "video"})
    assert again.cookies.get("visitor_id") == visitor  # the same visitor
    client.cookies.clear()
    sid = body["session_id"]
    for delta in (0.6, 0.6):
        updated = client.put(f"{TRACK}{sid}/", json={"progress_delta": delta,
                                                     "time_spent_delta": 5})
        assert updated.status_code == 200, updated.text
    assert updated.json() == {"complete": True}
    # Visitors' sessions feed no summary and nobody lists them.
    assert listing(api, "contentsessionlog")["results"] == []
    assert listing(api, "contentsummarylog")["results"] == []
    with runtime.engine.connect() as conn:
        row = conn.execute(select(visitor_sessions.c.progress, visitor_sessions.c.time_spent,
                                  visitor_sessions.c.visitor_id, visitor_sessions.c.completed_at
                                  ).where(visitor_sessions.c.session_id == sid)).one()
    assert (row[0], row[1], row[2]) == (1.0, 10.0, visitor) and row[3] is not None


def test_visitors_read_nothing_and_sessions_do_not_cross(api: Api) -> None:
    alice = Logger(api, "alice")
    learner_session = alice.start("c1")["session_id"]
    client = api.client
    assert client.put(f"{TRACK}{learner_session}/",
                      json={"progress_delta": 0.5}).status_code == 404
    visit = client.post(TRACK, json={"content_id": "c1", "kind": "video"}).json()
    alice.put(visit["session_id"], status=404, progress_delta=0.5)
    for kind in ("contentsessionlog", "contentsummarylog", "examlog", "usersessionlog"):
        assert client.get(f"/api/logger/{kind}/").status_code == 401
    assert client.get("/api/logger/userprogress/alice/").status_code == 401
    assert client.post("/v1/view/read", json={"request": {
        "userId": "alice", "contentId": ["c1"]}}).status_code == 401
    assert client.post(TRACK, json={"quiz_id": "q1"}).status_code == 403
    refused = client.put(f"{TRACK}{visit['session_id']}/",
                         json={"interactions": [answer("i1", 1)]})
    assert (refused.status_code, refused.json()["result"]["field"]) == (400, "interactions")


@pytest.fixture
def no_visitors(settings: Settings) -> Iterator[TestClient]:
    rt = bootstrap(settings.model_copy(update={"allow_anonymous_logs": False}))
    rt.start()
    with TestClient(create_app(rt.settings, rt)) as client:
        yield client
    rt.close()


def test_without_anonymous_logs_a_caller_needs_a_token(no_visitors: TestClient) -> None:
    assert no_visitors.post(TRACK, json={"content_id": "c1", "kind": "video"}
                            ).status_code == 401
    assert no_visitors.put(f"{TRACK}abc/", json={}).status_code == 401
