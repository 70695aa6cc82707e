"""One writer for an SQLite file served by several processes (decision 0019).

SQLite takes one writer at a time. With one writer thread in each server worker, the
workers' writers took turns on the file and each held the GIL of a process that was also
answering HTTP: two workers wrote no faster than one. So `learnlog serve --workers N` on
an SQLite file starts one more process, the *writer host*: it owns the file's only
writer (and the outbox loop), and the workers hand it their commands over a Unix socket.

- `WriterClient` stands in for `Writer` in a worker. Commands submitted in the same turn of
  the event loop go out in one frame; the host answers a batch's commands in one frame.
- `WriterHost` serves the socket in the host process: one thread per connected worker
  reads frames and queues the commands on the host's `Writer`, whose batches answer
  through `_Connection.deliver` after the commit.
- `Supervisor` (used by `learnlog serve`) starts the host process (`writer_host.py`),
  waits until it answers, starts it again if it dies, and stops it last.

A frame is a 4-byte big-endian length and a pickle: `[(ident, command), ...]` to the host,
`[(ident, ok, result or error), ...]` back. Both ends are processes of the same instance
and user (the socket lives in a directory only that user can open), so pickle carries the
command objects as they are. Errors other than `LearnlogError` travel as `RuntimeError`
(a caller gets a 500 for them either way). A command whose connection breaks before its
reply fails with `Unavailable` (503): it may or may not have been committed, as with any
request whose connection drops, and a retry is safe for the routes meant to be retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..domain.errors import LearnlogError, Unavailable
from .commands import Command
from .writer import Job, Reply, Writer

log = logging.getLogger(__name__)

_LENGTH = 4
CONNECT_SECONDS = 10.0  # how long a worker waits for a host that is (re)starting


def _frame(payload: Any) -> bytes:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(_LENGTH, "big") + data


def _portable(replies: list[Reply]) -> list[Reply]:
    """Errors other than learnlog's own cross as RuntimeError (their classes may not
    unpickle on the other side; the caller answers 500 for them either way)."""
    return [(ident, ok, value if ok or isinstance(value, LearnlogError)
             else RuntimeError(f"{type(value).__name__}: {value}"))
            for ident, ok, value in replies]


def _reply_frame(replies: list[Reply]) -> bytes:
    replies = _portable(replies)
    try:
        return _frame(replies)
    except Exception:  # a result that does not pickle: fail that one, not the batch
        kept: list[Reply] = []
        for ident, ok, value in replies:
            try:
                pickle.dumps(value)
                kept.append((ident, ok, value))
            except Exception as error:
                kept.append((ident, False, RuntimeError(f"unpicklable result: {error}")))
        return _frame(kept)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _read_frame(sock: socket.socket) -> Any | None:
    """The next frame's object, or None when the other side closed the connection."""
    head = _read_exactly(sock, _LENGTH)
    if head is None:
        return None
    body = _read_exactly(sock, int.from_bytes(head, "big"))
    return None if body is None else pickle.loads(body)


def _gone(path: str) -> Unavailable:
    return Unavailable("The writer is restarting; this request was not acknowledged. "
                       f"Retry it. (writer socket {path})")


# -- the worker's side ----------------------------------------------------------------------
class _Link(asyncio.Protocol):
    """One worker event loop's connection to the host."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.closed = False
        self._buffer = bytearray()
        self._outgoing: list[tuple[int, Command]] = []
        self._flush_soon = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's is not a subclass

    def send(self, ident: int, command: Command, future: asyncio.Future[Any]) -> None:
        self.pending[ident] = future
        self._outgoing.append((ident, command))
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Everything submitted during this turn of the loop, in one frame."""
        self._flush_soon = False
        outgoing, self._outgoing = self._outgoing, []
        if not outgoing:
            return
        if self.closed or self.transport is None:
            self._fail([ident for ident, _ in outgoing], _gone(self.path))
            return
        try:
            frame = _frame(outgoing)
        except Exception:  # one command that does not pickle (a bug): fail it alone
            frames = []
            for item in outgoing:
                try:
                    frames.append(_frame([item]))
                except Exception as error:
                    self._fail([item[0]], RuntimeError(f"command cannot be sent: {error}"))
            frame = b"".join(frames)
        self.transport.write(frame)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _LENGTH:
            size = int.from_bytes(buffer[start:start + _LENGTH], "big")
            end = start + _LENGTH + size
            if len(buffer) < end:
                break
            replies: list[Reply] = pickle.loads(memoryview(buffer)[start + _LENGTH:end])
            start = end
            for ident, ok, value in replies:
                future = self.pending.pop(ident, None)
                if future is None or future.done():  # the request went away meanwhile
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        if start:
            del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(list(self.pending), _gone(self.path))

    def _fail(self, idents: list[int], error: Exception) -> None:
        for ident in idents:
            future = self.pending.pop(ident, None)
            if future is not None and not future.done():
                future.set_exception(error)


class WriterClient:
    """A server worker's writer: hands every command to the writer host and returns what
    it answers. Same interface as `Writer` (the statistics stay with the host)."""

    def __init__(self, path: str, connect_seconds: float = CONNECT_SECONDS) -> None:
        self.path = path
        self.connect_seconds = connect_seconds
        self._ids = itertools.count(1)
        self._links: dict[asyncio.AbstractEventLoop, _Link] = {}
        self._connecting: dict[asyncio.AbstractEventLoop, asyncio.Future[_Link]] = {}
        self._sync_lock = threading.Lock()
        self._sync_sock: socket.socket | None = None
        self.on_queued_work: Any = None  # the host's outbox loop does the queued work
        self.batches = self.commands = 0
        self.cpu_seconds = 0.0
        self.batch_sizes: dict[int, int] = {}

    def start(self) -> None:
        """Nothing to start: the connection opens with the first command."""

    def stop(self) -> None:
        """Close the connections (call it on their loop, before the loop ends)."""
        for loop, link in self._links.items():
            if link.transport is not None and not loop.is_closed():
                link.transport.close()
        self._links.clear()
        with self._sync_lock:
            if self._sync_sock is not None:
                self._sync_sock.close()
                self._sync_sock = None

    async def submit(self, command: Command) -> Any:
        """Have the host apply a command durably; its result (or error) once committed."""
        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        if link is None or link.closed:
            link = await self._connect(loop)
        future: asyncio.Future[Any] = loop.create_future()
        link.send(next(self._ids), command, future)
        return await future

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Link:
        waiting = self._connecting.get(loop)
        if waiting is not None:  # another request is connecting already
            return await asyncio.shield(waiting)
        made: asyncio.Future[_Link] = loop.create_future()
        self._connecting[loop] = made
        try:
            deadline = time.monotonic() + self.connect_seconds
            while True:
                try:
                    _, link = await loop.create_unix_connection(
                        lambda: _Link(self.path), self.path)
                    break
                except OSError as error:
                    if time.monotonic() >= deadline:
                        raise _gone(self.path) from error
                    await asyncio.sleep(0.05)
            self._links[loop] = link
            made.set_result(link)
            return link
        except BaseException as error:
            made.set_exception(error if isinstance(error, Exception) else _gone(self.path))
            made.exception()  # retrieved: waiters get it, nobody else is told twice
            raise
        finally:
            del self._connecting[loop]

    # -- from threads (CLI-style callers; the API awaits `submit`) -------------------------
    def _call(self, commands: Sequence[Command]) -> list[tuple[bool, Any]]:
        numbered = [(n, command) for n, command in enumerate(commands)]
        with self._sync_lock:
            for attempt in range(2):
                try:
                    if self._sync_sock is None:
                        self._sync_sock = _connect_blocking(self.path, self.connect_seconds)
                    self._sync_sock.sendall(_frame(numbered))
                    answers: dict[int, tuple[bool, Any]] = {}
                    while len(answers) < len(numbered):
                        replies = _read_frame(self._sync_sock)
                        if replies is None:
                            raise ConnectionError("the writer host closed the connection")
                        answers.update((i, (ok, v)) for i, ok, v in replies)
                    return [answers[n] for n, _ in numbered]
                except OSError as error:
                    if self._sync_sock is not None:
                        self._sync_sock.close()
                        self._sync_sock = None
                    if attempt == 1:
                        raise _gone(self.path) from error
        raise AssertionError("unreachable")

    def run_many(self, commands: Sequence[Command]) -> list[Future[Any]]:
        futures: list[Future[Any]] = []
        for ok, value in self._call(commands):
            future: Future[Any] = Future()
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
            futures.append(future)
        return futures

    def submit_future(self, command: Command) -> Future[Any]:
        return self.run_many([command])[0]

    def run_sync(self, command: Command) -> Any:
        ok, value = self._call([command])[0]
        if not ok:
            raise value
        return value


def _connect_blocking(path: str, seconds: float) -> socket.socket:
    deadline = time.monotonic() + seconds
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


# -- the host's side ------------------------------------------------------------------------
class _Connection:
    """A worker connected to the host: its commands come in here and the writer answers
    them here (from the writer's own thread, which is the only one that touches it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def read(self) -> list[tuple[int, Command]] | None:
        """Every whole command frame that has arrived; None once the worker has gone."""
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            return None
        if not data:
            return None
        buffer = self._buffer
        buffer += data
        numbered: list[tuple[int, Command]] = []
        start = 0
        while len(buffer) - start >= _LENGTH:
            end = start + _LENGTH + int.from_bytes(buffer[start:start + _LENGTH], "big")
            if len(buffer) < end:
                break
            numbered.extend(pickle.loads(memoryview(buffer)[start + _LENGTH:end]))
            start = end
        if start:
            del buffer[:start]
        return numbered

    def deliver(self, replies: list[Reply]) -> None:
        with contextlib.suppress(OSError):  # the worker went away, and its requests
            self.sock.sendall(_reply_frame(replies))


class WriterHost:
    """Runs `writer` on one thread that also reads the workers' commands: each turn it
    takes every command that has arrived (from the sockets and from this process's own
    queue), applies them as batches and answers them, so no command waits on a thread
    hand-off and no reader thread competes with the writer for the GIL."""

    def __init__(self, writer: Writer, path: str) -> None:
        self.writer = writer
        self.path = path
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._closed = False
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def listen(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener

    def start(self) -> None:
        if self._listener is None:
            self.listen()
        self.writer.wake = self._wake
        self.writer.start_syncer()
        self._thread = threading.Thread(target=self._run, name="learnlog-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the commands that have arrived, then stop serving. Once: a second call
        does nothing (the wake pipe's descriptors may belong to someone else by then)."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.writer.wake == self._wake:  # a later host of the same writer keeps its own
            self.writer.wake = None
        os.close(self._wake_r)
        os.close(self._wake_w)

    def wait(self, timeout: float) -> bool:
        """Whether the host was told to stop (waiting up to `timeout` seconds)."""
        return self._stopping.wait(timeout)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (BlockingIOError): it is awake already
            os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        assert self._listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, "accept")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        writer = self.writer
        try:
            while True:
                jobs = writer.take_queued()
                stopping = self._stopping.is_set()
                for key, _ in selector.select(0 if jobs or stopping else 1.0):
                    if key.data == "accept":
                        self._accept(selector)
                    elif key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                    else:
                        connection: _Connection = key.data
                        numbered = connection.read()
                        if numbered is None:
                            selector.unregister(connection.sock)
                            connection.sock.close()
                            continue
                        jobs.extend(Job(command, None, None, connection, ident)
                                    for ident, command in numbered)
                if jobs:
                    writer.process(jobs)
                elif stopping:
                    return
        finally:
            self.writer.stop_syncer()  # answer what was committed before hanging up
            for key in list(selector.get_map().values()):
                if isinstance(key.data, _Connection):
                    key.data.sock.close()
            selector.close()
            self._listener.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(True)  # read only when the selector says so; replies block
        selector.register(sock, selectors.EVENT_READ, _Connection(sock))


class Supervisor:
    """`learnlog serve`'s keeper of the writer host: starts it, waits until it accepts
    connections, starts it again whenever it dies, and stops it when serving ends.
    `command` runs the host (`learnlog/writer_host.py`) once the socket's path is appended:
    the process that serves says what its host is."""

    def __init__(self, command: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.command = list(command)
        self._dir = tempfile.mkdtemp(prefix="learnlog-")  # mode 0700: this user only
        self.path = str(Path(self._dir) / "writer.sock")
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None

    def start(self, timeout: float = 60.0) -> None:
        self._spawn(timeout)
        self._watch = threading.Thread(target=self._keep, name="learnlog-writer-keeper",
                                       daemon=True)
        self._watch.start()

    def _spawn(self, timeout: float) -> None:
        proc = subprocess.Popen([*self.command, self.path], env=self.env)
        self.proc = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the writer host exited at start (status {proc.returncode})")
            try:
                _connect_blocking(self.path, 0).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the writer host did not answer within {timeout:.0f} s")

    def _keep(self) -> None:
        while not self._stopping.is_set():
            proc = self.proc
            if (proc is not None and proc.poll() is not None
                    # a clean exit: told to stop, as `learnlog serve` is when its process
                    # group is; give serve the moment it takes to say it is stopping too
                    and not (proc.returncode == 0 and self._stopping.wait(2.0))
                    and not self._stopping.is_set()):
                log.error("the writer host died (status %s); starting it again",
                          proc.returncode)
                try:
                    self._spawn(60.0)
                except RuntimeError as error:
                    log.error("%s; trying again", error)
                    time.sleep(1.0)
            self._stopping.wait(0.1)

    def stop(self) -> None:
        self._stopping.set()
        if self._watch is not None:
            self._watch.join(timeout=5)
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.rmdir(self._dir)

