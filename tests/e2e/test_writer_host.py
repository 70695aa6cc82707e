"""`learnlog serve --workers 2` on SQLite: one writer host owns the file (decision 0019).

A real server, real clients over HTTP. The host is killed with SIGKILL in the middle of
the clients' updates: requests in flight then fail with 503 (not acknowledged), the
server starts a new host, the clients' retries go through, and nothing acknowledged is
lost: the stored time is every acknowledged update's time, plus at most the time of the
updates whose answer was lost with the host (their fate is unknown to the client, as with
any dropped connection). `learnlog verify` finds the summaries true to the facts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support import ServerProcess, keys

CLIENTS = 16
SECONDS = 1.0


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def writer_host(server: ServerProcess) -> int | None:
    """The pid of the server's writer host, if one runs."""
    assert server.proc is not None
    for pid in _children(server.proc.pid):
        if "learnlog.writer_host" in _command_line(pid):
            return pid
    return None


def wait_for_host(server: ServerProcess, other_than: int | None = None) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pid = writer_host(server)
        if pid is not None and pid != other_than:
            return pid
        time.sleep(0.05)
    raise AssertionError("no writer host came up")


def test_kill_9_of_the_writer_host_loses_nothing_acknowledged(
        serve: Callable[..., ServerProcess]) -> None:
    server = serve(None, WORKERS="2")
    first_host = wait_for_host(server)
    api = server.api()
    learners = [f"learner-{n:02d}" for n in range(CLIENTS)]
    for learner in learners:
        api.start(learner, "video-1", "course", "batch")
    headers = {"Authorization": f"Bearer {api.token}"}
    stop = threading.Event()

    def client(learner: str) -> tuple[int, int, list[int]]:
        body = {"request": {**keys(learner, "video-1", "course", "batch"),
                            "timespent": SECONDS, "progress": 40}}
        acknowledged = unknown = 0
        others: list[int] = []
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            while not stop.is_set():
                try:
                    status = http.post("/v1/view/update", json=body, headers=headers
                                       ).status_code
                except httpx.TransportError:
                    unknown += 1
                    continue
                if status == 200:
                    acknowledged += 1
                elif status == 503:
                    unknown += 1
                else:
                    others.append(status)
        return acknowledged, unknown, others

    with ThreadPoolExecutor(CLIENTS) as pool:
        running = [pool.submit(client, learner) for learner in learners]
        time.sleep(1.5)
        os.kill(first_host, signal.SIGKILL)
        second_host = wait_for_host(server, other_than=first_host)
        time.sleep(2.0)  # updates go on through the new host
        stop.set()
        outcomes = [future.result() for future in running]

    assert second_host != first_host
    assert all(not others for _, _, others in outcomes), outcomes
    after_restart = api.call("GET", "/health")
    assert after_restart is not None
    for learner, (acknowledged, unknown, _) in zip(learners, outcomes, strict=True):
        stored = api.one(learner, "video-1", "course", "batch")["timeSpent"]
        assert acknowledged > 0
        assert acknowledged * SECONDS <= stored <= (acknowledged + unknown) * SECONDS, (
            learner, acknowledged, unknown, stored)
    assert sum(unknown for _, unknown, _ in outcomes) < CLIENTS * 4  # only the in-flight ones
    verify = subprocess.run([sys.executable, "-m", "learnlog", "verify"], env=server.env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_writer_host_runs_only_where_it_is_needed(
        serve: Callable[..., ServerProcess], workers: str) -> None:
    server = serve(None, WORKERS=workers)
    api = server.api()
    api.start("learner", "video-1", "course", "batch")
    host = writer_host(server)
    if workers == "1":
        assert host is None  # one process: it writes itself
        return
    assert host is not None
    server.stop()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{host}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{host}")  # it went with the server
