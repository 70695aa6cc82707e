"""The outbox processor (SPEC §7) on both engines: claims, leases, retries, batching; and
the group figures' check and rebuild (`learnlog verify` / `learnlog recompute`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from learnlog.bootstrap import Runtime
from learnlog.jobs import outbox as box
from learnlog.service.group_aggregates import RebuildAggregates, check_aggregates
from learnlog.service.writer import now_ms
from learnlog.store import rows
from learnlog.store.schema import group_activity_agg, member_activity_agg, outbox
from learnlog.store.uow import BatchUnitOfWork
from tests.support import Api, assess, leaf


def queue(rt: Runtime, *payloads: dict[str, Any], topic: str = "group.member") -> None:
    with rt.engine.begin() as conn:
        conn.execute(outbox.insert(), [
            {"dataset": "default", "topic": topic, "payload": rows.dumps(p),
             "created_at": now_ms(), "available_at": now_ms(), "attempts": 0}
            for p in payloads])


def left(rt: Runtime) -> list[tuple[str, int]]:
    with rt.engine.connect() as conn:
        return [(r.payload, r.attempts) for r in conn.execute(
            select(outbox.c.payload, outbox.c.attempts).order_by(outbox.c.id))]


def group_of_two(api: Api, rt: Runtime) -> None:
    api.put_collection("k1", [leaf("c1"), leaf("c2")])
    drain(rt)  # the new structure's job
    api.call("PUT", "/v1/groups/g", {"request": {"kind": "group", "name": "G"}})
    api.call("PUT", "/v1/groups/g/activities/Collection/k1")
    for user in ("a", "b"):
        api.call("PUT", f"/v1/groups/g/members/{user}", {"request": {}})
    api.start("a", "c1", "k1")
    api.update("a", "c1", "k1", progress=100)


def totals(rt: Runtime) -> dict[str, Any]:
    with rt.engine.connect() as conn:
        return dict(conn.execute(select(group_activity_agg)).mappings().one())


def drain(rt: Runtime) -> None:
    while box.process_once(rt.engine, rt.jobs):
        pass


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(
        held_outbox: tuple[Api, Runtime]) -> None:
    _, rt = held_outbox
    queue(rt, {"userId": "a"}, {"userId": "b"})
    first = box.claim(rt.engine, 1, 60_000)
    second = box.claim(rt.engine, 10, 60_000)
    assert [r["payload"] for r in first + second] == ['{"userId":"a"}', '{"userId":"b"}']
    assert box.claim(rt.engine, 10, 60_000) == []  # both leased
    with rt.engine.begin() as conn:  # the first claimer died: its lease runs out
        conn.execute(update(outbox).where(outbox.c.id == first[0]["id"])
                     .values(available_at=now_ms() - 1))
    again = box.claim(rt.engine, 10, 60_000)
    assert [r["id"] for r in again] == [first[0]["id"]]
    assert left(rt) == [('{"userId":"a"}', 2), ('{"userId":"b"}', 1)]


def test_a_batch_refreshes_each_learner_once_and_deletes_its_rows(
        held_outbox: tuple[Api, Runtime]) -> None:
    api, rt = held_outbox
    group_of_two(api, rt)
    queue(rt, *[{"userId": "a"}] * 5)
    with rt.engine.connect() as conn:
        queued = conn.execute(select(outbox.c.topic, outbox.c.payload)).all()
    refreshes = [p for t, p in queued if t == "group.member"]
    assert len(refreshes) >= 9  # joins, the activity, the start, the completion, and ours
    commands = rt.writer.commands
    stats = box.Stats()
    box.process_once(rt.engine, rt.jobs, stats)
    # One command per distinct job: a and b refreshed once however often they were queued.
    assert rt.writer.commands - commands == len(set(queued)) == len(queued) - len(
        refreshes) + 2
    assert left(rt) == [] and stats.handled >= 9 and stats.failed == 0
    assert (totals(rt)["member_count"], totals(rt)["completed_count"],
            totals(rt)["progress_sum"]) == (2, 0, 50)


def test_a_failing_row_stays_for_a_retry_and_does_not_hold_up_the_others(
        held_outbox: tuple[Api, Runtime]) -> None:
    api, rt = held_outbox
    group_of_two(api, rt)
    drain(rt)
    queue(rt, {"collectionId": "k1"}, {"nothing": "here"}, topic="structure.changed")
    queue(rt, {"userId": "b"})
    stats = box.Stats()
    box.process_once(rt.engine, rt.jobs, stats)
    assert (stats.handled, stats.failed) == (2, 1)
    # The bad row is leased (retried after its lease); the structure change queued a
    # refresh of the collection's enrolled group member.
    assert left(rt) == [('{"nothing":"here"}', 1), ('{"userId":"a"}', 0)]


def test_check_finds_and_rebuild_repairs_damaged_figures(held_outbox: tuple[Api, Runtime]) -> None:
    api, rt = held_outbox
    group_of_two(api, rt)
    drain(rt)
    before = totals(rt)

    def check() -> list[str]:
        with rt.engine.connect() as conn:
            return check_aggregates(BatchUnitOfWork(conn, rt.ctx.instance_id, now_ms()),
                                    rt.ctx).problems

    assert check() == []
    with rt.engine.begin() as conn:  # a lost event, a stray row, a wrong sum
        conn.execute(member_activity_agg.delete().where(member_activity_agg.c.user_id == "b"))
        conn.execute(member_activity_agg.insert().values(
            dataset="default", user_id="gone", group_id="g", activity_type="Collection",
            activity_id="k1", enrolled=True, started=True, completed=True, progress=100,
            score_micro=None, updated_at=1))
        conn.execute(update(group_activity_agg).values(progress_sum=999))
    found = check()
    assert len(found) == 3
    assert any("default/b" in p for p in found) and any("default/gone" in p for p in found)
    assert any("progress_sum=999" in p and "progress_sum=50" in p for p in found)
    report = rt.writer.run_sync(RebuildAggregates())
    assert len(report.problems) == 3 and report.learners == 3
    assert check() == []
    after = totals(rt)
    assert after["progress_sum"] == 50
    # Only the metrics whose inputs were wrong get a new lastUpdatedOn.
    assert after["member_count_at"] == before["member_count_at"]
    assert after["avg_progress_at"] > before["avg_progress_at"]
    assert rt.writer.run_sync(RebuildAggregates()).problems == []


def test_a_structure_change_moves_the_group_figures(held_outbox: tuple[Api, Runtime]) -> None:
    """Dropping a scored optional content changes no enrolment figure, but it changes the
    member's score in the collection: the group's figures follow."""
    api, rt = held_outbox
    api.put_collection("k1", [leaf("c1"), leaf("c4", optional=True)])
    api.call("PUT", "/v1/groups/g", {"request": {"kind": "group", "name": "G"}})
    api.call("PUT", "/v1/groups/g/activities/Collection/k1")
    api.call("PUT", "/v1/groups/g/members/a", {"request": {}})
    api.start("a", "c1", "k1")
    api.update("a", "c1", "k1", progress=100)
    api.submit("a", "c4", "k1", assessments=[assess("q1", 1, 3)])
    drain(rt)
    assert totals(rt)["scored_count"] == 1
    api.put_collection("k1", [leaf("c1")])
    drain(rt)
    assert totals(rt)["scored_count"] == 0
    with rt.engine.connect() as conn:
        assert check_aggregates(BatchUnitOfWork(conn, rt.ctx.instance_id, now_ms()),
                                rt.ctx).problems == []
