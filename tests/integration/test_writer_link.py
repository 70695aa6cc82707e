"""The writer host and its clients (decision 0019), over a real Unix socket and a real
SQLite file: what a server worker hands the host comes back exactly as the writer in the
worker's own process would have answered it, batched, and nothing is answered twice."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from learnlog.bootstrap import Runtime, bootstrap
from learnlog.domain.errors import InvalidInput, Unavailable
from learnlog.service.commands import Command
from learnlog.service.ports import ServiceContext
from learnlog.service.viewer import Keys, StartView, UpdateView
from learnlog.service.writer import Writer
from learnlog.service.writer_link import WriterClient, WriterHost
from learnlog.settings import Settings
from learnlog.store.uow import BatchUnitOfWork


@dataclass(frozen=True, slots=True)
class Broken(Command):
    """A command with a bug: what it raises is not learnlog's, and may not unpickle."""

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> Any:
        raise _Unpicklable("boom", 42)


class _Unpicklable(Exception):
    def __init__(self, message: str, number: int) -> None:  # args differ: no round trip
        super().__init__(f"{message} {number}")


@dataclass
class Hosted:
    runtime: Runtime
    host: WriterHost
    path: str

    def client(self, connect_seconds: float = 2.0) -> WriterClient:
        return WriterClient(self.path, connect_seconds)


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[Hosted]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'host.db'}",
                        jwt_secret="link-secret-" + "z" * 32,
                        _env_file=None)  # type: ignore[call-arg]
    rt = bootstrap(settings)
    assert isinstance(rt.writer, Writer)
    path = str(tmp_path / "writer.sock")
    host = WriterHost(rt.writer, path)
    host.start()
    rt.start(writer_thread=False)
    hosted = Hosted(rt, host, path)
    yield hosted
    if rt.outbox_loop is not None:
        rt.outbox_loop.stop()
        rt.outbox_loop = None
    hosted.host.stop()  # the host serving now (a test may have replaced the first)
    rt.close()


def _keys(user: str) -> Keys:
    return Keys("default", user, "video-1", None, None)


def _time_spent(rt: Runtime, user: str) -> float:
    from sqlalchemy import select

    from learnlog.store.schema import summaries
    with rt.read_engine.connect() as conn:
        return float(conn.execute(select(summaries.c.time_spent).where(
            summaries.c.user_id == user)).scalar_one())


def test_commands_from_many_requests_are_applied_once_each_and_batched(
        hosted: Hosted) -> None:
    client = hosted.client()
    users = [f"u{n:03d}" for n in range(200)]

    async def run() -> list[Any]:
        await asyncio.gather(*(client.submit(StartView(_keys(u))) for u in users))
        # three updates per learner, all in flight at once
        answers = await asyncio.gather(*(client.submit(UpdateView(_keys(u), 2.5, 40.0))
                                         for u in users for _ in range(3)))
        client.stop()
        return answers

    answers = asyncio.run(run())
    assert answers == [{"video-1": "SUCCESS"}] * 600
    assert {_time_spent(hosted.runtime, u) for u in users} == {7.5}
    writer = hosted.runtime.writer
    assert writer.commands == 800  # nothing applied twice, nothing lost
    assert writer.batches < 400  # commands that arrive together share a transaction


def test_a_refusal_arrives_with_its_code_and_field(hosted: Hosted) -> None:
    client = hosted.client()

    async def run() -> None:
        try:
            await client.submit(UpdateView(_keys("never-started"), 1.0, 10.0))
        finally:
            client.stop()

    with pytest.raises(InvalidInput) as refused:
        asyncio.run(run())
    assert refused.value.code == "VIEW_NOT_STARTED"
    assert refused.value.field == "request.contentId"


def test_a_bug_in_a_command_fails_that_request_only(hosted: Hosted) -> None:
    client = hosted.client()

    async def run() -> list[Any]:
        answers = await asyncio.gather(client.submit(StartView(_keys("a"))),
                                       client.submit(Broken()),
                                       client.submit(StartView(_keys("b"))),
                                       return_exceptions=True)
        client.stop()
        return answers

    first, broken, last = asyncio.run(run())
    assert first == {"video-1": "Progress started"} and last == first
    assert isinstance(broken, RuntimeError) and "_Unpicklable: boom 42" in str(broken)


def test_threads_use_the_host_too(hosted: Hosted) -> None:
    client = hosted.client()
    client.run_sync(StartView(_keys("t")))
    results: list[Any] = []

    def update() -> None:
        results.append(client.run_sync(UpdateView(_keys("t"), 1.0)))

    threads = [threading.Thread(target=update) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    futures = client.run_many([UpdateView(_keys("t"), 1.0), UpdateView(_keys("nobody"), 1.0)])
    client.stop()
    assert results == [{"video-1": "SUCCESS"}] * 8
    assert futures[0].result() == {"video-1": "SUCCESS"}
    assert isinstance(futures[1].exception(), InvalidInput)
    assert _time_spent(hosted.runtime, "t") == 9.0


def test_without_a_host_a_request_is_refused_as_unavailable(tmp_path: Path) -> None:
    client = WriterClient(str(tmp_path / "nobody.sock"), connect_seconds=0.3)

    async def run() -> None:
        await client.submit(StartView(_keys("x")))

    with pytest.raises(Unavailable) as refused:
        asyncio.run(run())
    assert refused.value.code == "SERVICE_UNAVAILABLE"
    with pytest.raises(Unavailable):
        client.run_sync(StartView(_keys("x")))


def test_stopping_a_host_twice_closes_nothing_it_no_longer_owns(hosted: Hosted) -> None:
    first = hosted.host
    owned = {first._wake_r, first._wake_w}
    first.stop()
    # the freed descriptor numbers go to the next files opened (here: pipes of ours)
    pipes = [os.pipe() for _ in range(4)]
    mine = [fd for pair in pipes for fd in pair]
    assert owned & set(mine), "the test needs a reused descriptor number"
    again = WriterHost(hosted.runtime.writer, hosted.path)  # type: ignore[arg-type]
    again.start()
    hosted.host = again
    first.stop()  # a second stop of the old host (a teardown, a signal handler)
    for fd in mine:
        os.fstat(fd)  # still open: raises OSError (EBADF) if the old host closed it
        os.close(fd)
    assert hosted.runtime.writer.wake == again._wake  # the serving host still wakes


def test_a_host_that_goes_away_fails_what_is_in_flight_and_a_new_one_is_found(
        hosted: Hosted, tmp_path: Path) -> None:
    client = hosted.client(connect_seconds=1.0)
    rt = hosted.runtime

    async def run() -> tuple[Any, Any]:
        first = await client.submit(StartView(_keys("h")))
        # the host stops (as a killed one would: its connections close)
        await asyncio.to_thread(hosted.host.stop)
        with pytest.raises(Unavailable):
            await asyncio.wait_for(client.submit(UpdateView(_keys("h"), 1.0)), 10)
        # a new host on the same socket: the next request reaches it
        again = WriterHost(rt.writer, hosted.path)  # type: ignore[arg-type]
        again.start()
        hosted.host = again
        second = await asyncio.wait_for(client.submit(UpdateView(_keys("h"), 3.0)), 10)
        client.stop()
        return first, second

    first, second = asyncio.run(run())
    assert first == {"video-1": "Progress started"}
    assert second == {"video-1": "SUCCESS"}
    assert _time_spent(rt, "h") == 3.0
