"""Redis killed under load and started again empty: no learner ever reads less than their own
acknowledged update (SPEC §7: the same answers with and without Redis, always).

A real `learnlog serve --workers 2` on PostgreSQL (two processes, each with its own view of
Redis) and a private redis-server of this test, which is killed with SIGKILL while 16
learners each loop view/update then view/read of their own content, and started again
(empty) on the same port 1.5 to 4 seconds later, four times. Each kill falls in a lull during
which only one learner, on a kept-alive connection (so one process), is active: the two
processes find Redis gone at different times, as they do under uneven traffic. Every read
must show at least the time spent and progress of that learner's last acknowledged update;
the failure message says how many did not, by whether Redis was up, gone or back when the
read started.

What it caught (decision 0016): a process that had just seen Redis fail left it alone for
`redis_retry_seconds` and so skipped its write-throughs, while the other process, already
back on the restarted Redis, served the value from before them.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.servers import RedisServer
from tests.support import ServerProcess, keys

LEARNERS = 16
WARM_UP = 1.5  # seconds of load with Redis up (every learner's map cached)
OUTAGES = (1.5, 4.0, 2.0, 3.0)  # seconds Redis stays gone, each time
AFTER = 2.5  # seconds of load after each restart
LULL = 0.75  # seconds after each kill when only the first learner (one process) is active


class Load:
    """The learners' loop, and what they saw."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"}
        self.phase = "up"
        self.stop = threading.Event()
        self.going = threading.Event()  # cleared for a lull: all but the first learner wait
        self.going.set()
        self.reads: Counter[str] = Counter()
        self.stale: Counter[str] = Counter()
        self.examples: list[str] = []
        self.lock = threading.Lock()

    def learner(self, n: int) -> int:
        user = f"learner-{n:02d}"
        key = keys(user, "video", "course", "batch")
        updates = 0
        # No keep-alive: each request is a new connection, taken by either worker process,
        # so a learner's update and the read after it are often handled by different ones.
        # The first learner keeps its connection, so one process, and never pauses.
        first = n == 0
        limits = httpx.Limits(max_keepalive_connections=1 if first else 0)
        with httpx.Client(base_url=self.server.base_url, headers=self.headers, timeout=60,
                          limits=limits) as http:
            reply = http.post("/v1/view/start", json={"request": key})
            assert reply.status_code == 200, reply.text
            while not self.stop.is_set():
                if not first:
                    self.going.wait()
                updates += 1
                progress = min(updates, 99)
                reply = http.post("/v1/view/update", json={"request": {
                    **key, "timespent": 1, "progress": progress}})
                assert reply.status_code == 200, reply.text  # acknowledged
                phase = self.phase
                reply = http.post("/v1/view/read", json={"request": {
                    **keys(user, "x", "course", "batch"), "contentId": ["video"]}})
                assert reply.status_code == 200, reply.text
                row = reply.json()["result"]["contents"][0]
                with self.lock:
                    self.reads[phase] += 1
                    if row["timeSpent"] < updates or row["progress"] < progress:
                        self.stale[phase] += 1
                        if len(self.examples) < 5:
                            self.examples.append(
                                f"{user} ({phase}): acknowledged {updates} s / {progress} %, "
                                f"read {row['timeSpent']} s / {row['progress']} %")
        return updates


def cache_hits(http: httpx.Client) -> float:
    """Reads the cache answered so far, in the process this kept-alive client talks to."""
    found = re.search(r'learnlog_cache_events\{kind="hit"\} (\S+)', http.get("/metrics").text)
    assert found is not None
    return float(found[1])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_redis_outage_never_serves_a_learner_less_than_their_update(
        serve: Callable[..., ServerProcess], own_redis: RedisServer, engine: str,
        request: pytest.FixtureRequest) -> None:
    # SQLite: the workers read, a writer host writes through (decision 0019); PostgreSQL:
    # each worker writes through itself.
    url = request.getfixturevalue("pg_url_factory")() if engine == "postgresql" else None
    server = serve(url, WORKERS="2", LEARNLOG_REDIS_URL=own_redis.url)
    load = Load(server, server.api().token)
    ops = httpx.Client(base_url=server.base_url, timeout=30)
    server.clients.append(ops)
    served_after: list[float] = []
    with ThreadPoolExecutor(LEARNERS) as pool:
        learners = [pool.submit(load.learner, n) for n in range(LEARNERS)]
        try:
            time.sleep(WARM_UP)
            for outage in OUTAGES:
                # A lull: only the first learner, so one process, meets Redis gone at first
                # (the processes find out at different times, as under uneven traffic).
                load.going.clear()
                time.sleep(0.2)
                own_redis.kill()  # SIGKILL: a crash, every key lost
                load.phase = "gone"
                time.sleep(LULL)
                load.going.set()
                time.sleep(outage - LULL)
                own_redis.start()  # the same port, empty
                load.phase = "back"
                hits = cache_hits(ops)
                time.sleep(AFTER)
                served_after.append(cache_hits(ops) - hits)
        finally:
            load.stop.set()
            load.going.set()
        updates = [f.result() for f in learners]
    assert min(updates) > 10, updates  # every learner kept going through the outages
    assert load.reads["up"] and load.reads["gone"] and load.reads["back"], load.reads
    assert not load.stale, (
        f"stale reads {dict(load.stale)} of {dict(load.reads)}: " + "; ".join(load.examples))
    assert served_after[-1] > 0, served_after  # the cache answers again once Redis is back
