"""SQLite: the hot reads answered from a worker's memory stay true (`NoticeCache`,
migration 0016).

Two runtimes on one SQLite file stand for two workers: each reads on its own connections
and keeps its own memory. Every test checks that memory was really used (hits counted),
so a read that is right only because it went to the database does not pass for a right
cached one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.settings import Settings
from learnlog.store import migrate
from learnlog.store.db import make_engine
from learnlog.store.readcache import NoticeCache
from tests.support import Api, summary_list_follows_writes, two_workers

USER, COURSE = "learner-1", "course-1"


def _settings(path: Path, tmp: Path, **extra: Any) -> Settings:
    return Settings(database_url=f"sqlite:///{path}", jwt_secret="test-secret-" + "x" * 32,
                    exports_dir=str(tmp / "exports"), analytics_dir=str(tmp / "analytics"),
                    _env_file=None, **extra)  # type: ignore[call-arg]


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "learnlog.db"


@pytest.fixture
def workers(db_file: Path, tmp_path: Path) -> Iterator[tuple[Api, Api, Runtime]]:
    """Two runtimes on one SQLite file, each behind its own in-process client."""
    with two_workers(_settings(db_file, tmp_path)) as (a, b, _, rt_b):
        yield a, b, rt_b


def _hits(rt: Runtime) -> int:
    assert rt.noted is not None, "SQLite reads did not go through the notice cache"
    return rt.noted.counts["hits"]


def test_a_read_on_one_worker_sees_every_write_acknowledged_by_another(
        workers: tuple[Api, Api, Runtime]) -> None:
    a, b, rt_b = workers
    a.start(USER, "do_1", COURSE)
    b.read(USER, ["do_1"], COURSE)
    for step in range(1, 30):
        a.update(USER, "do_1", COURSE, progress=step, timespent=1)
        assert b.one(USER, "do_1", COURSE)["progress"] == step
        assert b.one(USER, "do_1", COURSE)["progress"] == step  # the second from memory
    assert _hits(rt_b) >= 29


def test_a_write_forgets_only_its_learner(workers: tuple[Api, Api, Runtime]) -> None:
    a, b, rt_b = workers
    for user in ("u1", "u2"):
        a.start(user, "do_1", COURSE)
        b.one(user, "do_1", COURSE)
    a.update("u1", "do_1", COURSE, progress=40, timespent=1)
    misses = rt_b.noted.counts["misses"] if rt_b.noted else 0
    assert b.one("u2", "do_1", COURSE)["progress"] == 0  # still held
    assert b.one("u1", "do_1", COURSE)["progress"] == 40  # forgotten, read again
    assert rt_b.noted is not None and rt_b.noted.counts["misses"] == misses + 1


def test_summary_list_hears_enrolments_collections_and_summaries(
        workers: tuple[Api, Api, Runtime]) -> None:
    a, b, rt_b = workers

    def warm() -> None:
        b.summaries(USER)
        hits = _hits(rt_b)
        b.summaries(USER)
        assert _hits(rt_b) == hits + 1  # held in memory from now on

    summary_list_follows_writes(a, b, warm)


def test_a_change_written_outside_learnlog_is_seen(
        workers: tuple[Api, Api, Runtime], db_file: Path) -> None:
    """The triggers, not learnlog's code, note a change: any writer is seen."""
    a, b, rt_b = workers
    a.start(USER, "do_1", COURSE)
    a.update(USER, "do_1", COURSE, progress=10, timespent=1)
    b.one(USER, "do_1", COURSE)
    assert b.one(USER, "do_1", COURSE)["progress"] == 10
    hits = _hits(rt_b)
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE summaries SET progress = 0.5 WHERE user_id = ?", (USER,))
    assert b.one(USER, "do_1", COURSE)["progress"] == 50
    with sqlite3.connect(db_file) as conn:
        conn.execute("DELETE FROM summaries WHERE user_id = ?", (USER,))
    assert b.one(USER, "do_1", COURSE)["status"] == 0
    assert _hits(rt_b) == hits  # each of them read again


def test_with_no_memory_reads_go_to_the_database(db_file: Path, tmp_path: Path) -> None:
    rt = bootstrap(_settings(db_file, tmp_path, read_cache_mb=0))
    with TestClient(create_app(rt.settings, rt)) as client:
        rt.start()
        api = Api(client, mint(rt.secret, "admin", ["admin"]), rt.secret)
        api.start(USER, "do_1", COURSE)
        assert api.one(USER, "do_1", COURSE)["status"] == 1
        assert rt.noted is None
    rt.close()


def _notices(db_file: Path) -> sqlite3.Connection:
    engine = make_engine(f"sqlite:///{db_file}")
    migrate.upgrade(engine)
    engine.dispose()
    return sqlite3.connect(db_file, isolation_level=None)


def test_notices_are_pruned_and_a_worker_that_missed_some_forgets_everything(
        db_file: Path) -> None:
    writer = _notices(db_file)
    cache = NoticeCache(lambda: sqlite3.connect(db_file, isolation_level=None), 1 << 20)
    read = iter(range(100))
    assert cache.answer("d\x1fu", "k", lambda: next(read), lambda n: b"%d" % n) == b"0"
    assert cache.answer("d\x1fu", "k", lambda: next(read), lambda n: b"%d" % n) == b"0"
    # Another learner's notices only, but so many that the oldest are pruned before
    # this worker reads them: it cannot know what it missed, so it forgets everything.
    writer.executemany("INSERT INTO read_notices (token) VALUES (?)",
                       [("d\x1fother",)] * 110_000)
    low, high, count = writer.execute(
        "SELECT min(seq), max(seq), count(*) FROM read_notices").fetchone()
    assert (high - low + 1, count) == (100_000, 100_000)  # the newest kept, no holes
    assert cache.answer("d\x1fu", "k", lambda: next(read), lambda n: b"%d" % n) == b"1"
    # Notices read in full: the other learner is forgotten, this one stays held.
    writer.execute("INSERT INTO read_notices (token) VALUES ('d\x1fother')")
    assert cache.answer("d\x1fu", "k", lambda: next(read), lambda n: b"%d" % n) == b"1"
    writer.execute("INSERT INTO read_notices (token) VALUES ('*')")
    assert cache.answer("d\x1fu", "k", lambda: next(read), lambda n: b"%d" % n) == b"2"
    cache.close()
    writer.close()
