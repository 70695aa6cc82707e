"""Offline sync between two real instances (SPEC §5), in-process: the same server
functions the HTTP routes call, every body through JSON. One side runs on each engine;
the other is an SQLite file, as on a school server or a laptop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.domain.errors import Conflict, Forbidden, InvalidInput
from learnlog.service.verify import verify
from learnlog.settings import Settings
from learnlog.store.fastsql import FastSql
from learnlog.store.schema import course_units, sessions
from learnlog.store.sync import held_vectors, sendable_vectors, synced_tables
from learnlog.store.uow import BatchUnitOfWork
from learnlog.sync.client import LocalPeer, SyncError, sync
from learnlog.sync.server import Grant
from tests.support import Api, Unreliable, leaf, unit


@pytest.fixture
def laptop(tmp_path: Path, settings: Settings) -> Iterator[tuple[Api, Runtime]]:
    """A second instance: its own SQLite file, its own instance id."""
    rt = bootstrap(settings.model_copy(update={
        "database_url": f"sqlite:///{tmp_path / 'laptop.db'}"}))
    rt.start()
    with TestClient(create_app(rt.settings, rt)) as client:
        yield Api(client, mint(rt.secret, "admin", ["admin"]), rt.secret), rt
    rt.close()


def facts(rt: Runtime) -> dict[str, set[tuple[Any, ...]]]:
    """Every fact row an instance holds, versions included."""
    out = {}
    with rt.read_engine.connect() as conn:
        for table in synced_tables():
            out[table.name] = {tuple(r) for r in conn.execute(select(table))}
    return out


def seconds(api: Api, user: str, content: str, collection: str | None) -> float:
    return float(api.one(user, content, collection)["timeSpent"])


def test_the_kolibri_loss_case_ends_with_the_sum_on_both_sides(
        api: Api, runtime: Runtime, laptop: tuple[Api, Runtime]) -> None:
    """The same learner's content advanced by 100 s on one instance and 7 s on the other:
    after syncing both ways both show 107 s more, and both sessions exist on both."""
    lapi, lrt = laptop
    for side in (api, lapi):
        side.put_collection("k1", [leaf("c1"), leaf("c2")])
    api.start("ana", "c1", "k1")
    api.update("ana", "c1", "k1", progress=40, timespent=100)
    lapi.start("ana", "c1", "k1")
    lapi.update("ana", "c1", "k1", progress=70, timespent=7)
    report = sync(lrt, LocalPeer(runtime))
    assert report.pulled > 0 and report.pushed > 0
    for side in (api, lapi):
        assert seconds(side, "ana", "c1", "k1") == pytest.approx(107)
        assert side.one("ana", "c1", "k1")["progress"] == 70
    for rt in (runtime, lrt):
        with rt.read_engine.connect() as conn:
            owners = sorted(conn.execute(select(sessions.c.instance_id)).scalars())
            assert owners == sorted([runtime.ctx.instance_id, lrt.ctx.instance_id])
            assert not verify(conn, rt.ctx.mode).problems
    assert facts(runtime) == facts(lrt)
    again = sync(lrt, LocalPeer(runtime))  # nothing left to move
    assert (again.pulled, again.pushed) == (0, 0)


def test_a_device_receives_only_its_partition_and_may_push_only_there(
        api: Api, runtime: Runtime, laptop: tuple[Api, Runtime]) -> None:
    _, lrt = laptop
    api.put_collection("k1", [leaf("c1")])
    for user in ("ana", "ben"):
        api.start(user, "c1", "k1")
        api.update(user, "c1", "k1", progress=50, timespent=5)
    grant = Grant("default", frozenset({"default:user:ana"}))
    report = sync(lrt, LocalPeer(runtime, grant))
    assert report.pulled > 0
    with lrt.read_engine.connect() as conn:
        assert set(held_vectors(conn)) == {"default:user:ana"}
        assert set(conn.execute(select(sessions.c.user_id)).scalars()) == {"ana"}
    # A push into ben's partition is refused whole, and nothing changes.
    before = facts(runtime)
    with runtime.read_engine.connect() as conn:
        ana, ben = (dict(conn.execute(select(sessions).where(sessions.c.user_id == u))
                         .mappings().one()) for u in ("ana", "ben"))
    forged = [{**ana, "session_id": "forged-a"}, {**ben, "session_id": "forged-b"}]
    body = {"facts": [{"table": "sessions", "columns": list(ana),
                       "rows": [list(r.values()) for r in forged]}]}
    with pytest.raises(Forbidden, match="default:user:ben"):
        LocalPeer(runtime, grant).push(body)
    assert facts(runtime) == before


def test_an_erased_learner_does_not_come_back_from_a_device(
        api: Api, runtime: Runtime, laptop: tuple[Api, Runtime]) -> None:
    lapi, lrt = laptop
    api.put_collection("k1", [leaf("c1")])
    api.start("ana", "c1", "k1")
    api.update("ana", "c1", "k1", progress=50, timespent=5)
    sync(lrt, LocalPeer(runtime))
    lapi.update("ana", "c1", "k1", progress=60, timespent=5)  # more, before the erasure
    api.call("DELETE", "/v1/summary/delete/ana?all=true")
    sync(lrt, LocalPeer(runtime))
    for side, rt in ((api, runtime), (lapi, lrt)):
        assert side.summaries("ana") == []
        with rt.read_engine.connect() as conn:
            assert conn.execute(select(sessions)).first() is None
    assert facts(runtime) == facts(lrt)


def test_an_interrupted_sync_run_again_completes_with_nothing_duplicated(
        api: Api, runtime: Runtime, laptop: tuple[Api, Runtime]) -> None:
    lapi, lrt = laptop
    for side in (api, lapi):
        side.put_collection("k1", [leaf(f"c{i}") for i in range(6)])
    for i in range(6):
        for user in ("ana", "ben", "cy"):
            api.start(user, f"c{i}", "k1")
            api.update(user, f"c{i}", "k1", progress=30, timespent=2)
            lapi.start(user, f"c{i}", "k1")
            lapi.update(user, f"c{i}", "k1", progress=60, timespent=3)
    interrupted = 0
    for _ in range(20):  # each run: hello and two calls, then the connection drops
        try:
            sync(lrt, Unreliable(LocalPeer(runtime), drop_after=3), limit=7)
            break
        except SyncError:
            interrupted += 1
    assert interrupted >= 3  # 36 sessions move 7 facts at a time
    sync(lrt, LocalPeer(runtime), limit=7)
    assert facts(runtime) == facts(lrt)
    for side in (api, lapi):
        assert seconds(side, "ben", "c3", "k1") == pytest.approx(5)
    for rt in (runtime, lrt):
        with rt.read_engine.connect() as conn:
            assert len(conn.execute(select(sessions)).all()) == 36
            assert not verify(conn, rt.ctx.mode).problems


def test_different_context_modes_are_refused_saying_what_differs(
        runtime: Runtime, tmp_path: Path, settings: Settings) -> None:
    other = bootstrap(settings.model_copy(update={
        "database_url": f"sqlite:///{tmp_path / 'other.db'}", "context_mode": "content"}))
    try:
        with pytest.raises(Exception, match=r"context modes differ.*strict.*content"):
            sync(other, LocalPeer(runtime))
    finally:
        other.close()


def _push_one(runtime: Runtime, table: str, row: dict[str, Any],
              grant: Grant | None = None) -> dict[str, Any]:
    return LocalPeer(runtime, grant).push({"facts": [{"table": table, "columns": list(row),
                                                      "rows": [list(row.values())]}]})


@pytest.mark.parametrize(("change", "error", "where"), [
    ({"time_spent": -1e9}, InvalidInput, "time_spent"),
    ({"progress": 5.0}, InvalidInput, "progress"),
    ({"user_id": "", "partition": "default:user:"}, InvalidInput, "user_id"),
    ({"counter": 0}, InvalidInput, "counter"),
    ({"content_id": "another"}, Conflict, "sessions"),  # a stored session's id, reused
], ids=["negative time", "progress above 1", "empty user", "counter 0", "same id"])
def test_pushed_facts_keep_the_rules_of_the_write_routes(
        api: Api, runtime: Runtime, change: dict[str, Any], error: type[Exception],
        where: str) -> None:
    api.start("ana", "c1")
    api.update("ana", "c1", progress=50, timespent=5)
    before = facts(runtime)
    with runtime.read_engine.connect() as conn:
        row = dict(conn.execute(select(sessions)).mappings().one())
    with pytest.raises(error, match=where):
        _push_one(runtime, "sessions", {**row, "counter": row["counter"] + 100, **change})
    assert facts(runtime) == before


def test_tombstones_are_checked_and_grants_never_cross_datasets(
        api: Api, runtime: Runtime) -> None:
    api.start("ana", "c1")
    before = facts(runtime)
    tomb = {"dataset": "default", "partition": "default:shared", "kind": "erasure",
            "record_id": "*", "instance_id": "zz", "counter": 12, "updated_at": 1}
    with pytest.raises(InvalidInput, match="partition"):
        _push_one(runtime, "tombstones", tomb)
    with pytest.raises(InvalidInput, match="kind"):
        _push_one(runtime, "tombstones", {**tomb, "kind": "summaries"})
    assert facts(runtime) == before
    # A device token naming another dataset's partition gets nothing of it.
    foreign = Grant("other", frozenset({"default:user:ana"}))
    with pytest.raises(Forbidden):
        LocalPeer(runtime, foreign).pull({"partitions": ["default:user:ana"]})


def test_large_chunks_are_stored_in_bulk_and_folded(
        api: Api, runtime: Runtime, laptop: tuple[Api, Runtime]) -> None:
    """Chunks of hundreds of facts take the bulk path (COPY on PostgreSQL), including
    rows that replace stored ones."""
    lapi, lrt = laptop
    contents = [f"c{i}" for i in range(40)]
    for user in ("ana", "ben", "cy"):
        for content in contents:
            lapi.start(user, content)
            lapi.update(user, content, progress=30, timespent=4)
    first = sync(lrt, LocalPeer(runtime), limit=1000)
    assert first.pushed >= 120
    for user in ("ana", "ben"):  # the same sessions, grown: their new versions replace
        for content in contents:
            lapi.update(user, content, progress=90, timespent=6)
    again = sync(lrt, LocalPeer(runtime), limit=1000)
    assert again.pushed >= 80
    assert facts(runtime) == facts(lrt)
    assert seconds(api, "ana", "c7", None) == seconds(lapi, "ana", "c7", None) == 10
    assert seconds(api, "cy", "c7", None) == 4
    with runtime.read_engine.connect() as conn:
        assert len(conn.execute(select(sessions)).all()) == 120
        assert not verify(conn, runtime.ctx.mode).problems


def test_a_view_after_an_erasure_in_the_same_millisecond_survives_everywhere(
        api: Api, runtime: Runtime, laptop: tuple[Api, Runtime]) -> None:
    """Found by the property test: deletion order on the erasing instance is its counter,
    not the clock."""
    lapi, lrt = laptop
    lapi.start("ana", "c1")
    lapi.update("ana", "c1", progress=20, timespent=3)
    lrt.writer.clock = lambda: 1_800_000_000_000  # every write in the same millisecond
    lapi.call("DELETE", "/v1/summary/delete/ana?all=true")
    lapi.start("ana", "c1")
    lapi.update("ana", "c1", progress=50, timespent=8)
    sync(lrt, LocalPeer(runtime))
    assert facts(runtime) == facts(lrt)
    for side in (api, lapi):
        assert seconds(side, "ana", "c1", None) == 8


def test_postgresql_sends_no_counter_above_an_open_transaction(
        pg_url_factory: Any, tmp_path: Path) -> None:
    """Concurrent writers commit counters out of order; a peer is sent this instance's
    facts only up to the lowest counter an open transaction holds, so none is skipped."""
    settings = Settings(database_url=pg_url_factory(), jwt_secret="s" * 40,
                        exports_dir=str(tmp_path / "exports"),
                        _env_file=None)  # type: ignore[call-arg]
    rt = bootstrap(settings)
    rt.start()
    try:
        with TestClient(create_app(rt.settings, rt)) as client:
            api = Api(client, mint(rt.secret, "admin", ["admin"]), rt.secret)
            api.start("ana", "c1")
            me, ana = rt.ctx.instance_id, ["default:user:ana"]
            with rt.engine.connect() as conn:
                open_txn = conn.begin()
                taken = list(BatchUnitOfWork(conn, me, 0).allocate(2))  # not committed
                api.update("ana", "c1", progress=50, timespent=3)  # commits counters above
                with rt.read_engine.connect() as reader:
                    full = held_vectors(reader, ana)["default:user:ana"][me]
                    sent = sendable_vectors(reader, me, ana)["default:user:ana"][me]
                assert sent == taken[0] - 1 < full
                open_txn.rollback()
            with rt.read_engine.connect() as reader:
                assert sendable_vectors(reader, me, ana) == held_vectors(reader, ana)
    finally:
        rt.close()


def test_taking_counters_releases_the_gate_when_it_fails(pg_url_factory: Any) -> None:
    """Counters are taken in one call that holds the gate (a session lock: a rollback does
    not release it) only while it runs: a failure inside it must release the gate, or
    every later sync would wait on it forever."""
    import psycopg

    from learnlog.store import migrate
    from learnlog.store.db import make_engine
    from learnlog.store.sync import GATE, TAKEN

    url = pg_url_factory()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    held_gate = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                 "AND pid = pg_backend_pid() AND classid::bigint = %s AND objid::bigint = %s")
    gate = (GATE >> 32, GATE & 0xFFFFFFFF)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        taken = [r[0] for r in conn.execute(
            "SELECT learnlog_take_counters(3, %s, %s)", (GATE, TAKEN)).fetchall()]
        assert len(taken) == 3 and taken == sorted(taken)
        assert conn.execute(held_gate, gate).fetchone() == (0,)
        conn.rollback()
        conn.execute("ALTER SEQUENCE fact_counter RENAME TO fact_counter_gone")
        # conn.transaction(): a savepoint, which the failure rolls back to
        with pytest.raises(psycopg.errors.UndefinedTable), conn.transaction():
            conn.execute("SELECT learnlog_take_counters(3, %s, %s)", (GATE, TAKEN))
        assert conn.execute(held_gate, gate).fetchone() == (0,)
        conn.rollback()


def test_new_facts_are_copied_at_once_and_a_stored_key_writes_nothing(
        runtime: Runtime) -> None:
    """The bulk path for facts never seen: one COPY on PostgreSQL when no key is stored;
    when one is, nothing of the batch is written and the transaction goes on (the caller
    then looks the keys up and joins). SQLite always takes the lookup path."""
    base = {"dataset": "default", "user_id": "ana", "collection_key": "c1",
            "context_key": "c1", "content_id": "c1", "started_at": 1_000,
            "ended_at": 2_000, "progress": 0.5, "time_spent": 1.0, "completed_at": None,
            "repeat": False, "closed": True, "progress_details": None,
            "extra_fields": None, "partition": "default:user:ana", "instance_id": "i1",
            "updated_at": 2_000, "kind": "video", "mastery_level": None}
    first = [{**base, "session_id": f"s{i:03d}", "counter": i + 1} for i in range(40)]
    second = [{**base, "session_id": f"t{i:03d}", "counter": 100 + i} for i in range(40)]
    with runtime.engine.begin() as conn:
        fast = FastSql(conn)
        copied = fast.insert_new(sessions, first)
        again = fast.insert_new(sessions, [*second, first[0]])
        held = sorted(conn.execute(select(sessions.c.session_id)).scalars())
    if runtime.engine.dialect.name == "postgresql":
        assert (copied, again) == (True, False)
        assert held == [r["session_id"] for r in first]
    else:
        assert (copied, again, held) == (False, False, [])


def test_a_stream_longer_than_a_chunk_moves_whole_in_one_sync(
        api: Api, runtime: Runtime, laptop: tuple[Api, Runtime]) -> None:
    """Chunks of one fact: each side sends all three of a learner's sessions in one run,
    both ways (a chunk that read exactly its limit once ended the stream there)."""
    lapi, lrt = laptop
    for side, user in ((api, "ana"), (lapi, "ben")):
        for _ in range(3):
            side.start(user, "c1")
            side.update(user, "c1", progress=10, timespent=1)
    report = sync(lrt, LocalPeer(runtime), limit=1)
    assert (report.pulled, report.pushed) == (3, 3)
    assert facts(runtime)["sessions"] == facts(lrt)["sessions"]
    assert len(facts(runtime)["sessions"]) == 6


def test_a_course_structure_that_arrives_by_sync_gives_the_course_its_units(
        api: Api, runtime: Runtime, laptop: tuple[Api, Runtime]) -> None:
    """A course collection registered on the laptop becomes the course's units on the
    server once synced (its outbox imports them, as for one registered there)."""
    lapi, lrt = laptop
    vertical = "block-v1:LearnX+T1+2025+type@vertical+block@u1"
    lapi.put_collection("course-v1:LearnX+T1+2025", [
        unit("block-v1:LearnX+T1+2025+type@sequential+block@s1", unit(vertical, leaf("c1")))])
    sync(lrt, LocalPeer(runtime))
    deadline = time.monotonic() + 20
    found: list[Any] = []
    while time.monotonic() < deadline and not found:
        with runtime.read_engine.connect() as conn:
            found = list(conn.execute(select(course_units.c.unit_id, course_units.c.sequential,
                                             course_units.c.position)))
        time.sleep(0.1)
    assert found == [(vertical, "s1", 1)]
