"""The permission matrix of SPEC §3: every role by every route family, on both engines.

Callers: the dataset's admin, the learner itself (`la`), a peer (`lb`), the coach of the
learner's classroom (`coach_a`), the coach of another classroom (`coach_b`), an admin of
another dataset, and no token at all (an anonymous visitor: it may write visitor sessions,
reads nothing). Each row says what each caller gets when it acts
on `la`'s records through one route family. Roles come from token claims (admin) and from
group memberships (coaches), registered through the identity routes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from learnlog.api.auth import mint
from tests.support import Api, keys

CALLERS = ("admin", "la", "lb", "coach_a", "coach_b", "other_dataset", "anonymous")


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    """Two classrooms, a coach and a learner in each; `la` has a view and a session."""
    for user, kind in (("la", "learner"), ("lb", "learner"), ("coach_a", "coach"),
                       ("coach_b", "coach")):
        api.call("PUT", f"/v1/users/{user}", {"request": {"kind": kind, "username": user}})
    for group, coach, learner in (("class-a", "coach_a", "la"), ("class-b", "coach_b", "lb")):
        api.call("PUT", f"/v1/groups/{group}", {"request": {"kind": "classroom",
                                                             "name": group}})
        api.call("PUT", f"/v1/groups/{group}/members/{coach}", {"request": {"role": "coach"}})
        api.call("PUT", f"/v1/groups/{group}/members/{learner}", {"request": {}})
    api.call("PUT", "/v1/quizzes/qa", {"request": {"title": "A", "groupIds": ["class-a"]}})
    la = api.as_user("la")
    la.start("la", "c1")
    la.update("la", "c1", timespent=10, progress=40)
    session = la.call("POST", "/api/logger/trackprogress/", {"content_id": "c2", "kind": "video"})
    tokens = {"admin": api.token, "anonymous": None,
              "other_dataset": mint(api.secret or "", "root-b", ["admin"], dataset="b")}
    for user in ("la", "lb", "coach_a", "coach_b"):
        tokens[user] = mint(api.secret or "", user, ["learner"])
    return {"tokens": tokens, "session": session["session_id"]}


def send(api: Api, token: str | None, method: str, path: str, body: Any = None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return api.client.request(method, path, json=body, headers=headers)


# route family → (request maker, expected status per caller)
Request = Callable[[dict[str, Any]], tuple[str, str, Any]]
READ = {"admin": 200, "la": 200, "lb": 403, "coach_a": 200, "coach_b": 403,
        "other_dataset": 200, "anonymous": 401}
WRITE = {"admin": 200, "la": 200, "lb": 403, "coach_a": 403, "coach_b": 403,
         "other_dataset": 200, "anonymous": 401}
ADMIN = {"admin": 200, "la": 403, "lb": 403, "coach_a": 403, "coach_b": 403,
         "other_dataset": 200, "anonymous": 401}
# A session is updated by its owner only; a caller without a token is a visitor, whose
# lookup (visitor sessions) does not find a learner's session either.
OWNER = {"admin": 404, "la": 200, "lb": 404, "coach_a": 404, "coach_b": 404,
         "other_dataset": 404, "anonymous": 404}
GROUP = {"admin": 200, "la": 403, "lb": 403, "coach_a": 200, "coach_b": 403,
         "other_dataset": 200, "anonymous": 401}

FAMILIES: dict[str, tuple[Request, dict[str, int]]] = {
    "viewer read": (lambda w: ("POST", "/v1/view/read", {"request": {
        "userId": "la", "contentId": ["c1"]}}), READ),
    "assessment read": (lambda w: ("POST", "/v1/assessment/read", {"request": {
        "userId": "la", "contentId": ["c1"]}}), READ),
    "summary list": (lambda w: ("GET", "/v1/summary/list/la", None), READ),
    "logger listing": (lambda w: ("GET", "/api/logger/contentsessionlog/?user_id=la", None),
                       READ),
    "user sessions": (lambda w: ("GET", "/api/logger/usersessionlog/?user_id=la", None),
                      READ),
    "logger totals": (lambda w: ("GET", "/api/logger/userprogress/la/", None), READ),
    "viewer write": (lambda w: ("POST", "/v1/view/update", {"request": {
        **keys("la", "c1"), "timespent": 1}}), {**WRITE, "other_dataset": 400}),
    "enrol": (lambda w: ("POST", "/v1/enrol", {"request": {
        "userId": "la", "collectionId": "k1"}}), WRITE),
    "exam listing": (lambda w: ("GET", "/api/logger/examlog/?user_id=la", None), READ),
    "group listing": (lambda w: ("GET", "/api/logger/contentsummarylog/?group_id=class-a",
                                 None), GROUP),
    "session start": (lambda w: ("POST", "/api/logger/trackprogress/", {
        "content_id": "c3", "kind": "video"}), dict.fromkeys(CALLERS, 200)),
    "quiz start": (lambda w: ("POST", "/api/logger/trackprogress/", {"quiz_id": "qa"}), {
        **dict.fromkeys(CALLERS, 403), "la": 200, "coach_a": 200}),
    "activity admin": (lambda w: ("PUT", "/v1/groups/class-a/activities/Collection/k1",
                                  None), {**ADMIN, "other_dataset": 404}),
    "quiz admin": (lambda w: ("PUT", "/v1/quizzes/qb", {"request": {"title": "B"}}), ADMIN),
    "quiz read": (lambda w: ("GET", "/v1/quizzes/qa", None),
                  {**ADMIN, "other_dataset": 404}),
    "logger write": (lambda w: ("PUT", f"/api/logger/trackprogress/{w['session']}/",
                                {"time_spent_delta": 1}), OWNER),
    "structure admin": (lambda w: ("PUT", "/v1/collection/k9", {"request": {
        "name": "k9", "children": []}}), ADMIN),
    "identity admin": (lambda w: ("PUT", "/v1/groups/class-a/members/lb", {"request": {}}),
                       {**ADMIN, "other_dataset": 404}),
    "group read": (lambda w: ("GET", "/v1/groups/class-a", None),
                   {**ADMIN, "coach_a": 200, "other_dataset": 404}),
    # Sync: admins of the dataset (and devices granted the partition, test_sync.py).
    "sync": (lambda w: ("POST", "/v1/sync/pull", {"partitions": ["default:user:la"]}),
             {**ADMIN, "other_dataset": 403}),
    # Tracking-log statistics: the course's staff (no group here has the course; another
    # dataset's admin reads its own dataset's, empty, statistics).
    "stats": (lambda w: ("GET", "/api/stats/videos?course_id=course-v1:X+Y+Z", None), ADMIN),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_permission_matrix(api: Api, world: dict[str, Any], family: str) -> None:
    make, expected = FAMILIES[family]
    seen = {}
    for who in CALLERS:
        method, path, body = make(world)
        seen[who] = send(api, world["tokens"][who], method, path, body).status_code
    assert seen == expected


def test_a_coach_reads_the_learners_figures_but_another_dataset_sees_none(
        api: Api, world: dict[str, Any]) -> None:
    tokens = world["tokens"]
    body = {"request": {"userId": "la", "contentId": ["c1"]}}
    by_coach = send(api, tokens["coach_a"], "POST", "/v1/view/read", body).json()
    assert by_coach["result"]["contents"][0]["progress"] == 40
    elsewhere = send(api, tokens["other_dataset"], "POST", "/v1/view/read", body).json()
    assert elsewhere["result"]["contents"][0]["status"] == 0  # nothing crosses datasets
    rows = send(api, tokens["other_dataset"], "GET", "/api/logger/contentsessionlog/",
                None).json()
    assert rows["results"] == []


def test_a_coach_lists_the_members_rows_and_a_learner_only_its_own(
        api: Api, world: dict[str, Any]) -> None:
    tokens = world["tokens"]
    coach_rows = send(api, tokens["coach_a"], "GET",
                      "/api/logger/contentsessionlog/?user_id=la", None).json()["results"]
    assert {r["user_id"] for r in coach_rows} == {"la"} and len(coach_rows) == 2
    own = send(api, tokens["lb"], "GET", "/api/logger/contentsessionlog/", None).json()
    assert own["results"] == []  # lb recorded nothing, and sees nothing of la


def test_leaving_the_group_ends_the_coachs_reading(api: Api, world: dict[str, Any]) -> None:
    coach = world["tokens"]["coach_a"]
    assert send(api, coach, "GET", "/v1/summary/list/la", None).status_code == 200
    api.call("DELETE", "/v1/groups/class-a/members/la")
    assert send(api, coach, "GET", "/v1/summary/list/la", None).status_code == 403
    api.call("DELETE", "/v1/groups/class-a/members/la", status=404)


def test_a_learner_member_is_no_reader_of_its_group(api: Api, world: dict[str, Any]) -> None:
    group = api.call("GET", "/v1/groups/class-a")["result"]
    assert group["members"] == [{"userId": "coach_a", "role": "coach"},
                                {"userId": "la", "role": "learner"}]
    assert send(api, world["tokens"]["la"], "GET", "/v1/groups/class-a", None).status_code == 403


def test_a_learnergroup_lives_in_a_classroom(api: Api, world: dict[str, Any]) -> None:
    api.call("PUT", "/v1/groups/g1", {"request": {"kind": "learnergroup", "name": "g1",
                                                  "parentId": "class-a"}})
    missing = api.call("PUT", "/v1/groups/g2", {"request": {"kind": "learnergroup",
                                                            "name": "g2"}}, status=400)
    assert missing["result"]["field"] == "request.parentId"
    api.call("PUT", "/v1/groups/g3", {"request": {"kind": "learnergroup", "name": "g3",
                                                  "parentId": "g1"}}, status=400)
    api.call("PUT", "/v1/groups/g4", {"request": {"kind": "classroom", "name": "g4",
                                                  "parentId": "class-a"}}, status=400)
    unknown = api.call("PUT", "/v1/groups/nope/members/la", {"request": {}}, status=404)
    assert unknown["params"]["err"] == "GROUP_NOT_FOUND"
