"""Group activities (SPEC §2.7): what a group works on — collections, contents, quizzes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api

ACT = "/v1/groups/g1/activities"


@pytest.fixture
def group(api: Api) -> Api:
    api.call("PUT", "/v1/groups/g1", {"request": {"kind": "group", "name": "Study group"}})
    api.call("PUT", "/v1/groups/g1/members/cora", {"request": {"role": "coach"}})
    api.call("PUT", "/v1/quizzes/q1", {"request": {"title": "Fractions"}})
    return api


def activities(api: Api) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.call("GET", "/v1/groups/g1")["result"]["activities"]
    return found


def test_a_group_gets_and_loses_activities(group: Api) -> None:
    added = group.call("PUT", f"{ACT}/Collection/k1")["result"]
    assert added == {"groupId": "g1", "activity": {"id": "k1", "type": "Collection"}}
    group.call("PUT", f"{ACT}/Content/c1")
    group.call("PUT", f"{ACT}/Quiz/q1")
    group.call("PUT", f"{ACT}/Quiz/q1")  # again: no duplicate
    assert activities(group) == [{"id": "k1", "type": "Collection"},
                                 {"id": "c1", "type": "Content"}, {"id": "q1", "type": "Quiz"}]
    assert activities(group.as_user("cora", "learner")) == activities(group)
    group.call("DELETE", f"{ACT}/Content/c1")
    assert [a["id"] for a in activities(group)] == ["k1", "q1"]
    missing = group.call("DELETE", f"{ACT}/Content/c1", status=404)
    assert (missing["params"]["err"], missing["result"]["field"]) == (
        "ACTIVITY_NOT_FOUND", "activityId")


def test_activity_refusals_name_the_field(group: Api) -> None:
    for path, status, err, field in [
        (f"{ACT}/Quiz/nope", 404, "QUIZ_NOT_FOUND", "activityId"),
        ("/v1/groups/zz/activities/Collection/k1", 404, "GROUP_NOT_FOUND", "groupId"),
        (f"{ACT}/Course/k1", 400, "INVALID_PARAMETER_VALUE", "activityType"),
        (f"{ACT}/Collection/{'k' * 257}", 400, "INVALID_PARAMETER_VALUE", "activityId"),
        (f"{ACT}/Collection/k%01", 400, "INVALID_PARAMETER_VALUE", "activityId"),
    ]:
        refused = group.call("PUT", path, status=status)
        assert (refused["params"]["err"], refused["result"]["field"]) == (err, field), path
    assert activities(group) == []


def test_only_admins_change_activities(group: Api) -> None:
    for who in (group.as_user("cora", "learner"), group.as_user("lee", "learner")):
        who.call("PUT", f"{ACT}/Collection/k1", status=403)
    group.call("PUT", f"{ACT}/Collection/k1")
    group.as_user("cora", "learner").call("DELETE", f"{ACT}/Collection/k1", status=403)
    assert len(activities(group)) == 1
