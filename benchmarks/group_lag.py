"""Group aggregate lag under the write load (SPEC §2.7, §8): how long after a write is
acknowledged its group's figures show it.

Setup (before the `view/update` run): a group of 10,000 learners — the update pool's
1,000 learners, 300 probe learners and 8,700 others — with collection wcol00 as its
activity, and ten small groups (one per benchmark collection, its pool learners) with
their collection. The upkeep of all of it (10,000 refreshes and more) is drained first.

During the measured `view/update` run a probe thread, one write at a time, starting one
every PROBE_EVERY_S (or as soon as the previous one showed, when that took longer): a
probe learner starts a content of wcol00 (its first use: an implicit enrolment), then the
probe polls `POST /data/group/agg` every 10 ms until the big group's `enrolledCount`
counts it. The lag is from the write's acknowledgement to the first answer that shows it.

The pace is fixed so that the instrument's own load does not grow as the lag shrinks: run
back to back, the probes were 30 first enrolments a second in a 10,000-learner group, each
with its outbox claim, group refresh and bookkeeping (four transactions) and its polls:
0.27-0.34 s of server CPU a second on SQLite with no other load (2026-12-06), ~10 ms a
probe. Five a second is a sixth of that, and still 75 samples in a 15 s run.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

BIG = "wbig"
BIG_MEMBERS = 10_000
PROBES = 300
POLL_S = 0.01
PROBE_EVERY_S = 0.2  # a new probe at most five times a second (see above)
PROBE_TIMEOUT_S = 30.0
TARGET_P99_MS = 2000.0


def _ok(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"{what}: {response.status_code} {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def _enrolled(client: httpx.Client) -> tuple[int, int]:
    result = _ok(client.post("/data/group/agg", json={"request": {
        "groupId": BIG, "activities": [{"id": "wcol00", "type": "Collection"}],
        "fields": ["memberCount", "enrolledCount"]}}), "POST /data/group/agg")["result"]
    values = {a["metric"]: a["value"] for a in result["activity"][0]["agg"]}
    return int(values["memberCount"]), int(values["enrolledCount"])


def setup(base: str, token: str, pool_users: int, collections: int,
          pending: Any, log: Any) -> float:
    """Create the groups and wait until their upkeep has drained; returns seconds taken.
    `pending()` gives the outbox depth."""
    t0 = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    pool = [f"wu{u:05d}" for u in range(pool_users)]
    probes = [f"wprobe{n:04d}" for n in range(PROBES)]
    others = [f"wg{n:05d}" for n in range(BIG_MEMBERS - len(pool) - len(probes))]
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        groups = [(BIG, "wcol00", pool + probes + others)] + [
            (f"wgrp{c:02d}", f"wcol{c:02d}", [u for n, u in enumerate(pool)
                                              if n % collections == c])
            for c in range(collections)]
        for group, collection, _ in groups:
            _ok(client.put(f"/v1/groups/{group}", json={"request": {
                "kind": "group", "name": group}}), f"PUT /v1/groups/{group}")
            _ok(client.put(f"/v1/groups/{group}/activities/Collection/{collection}"),
                "PUT activity")

        def join(pair: tuple[str, str]) -> None:
            _ok(client.put(f"/v1/groups/{pair[0]}/members/{pair[1]}", json={"request": {}}),
                "PUT member")

        with ThreadPoolExecutor(8) as threads:
            list(threads.map(join, [(g, u) for g, _, members in groups for u in members]))
        deadline = time.monotonic() + 600
        while pending() and time.monotonic() < deadline:
            time.sleep(0.5)
        members, enrolled = _enrolled(client)
        if members != BIG_MEMBERS:
            raise RuntimeError(f"group {BIG}: memberCount {members} after setup, expected "
                               f"{BIG_MEMBERS} (outbox depth {pending()})")
    seconds = time.perf_counter() - t0
    log(f"  groups: {BIG} with {members:,} learners ({enrolled:,} enrolled in wcol00) and "
        f"{collections} small groups ready in {seconds:.1f} s")
    return seconds


class LagProbe:
    """Writes one probe at a time while the load runs and times until it shows."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.samples_ms: list[float] = []
        self.timeouts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-probe", daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=PROBE_TIMEOUT_S + 10)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            with httpx.Client(base_url=self.base, headers=headers, timeout=60) as client:
                time.sleep(1.0)  # let the load settle
                _, enrolled = _enrolled(client)
                next_start = time.perf_counter()
                for n in range(PROBES):
                    if self._stop.wait(max(0.0, next_start - time.perf_counter())):
                        return
                    next_start = time.perf_counter() + PROBE_EVERY_S
                    _ok(client.post("/v1/view/start", json={"request": {
                        "userId": f"wprobe{n:04d}", "contentId": "wcol00-c00",
                        "collectionId": "wcol00", "contextId": "wctx00"}}), "view/start")
                    acked = time.perf_counter()
                    enrolled += 1
                    while _enrolled(client)[1] < enrolled:
                        if time.perf_counter() - acked > PROBE_TIMEOUT_S:
                            self.timeouts += 1
                            break
                        time.sleep(POLL_S)
                    self.samples_ms.append((time.perf_counter() - acked) * 1000)
        except Exception as error:  # reported in the results, not lost in a thread
            self.error = repr(error)

    def result(self) -> dict[str, Any]:
        s = sorted(self.samples_ms)

        def q(p: float) -> float:
            return round(s[min(len(s) - 1, int(p * len(s)))], 1) if s else 0.0

        return {"samples": len(s), "timeouts": self.timeouts, "error": self.error,
                "group_members": BIG_MEMBERS, "p50_ms": q(0.5), "p99_ms": q(0.99),
                "max_ms": round(s[-1], 1) if s else 0.0,
                "mean_ms": round(statistics.fmean(s), 1) if s else 0.0,
                "ok": bool(s) and not self.timeouts and self.error is None
                and q(0.99) <= TARGET_P99_MS}
