"""Group activity aggregates over HTTP (SPEC §2.7, §4.2), kept by the outbox job.

The hand-computed group of tests/unit/test_domain_group_aggregates.py, recorded through
the viewer API: five learners and a coach in group g; activity A is collection k1 (four
required contents and an optional one, o5; c4 is an assessment worth 3 points, and
submitting it completes it).
  m1  enrolled under x, completes c1 c2 c3 (12 s each) and scores 2/3 on c4 → 100 %,
      66.67 %; its own row: completedCount 4, timeSpent 36, score:c4 2, max_score:c4 3
  m2  under x: scores 3/3 on c4 (25 %); under y: completes c1, scores 1/3 on c4 (50 %)
      → counts once, with y: 50 %, 33.33 %
  m3  enrolled, never started;  m4 nothing;  m5 completes c1 and the optional o5 with no
      enrol call (the implicit enrolment under k1's default context): 1 of 4 required
      → 25 % (the optional content counts for nothing)
  → memberCount 5, enrolledCount 4, startedCount 3, completedCount 1,
    completionPercentage 25.0, avgProgress 43.75, avgScorePercent 50.0;
  after m1 leaves: 4, 3, 2, 0, 0.0, 25.0, 33.33.
Activity B (collection k2): nobody enrolled: percentages 0, not an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.service.group_aggregates import RefreshMember
from learnlog.settings import Settings
from learnlog.store.db import normalise_url
from learnlog.store.schema import group_activity_agg, memberships, outbox
from learnlog.store.uow import BatchUnitOfWork
from tests.support import Api, assess, leaf

AGG = "/data/group/activity/agg"


def wait_for(api: Api, expected: dict[str, float], activity: str = "k1",
             timeout: float = 15.0) -> dict[str, Any]:
    """The activity's answer once the outbox has caught up with the expected figures."""
    deadline = time.monotonic() + timeout
    while True:
        result: dict[str, Any] = api.post(AGG, {"groupId": "g", "activityId": activity,
                                                "activityType": "Collection"})["result"]
        seen = {a["metric"]: a["value"] for a in result["activity"]["agg"]}
        if seen == expected or time.monotonic() > deadline:
            assert seen == expected
            return result
        time.sleep(0.05)


@pytest.fixture
def group(api: Api) -> Api:
    api.put_collection("k1", [leaf("c1"), leaf("c2"), leaf("c3"), leaf("c4"),
                              leaf("o5", optional=True)])
    api.put_collection("k2", [leaf("d1")])
    api.call("PUT", "/v1/groups/g", {"request": {"kind": "group", "name": "G"}})
    for user in ("m1", "m2", "m3", "m4", "m5"):
        api.call("PUT", f"/v1/groups/g/members/{user}", {"request": {}})
    api.call("PUT", "/v1/groups/g/members/cora", {"request": {"role": "coach"}})
    for k in ("k1", "k2"):
        api.call("PUT", f"/v1/groups/g/activities/Collection/{k}")
    return api


def complete(api: Api, user: str, content: str, context: str | None, seconds: float = 0
             ) -> None:
    api.start(user, content, "k1", context)
    api.update(user, content, "k1", context, progress=100, timespent=seconds)


def score(api: Api, user: str, points: float, context: str | None) -> None:
    api.submit(user, "c4", "k1", context, assessments=[
        assess(f"q{i}", 1 if i < points else 0) for i in range(3)])


def test_the_hand_computed_group(group: Api) -> None:
    api = group
    api.post("/v1/enrol", {"userId": "m1", "collectionId": "k1", "contextId": "x"})
    for content in ("c1", "c2", "c3"):
        complete(api, "m1", content, "x", 12)
    score(api, "m1", 2, "x")
    api.post("/v1/enrol", {"userId": "m2", "collectionId": "k1", "contextId": "x"})
    score(api, "m2", 3, "x")
    api.post("/v1/enrol", {"userId": "m2", "collectionId": "k1", "contextId": "y"})
    complete(api, "m2", "c1", "y")
    score(api, "m2", 1, "y")
    api.post("/v1/enrol", {"userId": "m3", "collectionId": "k1", "contextId": "x"})
    complete(api, "m5", "c1", None)
    complete(api, "m5", "o5", None)
    result = wait_for(api, {
        "memberCount": 5, "enrolledCount": 4, "startedCount": 3, "completedCount": 1,
        "completionPercentage": 25.0, "avgProgress": 43.75, "avgScorePercent": 50.0})
    rows = {m["id"]: {a["metric"]: a["value"] for a in m["agg"]}
            for m in result["activity"]["members"]}
    assert rows["m1"] == {"status": 2, "progress": 100, "completedCount": 4,
                          "scorePercent": 66.666667, "timeSpent": 36,
                          "score:c4": 2, "max_score:c4": 3, "attempts_count:c4": 1}
    # m2's row is its most advanced context's (y), not its better score under x.
    assert rows["m2"] == {"status": 1, "progress": 50, "completedCount": 2,
                          "scorePercent": 33.333333, "timeSpent": 0,
                          "score:c4": 1, "max_score:c4": 3, "attempts_count:c4": 1}
    assert rows["m4"] == {"status": 0, "progress": 0, "completedCount": 0,
                          "scorePercent": 0, "timeSpent": 0}
    assert rows["m5"] == {"status": 1, "progress": 25, "completedCount": 1,
                          "scorePercent": 0, "timeSpent": 0}  # o5 is optional
    assert [a["lastUpdatedOn"] for m in result["activity"]["members"] if m["id"] == "m4"
            for a in m["agg"]] == [None] * 5
    assert all(a["lastUpdatedOn"] for m in result["activity"]["members"] if m["id"] == "m1"
               for a in m["agg"])
    assert rows["cora"] == rows["m4"]  # a coach adds nothing
    assert all(a["lastUpdatedOn"] for a in result["activity"]["agg"])
    b = wait_for(api, {"memberCount": 5, "enrolledCount": 0, "startedCount": 0,
                       "completedCount": 0, "completionPercentage": 0.0,
                       "avgProgress": 0.0, "avgScorePercent": 0.0}, activity="k2")
    assert b["activity"]["type"] == "Collection"
    api.call("DELETE", "/v1/groups/g/members/m1")
    wait_for(api, {"memberCount": 4, "enrolledCount": 3, "startedCount": 2,
                   "completedCount": 0, "completionPercentage": 0.0, "avgProgress": 25.0,
                   "avgScorePercent": 33.33})
    listed = api.post("/data/group/agg", {"groupId": "g", "fields": ["memberCount"]})
    assert [(a["id"], [x["metric"] for x in a["agg"]]) for a in listed["result"]["activity"]
            ] == [("k1", ["memberCount"]), ("k2", ["memberCount"])]
    # A member's own row is read-after-write: no waiting for the outbox.
    complete(api, "m5", "c2", None)
    own = api.as_user("m5").post(AGG, {"groupId": "g", "activityId": "k1",
                                       "activityType": "Collection",
                                       "fields": ["completedCount", "progress"]})
    assert own["result"]["activity"]["members"] == [{"id": "m5", "role": "learner", "agg": [
        {"metric": "progress", "value": 50, "lastUpdatedOn": pytest.approx(time.time() * 1000,
                                                                          abs=60_000)},
        {"metric": "completedCount", "value": 2, "lastUpdatedOn": pytest.approx(
            time.time() * 1000, abs=60_000)}]}]


def test_who_reads_what(group: Api) -> None:
    api = group
    api.post("/v1/enrol", {"userId": "m1", "collectionId": "k1", "contextId": "x"})
    body = {"groupId": "g", "activityId": "k1", "activityType": "Collection"}
    coach = api.as_user("cora").post(AGG, body)["result"]["activity"]["members"]
    assert len(coach) == 6
    own = api.as_user("m2").post(AGG, body)["result"]["activity"]["members"]
    assert [m["id"] for m in own] == ["m2"]
    api.as_user("stranger").post(AGG, body, status=403)
    api.post(AGG, {**body, "groupId": "nope"}, status=404)


def test_the_group_figures_answer_every_reader_of_the_group(group: Api) -> None:
    """`POST /data/group/agg` (the route a dashboard polls): the named activities in the
    order named, an activity nobody counted yet as zeros; the group's admins, coaches and
    members read it, nobody else; a group with activities but no figures yet answers."""
    api = group
    api.post("/v1/enrol", {"userId": "m1", "collectionId": "k1", "contextId": "x"})
    wait_for(api, {"memberCount": 5, "enrolledCount": 1, "startedCount": 0,
                   "completedCount": 0, "completionPercentage": 0.0, "avgProgress": 0.0,
                   "avgScorePercent": 0.0})
    body = {"groupId": "g", "fields": ["memberCount", "enrolledCount"], "activities": [
        {"id": "k2", "type": "Collection"}, {"id": "k1", "type": "Collection"},
        {"id": "zz", "type": "Content"}]}
    expected = [("k2", "Collection", [5, 0]), ("k1", "Collection", [5, 1]),
                ("zz", "Content", [0, 0])]
    for reader in (api, api.as_user("cora"), api.as_user("m2")):
        result = reader.post("/data/group/agg", body)["result"]
        assert [(a["id"], a["type"], [x["value"] for x in a["agg"]])
                for a in result["activity"]] == expected
    refused = api.as_user("stranger").post("/data/group/agg", body, status=403)
    assert (refused["params"]["err"], refused["result"]["field"]) == (
        "FORBIDDEN", "request.groupId")
    unknown = api.post("/data/group/agg", {**body, "groupId": "nope"}, status=404)
    assert unknown["params"]["err"] == "GROUP_NOT_FOUND"
    api.call("PUT", "/v1/groups/h", {"request": {"kind": "group", "name": "H"}})
    api.call("PUT", "/v1/groups/h/activities/Collection/k2")
    empty = api.post("/data/group/agg", {"groupId": "h"})["result"]["activity"]
    assert [(a["id"], {x["metric"]: x["value"] for x in a["agg"]}["memberCount"])
            for a in empty] == [("k2", 0)]


@pytest.mark.parametrize(("request_body", "err", "field"), [
    ({"activityId": "k1", "activityType": "Collection"}, "GROUP_ID_MISSING", "request.groupId"),
    ({"groupId": "g", "activityType": "Collection"}, "ACTIVITY_ID_MISSING",
     "request.activityId"),
    ({"groupId": "g", "activityId": "k1"}, "ACTIVITY_TYPE_MISSING", "request.activityType"),
    ({"groupId": "g", "activityId": "k1", "activityType": "Course"},
     "INVALID_PARAMETER_VALUE", "request.activityType"),
    ({"groupId": "g\x01", "activityId": "k1", "activityType": "Collection"},
     "INVALID_PARAMETER_VALUE", "request.groupId"),
])
def test_bad_requests_name_the_field(group: Api, request_body: dict[str, Any], err: str,
                                     field: str) -> None:
    refused = group.post(AGG, request_body, status=400)
    assert (refused["params"]["err"], refused["result"]["field"]) == (err, field)
    if err == "GROUP_ID_MISSING":
        assert refused["params"]["errmsg"] == "GroupId is mandatory."


def queued(rt: Runtime) -> list[Any]:
    with rt.engine.connect() as conn:
        return [orjson.loads(p) for p in conn.execute(select(outbox.c.payload).where(
            outbox.c.topic == "group.member")).scalars()]


def test_progress_of_a_learner_outside_groups_queues_nothing(
        held_outbox: tuple[Api, Runtime]) -> None:
    """The write path pays for group upkeep only for learners of groups with activities."""
    api, rt = held_outbox
    api.put_collection("k1", [leaf("c1")])
    api.call("PUT", "/v1/groups/g", {"request": {"kind": "group", "name": "G"}})
    api.call("PUT", "/v1/groups/g/members/in", {"request": {}})  # queues "in" (a join)
    complete(api, "out", "c1", "x")
    assert queued(rt) == [{"userId": "in"}]
    api.call("PUT", "/v1/groups/g/activities/Collection/k1")  # every member again
    complete(api, "in", "c1", "x")  # its start and its completion: one each
    assert queued(rt) == [{"userId": "in"}] * 4


def test_the_rows_an_event_reads_do_not_grow_with_the_group(
        pg_url_factory: Callable[[], str]) -> None:
    """One learner's refresh in a group of 10,000 learners reads a handful of rows: the
    learner's own memberships, enrolments and contributions, the group's activities and
    the collection — counted by PostgreSQL itself (this transaction's table statistics)."""
    settings = Settings(database_url=pg_url_factory(), jwt_secret="s" * 40,
                        process_outbox=False, _env_file=None)  # type: ignore[call-arg]
    rt = bootstrap(settings)
    rt.start()
    try:
        with TestClient(create_app(rt.settings, rt)) as client:
            api = Api(client, mint(rt.secret, "admin", ["admin"]), rt.secret)
            api.put_collection("k1", [leaf("c1"), leaf("c2")])
            api.call("PUT", "/v1/groups/g", {"request": {"kind": "group", "name": "G"}})
            api.call("PUT", "/v1/groups/g/activities/Collection/k1")
            sync = {"partition": "default:shared", "instance_id": "i", "counter": 1,
                    "updated_at": 0}
            with rt.engine.begin() as conn:
                conn.execute(memberships.insert(), [
                    {"dataset": "default", "group_id": "g", "user_id": f"u{n:05d}",
                     "role": "learner", **sync} for n in range(10_000)])
                conn.exec_driver_sql("ANALYZE")
            complete(api, "u00042", "c1", "x")
        counts = {}
        # A new backend per refresh: its transaction statistics are this refresh's alone.
        fresh = create_engine(normalise_url(settings.database_url), poolclass=NullPool)
        for learner in ("u00042", "u09999"):
            with fresh.begin() as conn:
                uow = BatchUnitOfWork(conn, rt.ctx.instance_id, 1)
                uow.begin_command()
                RefreshMember("default", learner).apply(uow, rt.ctx)
                uow.commit_command()
                uow.flush()
                read = conn.exec_driver_sql(
                    "SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)"
                    " FROM pg_stat_xact_user_tables").all()
                counts[learner] = {table: n for table, n in read if n}
        for learner, by_table in counts.items():
            assert sum(by_table.values()) <= 20, (learner, by_table)
            assert by_table["memberships"] == 1, (learner, by_table)  # not 10,000
        fresh.dispose()
        with rt.engine.connect() as conn:
            row = conn.execute(select(group_activity_agg)).mappings().one()
        assert (row["member_count"], row["enrolled_count"], row["progress_sum"]) == (2, 1, 50)
    finally:
        rt.close()


def test_a_content_activity_counts_its_completion(group: Api) -> None:
    """A half-watched content is started (0 %); a finished one is 100 %."""
    api = group
    api.call("PUT", "/v1/groups/g/activities/Content/v1")
    for user, progress in (("m1", 50), ("m2", 100)):
        api.start(user, "v1")
        api.update(user, "v1", progress=progress)
    deadline = time.monotonic() + 15
    while True:
        result = api.post(AGG, {"groupId": "g", "activityId": "v1",
                                "activityType": "Content"})["result"]["activity"]
        seen = {a["metric"]: a["value"] for a in result["agg"]}
        if (seen["completedCount"] == 1 and seen["startedCount"] == 2) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (seen["enrolledCount"], seen["startedCount"], seen["completedCount"],
            seen["avgProgress"]) == (2, 2, 1, 50.0)
    rows = {m["id"]: {a["metric"]: a["value"] for a in m["agg"]} for m in result["members"]}
    assert rows["m1"] == {"status": 1, "progress": 0, "completedCount": 0,
                          "scorePercent": 0.0, "timeSpent": 0}
    assert rows["m2"]["progress"] == 100 and rows["m2"]["completedCount"] == 1
    assert rows["m3"]["status"] == 0


def test_member_rows_read_in_chunks_give_the_same_rows(group: Api, runtime: Runtime,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A big group's rows are read a chunk of members at a time (a statement's parameters
    are bounded): chunks of one member give the rows one read gives."""
    api = group
    api.call("PUT", "/v1/groups/g/activities/Content/c1")
    complete(api, "m1", "c1", "x", 5)
    complete(api, "m2", "c2", None)
    api.start("m3", "c1")
    api.update("m3", "c1", progress=40, timespent=2)
    bodies = [{"groupId": "g", "activityId": a, "activityType": t}
              for a, t in (("k1", "Collection"), ("c1", "Content"))]
    whole = [api.post(AGG, b)["result"]["activity"]["members"] for b in bodies]
    monkeypatch.setattr("learnlog.service.group_aggregates.MEMBER_CHUNK", 1)
    assert [api.post(AGG, b)["result"]["activity"]["members"] for b in bodies] == whole
    rows = {m["id"]: {a["metric"]: a["value"] for a in m["agg"]} for m in whole[0]}
    assert rows["m1"]["timeSpent"] == 5 and rows["m2"]["completedCount"] == 1
    assert {m["id"]: {a["metric"]: a["value"] for a in m["agg"]}["timeSpent"]
            for m in whole[1]}["m3"] == 2
