"""The fixtures of tests/servers.py hand out real, working servers."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
import redis

from tests.servers import RedisServer

pytestmark = pytest.mark.integration


def test_pg_url_is_a_real_fresh_database(pg_url: str) -> None:
    assert pg_url.startswith("postgresql://")
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT version(), current_database(), current_setting('server_encoding'),"
            " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            "  WHERE n.nspname = 'public')"
        ).fetchone()
    assert row is not None
    version, dbname, encoding, relations = row
    assert version.startswith("PostgreSQL ")
    assert dbname.startswith("learnlog_t_")
    assert encoding == "UTF8"
    assert relations == 0


def test_pg_url_factory_gives_separate_databases(
    pg_url: str, pg_url_factory: Callable[[], str]
) -> None:
    other = pg_url_factory()
    assert other != pg_url
    with psycopg.connect(other) as conn:
        conn.execute("CREATE TABLE only_here (x int)")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('public.only_here')").fetchone() == (None,)


def test_redis_url_with_prefix(redis_url: str, redis_prefix: str) -> None:
    assert redis_prefix.startswith("learnlog-test-")
    assert redis_prefix.endswith(":")
    key = f"{redis_prefix}probe"
    with redis.Redis.from_url(redis_url) as client:
        assert client.set(key, "hello")
        assert client.get(key) == b"hello"
        assert key.encode() in set(client.scan_iter(match=f"{redis_prefix}*"))


def test_own_redis_can_be_stopped_and_restarted(own_redis: RedisServer) -> None:
    with redis.Redis.from_url(own_redis.url, socket_connect_timeout=2) as client:
        client.set("k", "v")
        assert client.get("k") == b"v"

        own_redis.stop()
        assert not own_redis.running
        with pytest.raises(redis.ConnectionError):
            client.ping()

        own_redis.start()
        assert own_redis.running
        assert client.ping() is True  # the same client reconnects: same port
        assert client.get("k") is None  # no persistence: a restart comes back empty
        client.set("k", "again")
        assert client.get("k") == b"again"

        own_redis.kill()  # a crash rather than a shutdown
        with pytest.raises(redis.ConnectionError):
            client.ping()
