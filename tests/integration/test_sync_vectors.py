"""Version vectors (SPEC §5): what a database holds, per partition and instance — the
first step of a sync. Issue 5 builds the exchange on them."""

from __future__ import annotations

from sqlalchemy import func, select, update

from learnlog.bootstrap import Runtime
from learnlog.store.schema import sessions, summaries, tombstones
from learnlog.store.sync import held_vectors, synced_tables
from tests.support import Api, leaf


def test_facts_are_the_versioned_tables_and_nothing_derived() -> None:
    names = {t.name for t in synced_tables()}
    assert {"sessions", "attempts", "tries", "item_attempts", "enrolments", "collections",
            "contexts", "groups", "memberships", "tombstones"} <= names
    assert not names & {"summaries", "group_activity_agg", "member_activity_agg", "outbox",
                        "exports", "meta"}
    assert summaries.name not in names


def test_a_vector_is_the_highest_counter_per_partition_and_instance(
        api: Api, runtime: Runtime) -> None:
    api.put_collection("k1", [leaf("c1"), leaf("c2")])
    for user in ("ana", "ben"):
        api.start(user, "c1", "k1")
        api.update(user, "c1", "k1", progress=50, timespent=3)
    api.call("DELETE", "/v1/summary/delete/ben?all=true")  # leaves tombstones
    me = runtime.ctx.instance_id
    with runtime.engine.begin() as conn:
        # A session relayed from another instance, in ana's partition.
        row = dict(conn.execute(select(sessions).limit(1)).mappings().one())
        conn.execute(sessions.insert().values({**row, "session_id": "from-elsewhere",
                                               "instance_id": "other", "counter": 7}))
        top = {p: c for p, c in conn.execute(
            select(sessions.c.partition, func.max(sessions.c.counter))
            .where(sessions.c.instance_id == me).group_by(sessions.c.partition))}
        erased = conn.execute(select(func.max(tombstones.c.counter))).scalar_one()
        vectors = held_vectors(conn)
        named = held_vectors(conn, ["default:user:ana", "default:user:nobody"])
        conn.execute(update(sessions).where(sessions.c.session_id == "from-elsewhere")
                     .values(counter=9))
        later = held_vectors(conn, ["default:user:ana"])
    ana = vectors["default:user:ana"]
    assert ana["other"] == 7 and ana[me] >= top["default:user:ana"]
    assert vectors["default:user:ben"][me] >= erased > 0  # erasure is a fact too
    assert "default:shared" in vectors  # the collection, the enrolments
    assert named == {"default:user:ana": ana, "default:user:nobody": {}}
    assert later["default:user:ana"]["other"] == 9
