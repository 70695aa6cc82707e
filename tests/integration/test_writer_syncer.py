"""SQLite: a batch is answered only once its WAL is on disk (decision 0019's syncer).

The writer commits with `synchronous=NORMAL` and hands the batch to the syncer, which
fsyncs the WAL and only then answers; these tests hold or break that fsync to see it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from learnlog.bootstrap import Runtime, bootstrap
from learnlog.service.viewer import Keys, StartView, UpdateView
from learnlog.service.writer import Writer
from learnlog.settings import Settings
from learnlog.store.schema import summaries


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 's.db'}",
                                 jwt_secret="syncer-" + "s" * 32, process_outbox=False,
                                 _env_file=None))  # type: ignore[call-arg]
    runtime.start()
    yield runtime
    runtime.close()


def _keys(user: str) -> Keys:
    return Keys("default", user, "video-1", None, None)


def _stored(rt: Runtime, user: str) -> float | None:
    with rt.read_engine.connect() as conn:
        found = conn.execute(select(summaries.c.time_spent).where(
            summaries.c.user_id == user)).scalar_one_or_none()
    return None if found is None else float(found)


def test_an_answer_waits_for_the_fsync_of_its_batch(rt: Runtime) -> None:
    writer = rt.writer
    assert isinstance(writer, Writer) and writer.syncer is not None
    assert writer.syncer.wal.endswith("s.db-wal")
    writer.run_sync(StartView(_keys("a")))
    held, synced = threading.Event(), []
    real = writer.syncer.sync

    def slow_sync(path: str) -> None:
        held.wait(10)
        real(path)
        synced.append(path)

    writer.syncer.sync = slow_sync
    future = writer.submit_future(UpdateView(_keys("a"), 4.0))
    deadline = threading.Event()
    for _ in range(100):  # committed (readers see it) ...
        if _stored(rt, "a") == 4.0:
            break
        deadline.wait(0.02)
    assert _stored(rt, "a") == 4.0
    assert not future.done()  # ... but not acknowledged before the WAL is synced
    held.set()
    assert future.result(timeout=10) == {"video-1": "SUCCESS"}
    assert synced == [writer.syncer.wal]


def test_a_failed_fsync_acknowledges_nothing_it_covered(rt: Runtime) -> None:
    writer = rt.writer
    assert isinstance(writer, Writer) and writer.syncer is not None
    writer.run_sync(StartView(_keys("b")))
    real = writer.syncer.sync

    def broken(path: str) -> None:
        raise OSError(5, "Input/output error")

    writer.syncer.sync = broken
    with pytest.raises(OSError):
        writer.run_sync(UpdateView(_keys("b"), 1.0))
    writer.syncer.sync = real  # the disk is back: writes go on
    assert writer.run_sync(UpdateView(_keys("b"), 2.0)) == {"video-1": "SUCCESS"}


def test_other_users_of_the_write_connection_still_sync_every_commit(rt: Runtime) -> None:
    rt.writer.run_sync(StartView(_keys("c")))
    for _ in range(3):  # every pooled connection the writer may have used
        with rt.engine.connect() as conn:
            level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            assert level == 2  # FULL
