"""Read-after-write with and without the Redis cache, and Redis going away mid-test.

The cache may make reads cheaper but never changes an answer: every test compares what
the API says with Redis on, off, stopped, frozen and back.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.settings import Settings
from tests.servers import RedisServer
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
