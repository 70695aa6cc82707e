"""PostgreSQL: the hot reads answered from a worker's memory stay true (store/readcache.py).

Two runtimes on one database stand for two workers (or hosts): each has its own event
loop, its own listening connection and its own memory. Every test checks that memory was
really used (hits counted), so a read that is right only because it went to the database
does not pass for a right cached one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.settings import Settings
from learnlog.store.aio import AsyncReaders, conninfo
from learnlog.store.fastsql import Fetch, Plan
from learnlog.store.readcache import ReadCache, learner_token
from tests.support import Api, summary_list_follows_writes, two_workers

USER, COURSE = "learner-1", "course-1"


@pytest.fixture
def pg_database(pg_url_factory: Callable[[], str]) -> str:
    return pg_url_factory()


def _settings(url: str, tmp: Any) -> Settings:
    return Settings(database_url=url, jwt_secret="test-secret-" + "x" * 32,
                    exports_dir=str(tmp / "exports"), analytics_dir=str(tmp / "analytics"),
                    _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def workers(pg_database: str, tmp_path: Any) -> Iterator[tuple[Api, Api, Runtime, Runtime]]:
    """Two runtimes on one PostgreSQL database, each behind its own in-process client."""
    with two_workers(_settings(pg_database, tmp_path)) as found:
        yield found


def _warm(api: Api, rt: Runtime, read: Callable[[], Any]) -> None:
    """Read until this worker listens and answers from memory (once more than before)."""
    before = rt.answers.counts["hits"] if rt.answers is not None else 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        read()
        if rt.answers is not None and rt.answers.counts["hits"] > before:
            return
        time.sleep(0.02)
    raise AssertionError(f"no read answered from memory: {rt.answers and rt.answers.counts}")


def test_a_read_on_one_worker_sees_every_write_acknowledged_by_another(
        workers: tuple[Api, Api, Runtime, Runtime]) -> None:
    a, b, _, rt_b = workers
    a.start(USER, "do_1", COURSE)
    _warm(b, rt_b, lambda: b.read(USER, ["do_1", "do_2"], COURSE))
    hits = rt_b.answers.counts["hits"] if rt_b.answers else 0
    for step in range(1, 40):
        a.update(USER, "do_1", COURSE, progress=step, timespent=1)
        # No wait: the write was acknowledged, so the other worker's next read shows it.
        assert b.one(USER, "do_1", COURSE)["progress"] == step
        assert b.one(USER, "do_1", COURSE)["progress"] == step  # the second from memory
    assert rt_b.answers is not None and rt_b.answers.counts["hits"] >= hits + 39


def test_summary_list_hears_enrolments_collections_and_summaries(
        workers: tuple[Api, Api, Runtime, Runtime]) -> None:
    a, b, _, rt_b = workers
    summary_list_follows_writes(a, b, lambda: _warm(b, rt_b, lambda: b.summaries(USER)))
    assert rt_b.answers is not None and rt_b.answers.counts["hits"] >= 2


def test_a_change_written_outside_learnlog_is_heard(
        workers: tuple[Api, Api, Runtime, Runtime], pg_database: str) -> None:
    """The triggers, not learnlog's code, announce a change: any writer is heard."""
    a, b, _, rt_b = workers
    a.start(USER, "do_1", COURSE)
    a.update(USER, "do_1", COURSE, progress=10, timespent=1)
    _warm(b, rt_b, lambda: b.read(USER, ["do_1"], COURSE))
    with psycopg.connect(conninfo(pg_database), autocommit=True) as conn:
        conn.execute("UPDATE summaries SET progress = 0.5 WHERE user_id = %s", (USER,))
    assert b.one(USER, "do_1", COURSE)["progress"] == 50
    with psycopg.connect(conninfo(pg_database), autocommit=True) as conn:
        conn.execute("DELETE FROM summaries WHERE user_id = %s", (USER,))
    assert b.one(USER, "do_1", COURSE)["status"] == 0


def test_without_its_listener_a_worker_reads_the_database_then_listens_again(
        workers: tuple[Api, Api, Runtime, Runtime], pg_database: str) -> None:
    a, b, _, rt_b = workers
    a.start(USER, "do_1", COURSE)
    a.update(USER, "do_1", COURSE, progress=10, timespent=1)
    _warm(b, rt_b, lambda: b.read(USER, ["do_1"], COURSE))
    assert rt_b.answers is not None
    with psycopg.connect(conninfo(pg_database), autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%%'").fetchall()
    assert ended, "no listening connection found"
    for step in range(20, 30):
        a.update(USER, "do_1", COURSE, progress=step, timespent=1)
        assert b.one(USER, "do_1", COURSE)["progress"] == step
    assert rt_b.answers.counts["uncached"] > 0  # while it was gone
    _warm(b, rt_b, lambda: b.read(USER, ["do_1"], COURSE))  # listening again
    assert b.one(USER, "do_1", COURSE)["progress"] == 29


def _progress_plan(dataset: str, user_id: str) -> Plan[float | None]:
    found = yield Fetch("SELECT progress FROM summaries WHERE dataset = %s AND user_id = %s",
                        (dataset, user_id))
    return None if not found else float(found[0][0])


def _learner_with_progress(pg_database: str, tmp_path: Any) -> str:
    """A database with one summary of USER at progress 0.1; its libpq URL."""
    rt = bootstrap(_settings(pg_database, tmp_path))
    rt.start()
    with TestClient(create_app(rt.settings, rt)) as client:
        api = Api(client, mint(rt.secret, "admin", ["admin"]))
        api.start(USER, "do_1", COURSE)
        api.update(USER, "do_1", COURSE, progress=10, timespent=1)
    rt.close()
    return conninfo(pg_database)


def _set_progress(url: str, progress: float) -> None:
    """A change committed by another client (blocking: this loop does not run meanwhile)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE summaries SET progress = %s WHERE user_id = %s", (progress, USER))


async def _read(cache: ReadCache, run: Callable[..., Any]) -> float | None:
    encoded = await cache.answer(run, learner_token("default", USER), "p",
                                 lambda: _progress_plan("default", USER),
                                 lambda v: repr(v).encode())
    return None if encoded == b"None" else float(encoded)


async def _listening(cache: ReadCache, readers: AsyncReaders) -> float | None:
    """The first read starts the listener (and goes to the database); wait for it."""
    first = await _read(cache, readers.run)
    while not cache._ready:
        await asyncio.sleep(0.01)
    return first


def test_a_change_committed_just_before_a_read_is_never_missed(
        pg_database: str, tmp_path: Any) -> None:
    """The change commits while this loop is blocked, so its notice cannot have been
    handled when the read starts: only the barrier makes the read wait for it."""
    url = _learner_with_progress(pg_database, tmp_path)

    async def scenario() -> tuple[list[float | None], dict[str, int]]:
        readers, cache = AsyncReaders(pg_database, 4), ReadCache(url, 1 << 20)
        try:
            seen = [await _listening(cache, readers), await _read(cache, readers.run),
                    await _read(cache, readers.run)]
            for progress in (0.3, 0.5, 0.7):
                _set_progress(url, progress)
                seen += [await _read(cache, readers.run), await _read(cache, readers.run)]
            return seen, dict(cache.counts)
        finally:
            cache.close()
            readers.close()

    seen, counts = asyncio.run(scenario())
    assert seen == [0.1, 0.1, 0.1, 0.3, 0.3, 0.5, 0.5, 0.7, 0.7]
    assert counts["hits"] == 4


def test_an_answer_overtaken_by_a_change_while_it_was_read_is_not_kept(
        pg_database: str, tmp_path: Any) -> None:
    """The snapshot of the read is older than a change heard while it ran: keeping it
    would serve that older state after the change was acknowledged."""
    url = _learner_with_progress(pg_database, tmp_path)

    async def scenario() -> tuple[list[float | None], dict[str, int]]:
        readers, cache = AsyncReaders(pg_database, 4), ReadCache(url, 1 << 20)

        async def overtaken(make: Callable[[], Plan[float | None]]) -> float | None:
            """Reads, then a change commits and is heard before the answer is kept."""
            found = await readers.run(make)
            await asyncio.to_thread(_set_progress, url, 0.9)
            await asyncio.sleep(0.3)
            return found

        try:
            seen = [await _listening(cache, readers), await _read(cache, overtaken),
                    await _read(cache, readers.run), await _read(cache, readers.run)]
            return seen, dict(cache.counts)
        finally:
            cache.close()
            readers.close()

    seen, counts = asyncio.run(scenario())
    assert seen == [0.1, 0.1, 0.9, 0.9]
    assert counts["dropped"] == 1 and counts["hits"] == 1


def test_memory_is_bounded_first_kept_first_forgotten() -> None:
    cache = ReadCache("postgresql://unused", max_bytes=100)  # nothing here connects
    cache._keep("a", "k", b"x" * 40)
    cache._keep("b", "k", b"x" * 40)
    cache._keep("c", "k", b"x" * 40)
    assert cache.size == (2, 80)
    cache._heard(f"{learner_token('default', 'x')} b")
    assert cache.size == (1, 40)
    cache._heard("*")
    assert cache.size == (0, 0)


def test_a_statement_notifies_each_learner_it_changed_once(
        workers: tuple[Api, Api, Runtime, Runtime], pg_database: str) -> None:
    a, _, _, _ = workers
    for user in (USER, "learner-2"):
        for content in ("do_1", "do_2"):
            a.start(user, content, COURSE)
    with psycopg.connect(conninfo(pg_database), autocommit=True) as listener, \
            psycopg.connect(conninfo(pg_database), autocommit=True) as writer:
        listener.execute("LISTEN learnlog_reads")
        writer.execute("UPDATE summaries SET progress = 0.5")  # four rows, two learners
        writer.execute("DELETE FROM summaries WHERE user_id = %s", (USER,))
        heard = [n.payload for n in listener.notifies(timeout=2, stop_after=2)]
    tokens = {learner_token("default", u) for u in (USER, "learner-2")}
    assert sorted(heard[0].split()) == sorted(tokens)
    assert heard[1] == learner_token("default", USER)
