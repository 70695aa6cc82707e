"""The hot reads' answers kept in the worker, true to the database (PostgreSQL here;
SQLite: `NoticeCache` at the end).

A `view/read` on PostgreSQL costs a round trip and the driver's per-query work (about
170 µs of client CPU and 90 µs of the server's, 2026-12): more than all the rest of the
request. Here a worker keeps the encoded answer of a read plan per learner, and one rule
keeps it true:

* Every statement that changes a learner's summaries or enrolments notifies the
  learner's token on the channel `learnlog_reads` when it commits (triggers of migration
  0015, whatever path wrote); a change to collections notifies `*`. The worker listens
  on a connection of its own and forgets what a notification names.
* Before a read is answered from memory, the worker sends a *barrier* — a notification of
  its own — and waits until it comes back. PostgreSQL delivers notifications in commit
  order, so by then every change committed before the read began has been heard:
  a learner reads its acknowledged write, whichever worker or host took it.
  Reads that arrive while a barrier is out share the next one.
* An answer read from the database is kept only if nothing about its learner was heard
  while it was being read (the write may have committed after the read's snapshot).
* Without a listening connection (not yet, lost, a barrier not back in time) nothing is
  answered from memory or kept: reads go to the database as before, and the memory is
  emptied (notifications may have been missed).

What this module must not do: answer from memory without a barrier sent after the read
began, or keep an answer its learner's notifications could have overtaken.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol, TypeVar

from .fastsql import Fetch, Plan

T = TypeVar("T")
log = logging.getLogger(__name__)

CHANNEL = "learnlog_reads"
EVERYTHING = "*"
BARRIER_PREFIX = "b:"


class Runner(Protocol):
    """Runs a read plan on the database (`AsyncReaders.run`)."""

    def __call__(self, make: Callable[[], Plan[T]], /) -> Awaitable[T]: ...


def learner_token(dataset: str, user_id: str) -> str:
    """The token a change of this learner's records is notified with (migration 0015)."""
    return hashlib.md5(f"{dataset}\x1f{user_id}".encode(), usedforsecurity=False
                       ).hexdigest()[:16]


def _notify(payload: str) -> Plan[None]:
    yield Fetch("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


class AnswerMemory:
    """Encoded answers per learner token and read key, at most `max_bytes` of them (the
    first learner kept is the first forgotten); what keeps them true is the subclass's."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: dict[str, dict[Hashable, bytes]] = {}
        self._bytes = 0
        self._flushes = 0
        self.counts = {"hits": 0, "misses": 0, "kept": 0, "dropped": 0, "uncached": 0}

    def _held(self, learner: str, key: Hashable) -> bytes | None:
        held = self._entries.get(learner)
        found = held.get(key) if held is not None else None
        self.counts["hits" if found is not None else "misses"] += 1
        return found

    def _keep(self, learner: str, key: Hashable, encoded: bytes) -> None:
        held = self._entries.setdefault(learner, {})
        old = held.get(key)
        self._bytes += len(encoded) - (len(old) if old is not None else 0)
        held[key] = encoded
        self.counts["kept"] += 1
        while self._bytes > self._max_bytes and self._entries:
            oldest = next(iter(self._entries))  # first kept, first forgotten
            self._forget(oldest)

    def _forget(self, learner: str) -> None:
        held = self._entries.pop(learner, None)
        if held is not None:
            self._bytes -= sum(map(len, held.values()))

    def _flush(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self._flushes += 1

    @property
    def size(self) -> tuple[int, int]:
        """(learners held, bytes held)."""
        return len(self._entries), self._bytes


class ReadCache(AnswerMemory):
    """PostgreSQL: encoded answers of read plans, per learner, for the event loop of one
    process, kept true by LISTEN/NOTIFY and barriers."""

    def __init__(self, conninfo: str, max_bytes: int, barrier_timeout: float = 2.0,
                 retry_seconds: float = 1.0) -> None:
        super().__init__(max_bytes)
        self._conninfo = conninfo
        self._timeout = barrier_timeout
        self._retry = retry_seconds
        self._id = f"{os.getpid()}.{id(self):x}"
        self._reading: dict[str, list[int]] = {}  # token -> [reads running, times heard]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._ready = False
        self._next_try = 0.0
        self._tokens = itertools.count()
        self._gathering: asyncio.Future[bool] | None = None  # the next barrier's readers
        self._out: dict[str, asyncio.Future[bool]] = {}  # barriers sent, by payload

    # -- answers ---------------------------------------------------------------------------

    async def answer(self, run: Runner, learner: str,
                     key: Hashable, make: Callable[[], Plan[T]],
                     encode: Callable[[T], bytes]) -> bytes:
        """The encoded answer of the plan `make()` builds for `learner` (a `learner_token`),
        from memory when it is there and true, else run with `run` (and kept)."""
        if not await self._listening(run):
            self.counts["uncached"] += 1
            return encode(await run(make))
        if not await self._barrier(run):
            self.counts["uncached"] += 1
            return encode(await run(make))
        found = self._held(learner, key)
        if found is not None:
            return found
        state = self._reading.setdefault(learner, [0, 0])
        state[0] += 1
        heard, flushes = state[1], self._flushes
        try:
            encoded = encode(await run(make))
        finally:
            state[0] -= 1
            if state[0] == 0:
                del self._reading[learner]
        if self._ready and state[1] == heard and self._flushes == flushes:
            self._keep(learner, key, encoded)
        else:
            self.counts["dropped"] += 1
        return encoded

    # -- hearing changes -------------------------------------------------------------------

    def _heard(self, payload: str) -> None:
        if payload.startswith(BARRIER_PREFIX):
            waiting = self._out.pop(payload, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(True)
            return
        if payload == EVERYTHING:
            self._flush()
            return
        for token in payload.split():
            self._forget(token)
            state = self._reading.get(token)
            if state is not None:
                state[1] += 1

    async def _listening(self, run: Runner) -> bool:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self.close()
            self._loop = loop
        if self._ready:
            return True
        if self._listener is not None or loop.time() < self._next_try:
            return False  # connecting now, or lately failed: read from the database
        self._listener = loop.create_task(self._listen())
        return False

    async def _listen(self) -> None:
        import psycopg

        conn = None
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            self._conn = conn
            await conn.execute(f"LISTEN {CHANNEL}")
            self._flush()  # what was kept before listening may be stale
            self._ready = True
            async for notice in conn.notifies():
                self._heard(notice.payload)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("read cache: stopped listening for changes (%s); reads go to the "
                        "database until the listener is back", error)
        finally:
            if self._listener is asyncio.current_task():
                self._lost()
                self._listener = None
            if conn is not None:
                conn.pgconn.finish()
                if self._conn is conn:
                    self._conn = None

    def _lost(self) -> None:
        """Stop answering from memory now: what is held and every barrier out are void."""
        self._ready = False
        self._flush()
        if self._loop is not None:
            self._next_try = self._loop.time() + self._retry
        for waiting in [*self._out.values(), self._gathering]:
            if waiting is not None and not waiting.done():
                waiting.set_result(False)
        self._out.clear()
        self._gathering = None

    # -- barriers --------------------------------------------------------------------------

    async def _barrier(self, run: Runner) -> bool:
        """True once everything committed before this call has been heard."""
        assert self._loop is not None
        if self._gathering is None:
            self._gathering = self._loop.create_future()
        waiting = self._gathering
        if not self._out:
            self._send(run)
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), self._timeout)
        except TimeoutError:
            log.warning("read cache: a barrier took over %.1f s; listening again",
                        self._timeout)
            self._lost()
            if self._listener is not None:
                self._listener.cancel()  # its end closes the connection
            return False

    def _send(self, run: Runner) -> None:
        waiting, self._gathering = self._gathering, None
        if waiting is None:
            return
        payload = f"{BARRIER_PREFIX}{self._id}:{next(self._tokens)}"
        self._out[payload] = waiting
        assert self._loop is not None
        self._loop.create_task(self._sent(run, payload, waiting))

    async def _sent(self, run: Runner, payload: str,
                    waiting: asyncio.Future[bool]) -> None:
        try:
            await run(lambda: _notify(payload))
        except Exception as error:
            log.warning("read cache: a barrier could not be sent (%s)", error)
            self._out.pop(payload, None)
            if not waiting.done():
                waiting.set_result(False)
        if not waiting.done():
            await asyncio.wait([waiting])
        if not self._out and self._gathering is not None:
            self._send(run)

    def close(self) -> None:
        """Stop listening and forget everything (from the loop's thread or after it)."""
        if self._listener is not None and not self._listener.done():
            self._listener.cancel()
        self._listener = None
        self._lost()
        if self._conn is not None:  # the loop may not run the listener's end any more
            self._conn.pgconn.finish()
            self._conn = None
        self._loop = None
        self._next_try = 0.0


class NoticeCache(AnswerMemory):
    """SQLite: encoded answers of read plans, per learner, for the event loop of one
    process, kept true by the notice table of migration 0016.

    Before every answer from memory the worker catches up: `PRAGMA data_version` on a
    connection of its own says whether any other connection committed since it last
    looked (microseconds, no table read); if one did, it reads the notices after the last
    it saw and forgets the learners they name. The read that follows starts after that,
    so it sees every commit whose notice was not yet read, and any commit after it will
    be read before the next answer from memory. A gap in the notices (pruned before this
    worker read them) or an error forgets everything; an error also answers from the
    database until the notices can be read again."""

    def __init__(self, connect: Callable[[], Any], max_bytes: int, *,
                 owned: bool = True) -> None:
        super().__init__(max_bytes)
        self._connect = connect
        self._owned = owned  # False: the connection is the caller's to close
        self._conn: Any = None
        self._version: Any = None
        self._seq = -1  # the last notice read; -1: none yet (everything held is void)

    def answer(self, learner: str, key: Hashable, read: Callable[[], T],
               encode: Callable[[T], bytes]) -> bytes:
        """The encoded answer of `read()` for `learner` (`sqlite_token`), from memory when
        it is there and true, else read (and kept)."""
        if not self._caught_up():
            self.counts["uncached"] += 1
            return encode(read())
        found = self._held(learner, key)
        if found is not None:
            return found
        encoded = encode(read())
        self._keep(learner, key, encoded)
        return encoded

    def _caught_up(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._connect()
            conn = self._conn
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version == self._version:  # None until the first notices are read
                return True
            self._version = version  # read first: a commit after it changes it again
            if self._seq < 0:
                self._flush()
                self._seq = conn.execute(
                    "SELECT coalesce(max(seq), 0) FROM read_notices").fetchone()[0]
                return True
            notices = conn.execute("SELECT seq, token FROM read_notices WHERE seq > ? "
                                   "ORDER BY seq", (self._seq,)).fetchall()
        except Exception as error:
            log.warning("read cache: the change notices could not be read (%s); reads go "
                        "to the database", error)
            self.close()
            return False
        if notices and notices[0][0] != self._seq + 1:
            self._flush()  # notices this worker never read were pruned
        else:
            for _, token in notices:
                if token == EVERYTHING:
                    self._flush()
                else:
                    self._forget(token)
        if notices:
            self._seq = notices[-1][0]
        return True

    def close(self) -> None:
        """Forget everything and let the connection go (opened again when needed)."""
        self._flush()
        self._seq = -1
        self._version = None
        if self._conn is not None and self._owned:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None


def sqlite_token(dataset: str, user_id: str) -> str:
    """The token a change of this learner's records is noted with (migration 0016)."""
    return f"{dataset}\x1f{user_id}"
