"""`kill -9` of outbox workers in the middle of a batch loses nothing (issue 4).

Real processes on PostgreSQL: a server that leaves the outbox to `learnlog worker`
processes, two workers sharing the queue (`SKIP LOCKED`), writes that queue thousands of
group refreshes. Both workers are killed with SIGKILL while rows are claimed and not yet
done; new workers take the rows over when the lease runs out. After the queue drains, the
stored group figures must be exactly what `learnlog recompute` rebuilds from the facts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from learnlog.service.writer import now_ms
from learnlog.store.db import normalise_url
from learnlog.store.schema import group_activity_agg, member_activity_agg, outbox
from tests.support import ServerProcess, leaf

LEARNERS = 400
LEASE = "2"


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "learnlog", "worker", "--batch", "25"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def queue_state(engine: Engine) -> tuple[int, int]:
    """(rows queued, rows claimed whose lease still runs)."""
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        leased = conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.available_at > now_ms())).scalar_one()
    return int(total), int(leased)


def figures(engine: Engine) -> tuple[list[Any], list[Any]]:
    """Every stored group figure, times left out (a rebuild moves no value, and so no time,
    when nothing differs — compared separately)."""
    with engine.connect() as conn:
        totals = conn.execute(select(group_activity_agg).order_by(
            *group_activity_agg.primary_key.columns)).all()
        members = conn.execute(select(member_activity_agg).order_by(
            *member_activity_agg.primary_key.columns)).all()
    return [tuple(r) for r in totals], [tuple(r) for r in members]


def write_load(server: ServerProcess, token: str) -> None:
    """Every learner starts contents and makes progress; some complete and score. Each
    batch of events queues one refresh per learner it touches."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        for round_ in range(4):
            events = []
            for n in range(LEARNERS):
                if (n + round_) % 3 == 0:
                    continue
                user, content = f"u{n:04d}", f"c{(n + round_) % 4}"
                key = {"userId": user, "contentId": content, "collectionId": "k1"}
                events.append({"type": "view.start", **key})
                events.append({"type": "view.update", **key,
                               "progress": 100 if n % 5 == round_ else 10 * (n % 9)})
            for s in range(0, len(events), 200):
                reply = http.post("/v1/events", json={"request": {"events": events[s:s + 200]}})
                assert reply.status_code == 200, reply.text


@pytest.mark.timeout(300)
def test_killed_workers_lose_nothing(serve: Callable[..., ServerProcess],
                                     pg_url_factory: Callable[[], str], tmp_path: Path) -> None:
    url = pg_url_factory()
    server = serve(url, LEARNLOG_PROCESS_OUTBOX="false")
    api = server.api()
    api.put_collection("k1", [leaf("c0"), leaf("c1"), leaf("c2"), leaf("c3", optional=True)])
    api.put_collection("k2", [leaf("d0")])
    for group in ("big", "small"):
        api.call("PUT", f"/v1/groups/{group}", {"request": {"kind": "group", "name": group}})
        api.call("PUT", f"/v1/groups/{group}/activities/Collection/k1")
    api.call("PUT", "/v1/groups/small/activities/Collection/k2")
    api.call("PUT", "/v1/groups/big/members/coach", {"request": {"role": "coach"}})
    for n in range(LEARNERS):
        api.call("PUT", f"/v1/groups/big/members/u{n:04d}", {"request": {}})
        if n % 4 == 0:
            api.call("PUT", f"/v1/groups/small/members/u{n:04d}", {"request": {}})
    write_load(server, api.token)

    engine = create_engine(normalise_url(url))
    env = {**server.env, "LEARNLOG_OUTBOX_LEASE_SECONDS": LEASE}
    logs = tmp_path / "workers.log"
    queued, _ = queue_state(engine)
    assert queued >= 1_000, queued  # enough work for a batch to be in hand
    interrupted = 0
    for _attempt in range(10):  # kill both workers while a batch is in hand
        workers = [start_worker(env, logs) for _ in range(2)]
        while queue_state(engine)[0] >= queued and all(w.poll() is None for w in workers):
            time.sleep(0.005)
        time.sleep(0.05)
        for w in workers:
            os.kill(w.pid, signal.SIGKILL)
            w.wait()
        queued, interrupted = queue_state(engine)
        if interrupted:
            break
    assert interrupted > 0, f"no batch was in hand when the workers died:\n{logs.read_text()}"
    assert queued > 0

    # New workers take the dead ones' rows once their lease runs out, and drain the queue.
    workers = [start_worker(env, logs) for _ in range(2)]
    deadline = time.monotonic() + 120
    while queue_state(engine)[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    for w in workers:
        w.send_signal(signal.SIGTERM)
        assert w.wait(timeout=30) == 0, logs.read_text()[-3000:]
    assert queue_state(engine)[0] == 0, logs.read_text()[-3000:]

    kept = figures(engine)
    totals = {(r.group_id, r.activity_id): r for r in map(_row, kept[0])}
    assert totals[("big", "k1")].member_count == LEARNERS
    assert totals[("big", "k1")].enrolled_count > LEARNERS // 2
    assert totals[("small", "k1")].member_count == LEARNERS // 4
    verify = subprocess.run([sys.executable, "-m", "learnlog", "verify"], env=server.env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr[-3000:]
    rebuilt = subprocess.run([sys.executable, "-m", "learnlog", "recompute"], env=server.env,
                             capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert ": 0 corrected" in rebuilt.stderr, rebuilt.stderr[-3000:]
    assert figures(engine) == kept
    engine.dispose()


def _row(values: tuple[Any, ...]) -> SimpleNamespace:
    return SimpleNamespace(**dict(zip(group_activity_agg.columns.keys(), values, strict=True)))
