"""Read-after-write with and without the Redis cache, and Redis going away mid-test.

The cache may make reads cheaper but never changes an answer: every test compares what
the API says with Redis on, off, stopped, frozen and back. The last ones stage, one step at
a time, the races decision 0016 closes: a process that cannot reach Redis, a back-fill or a
write-through that arrives late, a Redis that restarted empty in between.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.domain.keys import SummaryKey, resolve_key
from learnlog.service import reads
from learnlog.settings import Settings
from learnlog.store.cache import Lookup, StatusCache
from learnlog.store.schema import summaries
from tests.servers import RedisServer, free_port
from tests.support import Api


def _api(settings: Settings) -> Iterator[tuple[Api, Runtime]]:
    rt = bootstrap(settings)
    rt.start()
    try:
        with TestClient(create_app(settings, rt)) as client:
            yield Api(client, mint(rt.secret, "admin", ["admin"]), rt.secret), rt
    finally:
        rt.close()


@pytest.fixture(params=["no-cache", "redis"])
def cached(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[Api, Runtime]]:
    if request.param == "redis":
        settings = settings.model_copy(update={
            "redis_url": request.getfixturevalue("redis_url"),
            "redis_prefix": request.getfixturevalue("redis_prefix")})
    yield from _api(settings)


def test_every_write_is_visible_to_the_next_read(cached: tuple[Api, Runtime]) -> None:
    api, rt = cached
    api.start("u1", "c1", "k", "x")
    for step, percent in enumerate((10, 35, 35, 80), start=1):
        api.update("u1", "c1", "k", "x", timespent=5, progress=percent)
        row = api.one("u1", "c1", "k", "x")
        assert (row["progress"], row["timeSpent"], row["status"]) == (percent, 5.0 * step, 1)
    api.end("u1", "c1", "k", "x")
    assert api.one("u1", "c1", "k", "x")["status"] == 2
    assert api.one("u1", "c2", "k", "x")["status"] == 0  # never started
    api.start("u1", "c2", "k", "x")
    assert api.one("u1", "c2", "k", "x")["status"] == 1  # an absent entry is not stale
    if rt.cache is not None:
        assert rt.cache.hits > 0


def test_two_databases_sharing_a_redis_do_not_share_answers(
        settings: Settings, redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    shared = {"redis_url": redis_url, "redis_prefix": redis_prefix}
    first = settings.model_copy(update=shared)
    second = settings.model_copy(update={
        **shared, "database_url": f"sqlite:///{tmp_path / 'second.db'}"})
    for api, _ in _api(first):
        api.start("u9", "c1", "k", "x")
        api.end("u9", "c1", "k", "x")
        assert api.one("u9", "c1", "k", "x")["status"] == 2
    for api, _ in _api(second):
        assert api.one("u9", "c1", "k", "x")["status"] == 0


def test_erasure_is_visible_to_the_next_read(cached: tuple[Api, Runtime]) -> None:
    api, _ = cached
    api.start("u2", "c1", "k", "x")
    api.end("u2", "c1", "k", "x")
    assert api.one("u2", "c1", "k", "x")["status"] == 2
    api.call("DELETE", "/v1/summary/delete/u2?all=true")
    assert api.one("u2", "c1", "k", "x")["status"] == 0


@pytest.fixture
def own(own_redis: RedisServer, settings: Settings) -> Iterator[tuple[Api, Runtime, RedisServer]]:
    settings = settings.model_copy(update={"redis_url": own_redis.url,
                                           "redis_retry_seconds": 0.0})
    for api, rt in _api(settings):
        yield api, rt, own_redis


def test_stopping_redis_changes_no_answer_and_fails_no_request(
        own: tuple[Api, Runtime, RedisServer]) -> None:
    api, rt, redis_server = own
    api.start("u3", "c1", "k", "x")
    api.update("u3", "c1", "k", "x", timespent=10, progress=20)
    assert api.one("u3", "c1", "k", "x")["progress"] == 20  # served and cached
    redis_server.kill()
    api.update("u3", "c1", "k", "x", timespent=10, progress=50)
    assert api.one("u3", "c1", "k", "x")["progress"] == 50
    redis_server.start()  # comes back empty
    api.update("u3", "c1", "k", "x", timespent=10, progress=70)
    row = api.one("u3", "c1", "k", "x")
    assert (row["progress"], row["timeSpent"]) == (70, 30.0)
    assert rt.cache is not None and rt.cache.errors > 0


def test_a_frozen_redis_never_serves_a_stale_answer(
        own: tuple[Api, Runtime, RedisServer]) -> None:
    """Redis that stops answering but keeps its data must not serve what it missed."""
    api, rt, redis_server = own
    api.start("u4", "c1", "k", "x")
    api.update("u4", "c1", "k", "x", progress=20)
    assert api.one("u4", "c1", "k", "x")["progress"] == 20  # cached at 20
    pid = redis_server._proc.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGSTOP)
    try:
        api.update("u4", "c1", "k", "x", progress=90)  # the write-through times out
    finally:
        os.kill(pid, signal.SIGCONT)
    assert api.one("u4", "c1", "k", "x")["progress"] == 90
    assert rt.cache is not None and rt.cache.errors > 0


def _checkouts(rt: Runtime) -> list[int]:
    """Counts read-pool checkouts and the most connections the read pool ever held."""
    from sqlalchemy import event

    seen = [0, 0]

    @event.listens_for(rt.read_engine, "checkout")
    def _checkout(*_: object) -> None:
        seen[0] += 1
        seen[1] = max(seen[1], rt.read_engine.pool.checkedout())

    return seen


def test_a_cached_read_takes_no_database_connection(
        settings: Settings, redis_url: str, redis_prefix: str) -> None:
    for api, rt in _api(settings.model_copy(update={"redis_url": redis_url,
                                                    "redis_prefix": redis_prefix})):
        api.start("u3", "c1", "k", "x")
        api.update("u3", "c1", "k", "x", timespent=5, progress=40)
        seen = _checkouts(rt)
        for _ in range(3):
            assert api.one("u3", "c1", "k", "x")["progress"] == 40
        assert seen[0] == 0  # all three answered from Redis, the database untouched


def test_concurrent_reads_never_open_more_connections_than_the_pool(settings: Settings) -> None:
    import concurrent.futures

    for api, rt in _api(settings.model_copy(update={"db_pool_size": 2})):
        api.start("u4", "c1", "k", "x")
        seen = _checkouts(rt)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            rows = list(pool.map(lambda _, api=api: api.one("u4", "c1", "k", "x"), range(64)))
        assert all(row["status"] == 1 for row in rows)
        if rt.read_engine.dialect.name == "sqlite":
            # SQLite reads run on the event loop's own connection, held once for all.
            assert seen[0] <= 1
        else:
            # PostgreSQL reads run on the event loop's own connections: at most the pool's
            # size of them, none taken from the blocking pool.
            assert rt.readers is not None and 1 <= rt.readers.connections <= 2
            assert seen[0] == 0
        assert seen[1] <= 2  # reads waited for a pooled connection instead of overflowing


# -- the epoch rules (decision 0016) ------------------------------------------------------


def _key(rt: Runtime, user: str, content: str = "c1") -> SummaryKey:
    return resolve_key(rt.ctx.mode, dataset="default", user_id=user, content_id=content,
                       collection_id="k", context_id="x")


def _row(rt: Runtime, key: SummaryKey) -> tuple[int, dict[str, Any]]:
    """A summary's revision and read fields, as a back-fill or a write-through carries them."""
    with rt.read_engine.connect() as conn:
        fields = reads.view_fields(conn, None, [key])[key]
        rev = conn.execute(select(summaries.c.rev).where(
            summaries.c.dataset == key.dataset, summaries.c.user_id == key.user_id,
            summaries.c.collection_key == key.collection_key,
            summaries.c.context_key == key.context_key,
            summaries.c.content_id == key.content_id)).scalar_one()
    return int(rev), fields


def _missed(rt: Runtime, redis_url: str, key: SummaryKey) -> Lookup:
    """A lookup of `key` that misses (its field dropped from Redis, as if it had expired)."""
    assert rt.cache is not None
    with redis.Redis.from_url(redis_url) as client:
        client.hdel(rt.cache.hash_key(key.scope), key.content_id)
    lookup = rt.cache.get_many([key])
    assert lookup.found is None and lookup.seen is not None
    return lookup


@pytest.fixture
def cached_only(settings: Settings, redis_url: str, redis_prefix: str
                ) -> Iterator[tuple[Api, Runtime]]:
    yield from _api(settings.model_copy(update={"redis_url": redis_url,
                                                "redis_prefix": redis_prefix}))


def test_a_write_no_process_could_put_in_redis_is_not_served_by_another(
        own_redis: RedisServer, settings: Settings) -> None:
    """Two processes of one database; B cannot reach Redis (a partition, a freeze), A can
    and holds the learner's map. What A answers after B's update was acknowledged is B's
    update, although nothing told Redis of it."""
    reachable = settings.model_copy(update={"redis_url": own_redis.url})
    cut_off = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    for a, rt_a in _api(reachable):
        for b, rt_b in _api(cut_off):
            assert rt_a.cache is not None and rt_b.cache is not None
            a.start("u6", "c1", "k", "x")
            a.update("u6", "c1", "k", "x", progress=20)
            assert a.one("u6", "c1", "k", "x")["progress"] == 20
            hits = rt_a.cache.hits
            assert a.one("u6", "c1", "k", "x")["progress"] == 20
            assert rt_a.cache.hits == hits + 1  # served by Redis
            started = time.monotonic()
            b.update("u6", "c1", "k", "x", progress=60)  # its write-through fails
            assert rt_b.cache.errors > 0
            assert time.monotonic() - started < 10  # it waited out A's lease, no longer
            assert a.one("u6", "c1", "k", "x")["progress"] == 60
            assert b.one("u6", "c1", "k", "x")["progress"] == 60


def test_a_back_fill_read_before_an_erasure_is_not_stored_after_it(
        own: tuple[Api, Runtime, RedisServer]) -> None:
    api, rt, redis_server = own
    assert rt.cache is not None
    api.start("u7", "c1", "k", "x")
    api.update("u7", "c1", "k", "x", progress=30)
    key = _key(rt, "u7")
    lookup = _missed(rt, redis_server.url, key)
    with rt.read_engine.connect() as conn:
        ticket = rt.cache.ticket(conn, lookup)  # the epoch first, then the rows
    rev, fields = _row(rt, key)
    assert ticket is not None and fields["status"] == 1
    api.call("DELETE", "/v1/summary/delete/u7?all=true")
    rt.cache.backfill(ticket, [(key, rev, fields)])  # arrives after the erasure's write
    assert api.one("u7", "c1", "k", "x")["status"] == 0
    assert api.one("u7", "c1", "k", "x")["status"] == 0


def test_a_back_fill_read_before_redis_restarted_is_not_stored_after_it(
        own: tuple[Api, Runtime, RedisServer]) -> None:
    api, rt, redis_server = own
    assert rt.cache is not None
    api.start("u8", "c1", "k", "x")
    api.update("u8", "c1", "k", "x", progress=20)
    key = _key(rt, "u8")
    lookup = _missed(rt, redis_server.url, key)
    with rt.read_engine.connect() as conn:
        ticket = rt.cache.ticket(conn, lookup)
    rev, fields = _row(rt, key)
    assert ticket is not None
    api.update("u8", "c1", "k", "x", progress=70)  # written through…
    redis_server.kill()
    redis_server.start()  # …and lost
    rt.cache.backfill(ticket, [(key, rev, fields)])
    for _ in range(3):  # a new epoch, then a back-fill under it, then a hit
        assert api.one("u8", "c1", "k", "x")["progress"] == 70
    with redis.Redis.from_url(redis_server.url) as client:
        held = client.hget(rt.cache.hash_key(key.scope), key.content_id)
    assert held is not None and not held.startswith(f"{rev}|".encode())


def test_a_late_write_through_from_before_an_epoch_is_never_served(
        own: tuple[Api, Runtime, RedisServer]) -> None:
    """A write-through that lands after Redis lost a newer one (its process was slow
    between commit and Redis) is older than the epoch's floor: kept, never served."""
    api, rt, redis_server = own
    assert rt.cache is not None
    api.start("u9", "c1", "k", "x")
    api.update("u9", "c1", "k", "x", progress=20)
    key = _key(rt, "u9")
    late = _row(rt, key)
    api.update("u9", "c1", "k", "x", progress=50)
    redis_server.kill()
    redis_server.start()
    assert api.one("u9", "c1", "k", "x")["progress"] == 50  # Redis gets a new epoch
    rt.cache.write_through([(key, *late)])
    hits = rt.cache.hits
    for _ in range(3):
        assert api.one("u9", "c1", "k", "x")["progress"] == 50
    assert rt.cache.hits > hits


def test_a_late_write_through_after_an_erasure_is_never_served(
        cached_only: tuple[Api, Runtime]) -> None:
    api, rt = cached_only
    assert rt.cache is not None
    api.start("u10", "c1", "k", "x")
    api.update("u10", "c1", "k", "x", progress=40)
    key = _key(rt, "u10")
    late = _row(rt, key)
    api.call("DELETE", "/v1/summary/delete/u10?all=true")
    rt.cache.write_through([(key, *late)])  # from before the erasure, landing after it
    for _ in range(2):
        assert api.one("u10", "c1", "k", "x")["status"] == 0
    api.start("u10", "c1", "k", "x")  # a new start is read from the database, then cached
    for _ in range(2):
        assert api.one("u10", "c1", "k", "x")["status"] == 1


def test_redis_serves_only_while_its_lease_runs(
        cached_only: tuple[Api, Runtime], redis_url: str, redis_prefix: str) -> None:
    """An epoch is served until the lease of the last database read that vouched for it
    runs out; a miss then reads the database's epoch again and renews it."""
    _, rt = cached_only
    short = StatusCache(redis_url, f"{redis_prefix}lease-test-{rt.ctx.instance_id}:",
                        rt.engine, lease=0.5)
    try:
        key = SummaryKey("default", "u11", "k", "x", "c1")
        fields = {"status": 1, "progress": 0.5}
        short.write_through([(key, 1, fields)])  # no epoch in Redis yet: starts one
        short.write_through([(key, 10**12, fields)])  # above the new epoch's floor
        assert short.get_many([key]).found == {key: fields}
        time.sleep(0.6)
        lookup = short.get_many([key])
        assert lookup.found is None  # the lease ran out
        with rt.read_engine.connect() as conn:
            ticket = short.ticket(conn, lookup)
        assert ticket is not None
        short.backfill(ticket, [(key, 10**12, fields)])
        assert short.get_many([key]).found == {key: fields}
    finally:
        short.close()


def test_the_asyncio_read_answers_like_the_blocking_one(
        cached_only: tuple[Api, Runtime]) -> None:
    api, rt = cached_only
    cache = rt.cache
    assert cache is not None
    api.start("u12", "c1", "k", "x")
    api.update("u12", "c1", "k", "x", progress=40)
    key, other = _key(rt, "u12"), _key(rt, "u12", "c2")
    blocking = cache.get_many([key])
    assert blocking.found is not None

    async def reads_on_the_loop() -> tuple[Lookup, Lookup]:
        try:
            return (await cache.get_many_async([key]),
                    await cache.get_many_async([key, other]))
        finally:
            await cache.aclose()

    found, missing = asyncio.run(reads_on_the_loop())
    assert found.found == blocking.found
    assert missing.found is None and missing.seen is not None  # c2 is not cached yet
    with rt.read_engine.connect() as conn:  # the asyncio miss back-fills like any other
        fields = reads.view_fields(conn, cache, [key, other], missing)
    assert fields[other] == {}
    assert cache.get_many([key, other]).found == fields


def test_the_asyncio_read_of_a_redis_that_is_gone_is_a_miss(settings: Settings) -> None:
    async def read(cache: StatusCache, key: SummaryKey) -> Lookup:
        try:
            return await cache.get_many_async([key])
        finally:
            await cache.aclose()

    for _, rt in _api(settings):
        cache = StatusCache(f"redis://127.0.0.1:{free_port()}/0", "gone:", rt.engine)
        try:
            lookup = asyncio.run(read(cache, _key(rt, "u13")))
            assert lookup.found is None and lookup.seen is None
            assert cache.errors == 1
            assert asyncio.run(read(cache, _key(rt, "u13"))).seen is None  # left alone
            assert cache.errors == 1
        finally:
            cache.close()
