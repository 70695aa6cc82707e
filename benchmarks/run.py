"""The learnlog benchmark suite (SPEC §8, §10): runs the HTTP figures and writes RESULTS.md.

    .venv/bin/python benchmarks/run.py            # the full suite (~40 minutes)
    .venv/bin/python benchmarks/run.py --quick    # a short smoke run (RESULTS.quick.md)
    .venv/bin/python benchmarks/run.py --quick --engines sqlite --only update   # ~1 minute

For each engine (SQLite file in a temporary directory; PostgreSQL in a fresh database that
is dropped afterwards) it:

0. the references of SPEC §8, before each engine's learnlog server starts: the FastAPI
   ceiling (benchmarks/refs/fastapi_ceiling.py) and the raw ceiling (refs/raw_ceiling.py)
   under `uvicorn --workers 2 --loop uvloop --http httptools`, each taking the `view/update`
   run's wrk script and bodies; every learnlog HTTP figure is reported as a share of both;
1. write phase, on a fresh unseeded database: registers a few collections, starts a pool of
   keys through `POST /v1/events` (view.start), then runs wrk (-t2 -c64) against
   `POST /v1/view/update` and right after against `POST /v1/view/update/validate`
   (learnlog's edge cost, info; skipped when the route answers 404), then batches of 1,000
   view.update events against `POST /v1/events` and `PUT /api/logger/trackprogress/{id}/`;
   stops the server and runs `learnlog verify` on that database;
2. read phase, on databases seeded by `seed.py` with 10 thousand and 10 million summary rows:
   wrk against `POST /v1/view/read` (20 contents) and `GET /v1/summary/list/{userId}`,
   and, when Redis answers, `view/read` once more with the Redis cache on;
3. CSV export (`export_bench.py`): `learnlog export` over 100 thousand and 1 million seeded
   sessions in a child process, its time and peak memory;
4. sync (`sync_bench.py`, when PostgreSQL is among the engines): `learnlog sync` pushing
   1 million seeded session facts from a SQLite instance to a `learnlog serve` instance on a
   fresh PostgreSQL database, its wall time, and the target's facts and summaries checked.

Servers are `learnlog serve --workers 2` subprocesses and the references plain uvicorn
ones (each in its own process group, killed on exit). The CPU used by wrk, the server,
PostgreSQL and the whole machine during every measured run is recorded, so RESULTS.md shows
whether the load generator was the limit. `--only update,read` (names: `--help`) runs a
subset, always with the references, into RESULTS.quick.md.
Exit status: 0 when every run completed without errors (non-2xx, socket errors) and every
`learnlog verify` passed; 1 otherwise (and with --strict, also when a target is missed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "lua"
REFS = HERE / "refs"
sys.path.insert(0, str(HERE))

import events_floor  # noqa: E402  (benchmarks/events_floor.py)
import export_bench as exporting  # noqa: E402  (benchmarks/export_bench.py)
import group_lag  # noqa: E402  (benchmarks/group_lag.py)
import harness  # noqa: E402  (benchmarks/harness.py: what the suites share)
import logs_bench as tracking  # noqa: E402  (benchmarks/logs_bench.py)
import seed as seeding  # noqa: E402  (benchmarks/seed.py)
import sync_bench as syncing  # noqa: E402  (benchmarks/sync_bench.py)
from harness import (  # noqa: E402
    BenchError,
    CpuWindow,
    Databases,
    Server,
    app_env,
    cleanup,
    cli,
    err,
    find_postmaster,
    git_commit,
    learnlog_bin,
    machine_ticks,
    pg_family,
    read_file,
)

harness.clean_up_on_exit()

NCPU = os.cpu_count() or 1

# Pools of keys for the write phase.
WRITE_USERS, WRITE_CONTENTS, WRITE_COLLECTIONS = 1_000, 10, 10  # 10,000 keys
EVENT_BATCHES, EVENT_BATCH = 64, 1_000  # 64 distinct batches of 1,000 distinct keys
EVENT_CONTENTS, EVENT_COLLECTIONS = 20, 5
READ_POOL = 20_000  # learners the read benchmarks pick from (all of them when fewer)

# Our own threshold for "cost independent of table size" (SPEC §8 gives no number).
FLAT_MIN_RATIO = 0.8


# -- machine and CPU accounting -------------------------------------------------------------

def machine_info(pg_admin: str | None, redis_url: str | None) -> dict[str, Any]:
    cpu_model = "unknown"
    for line in read_file("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(next(line.split()[1] for line in read_file("/proc/meminfo").splitlines()
                       if line.startswith("MemTotal:")))
    info: dict[str, Any] = {
        "nproc": NCPU, "cpu_model": cpu_model, "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    info["wrk"] = (wrk.stdout + wrk.stderr).splitlines()[0].strip()
    if pg_admin:
        import psycopg

        with psycopg.connect(pg_admin, autocommit=True) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    if redis_url:
        import redis

        server = redis.Redis.from_url(redis_url).info("server")
        info["redis"] = server["redis_version"]
        harness.REDIS_PID = int(server["process_id"])
    return info


def cpu_speed() -> float:
    """Seconds one core takes for a fixed pure-Python loop (10M additions): the machines
    this suite runs on differ from day to day; compare runs with this figure beside."""
    best = float("inf")
    for _ in range(3):
        t0, total = time.perf_counter(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return round(best, 3)


def background_load(seconds: float = 2.0) -> float:
    """Share of the machine busy while we do nothing (other users of the machine)."""
    busy0, total0 = machine_ticks()
    time.sleep(seconds)
    busy1, total1 = machine_ticks()
    return (busy1 - busy0) / max(total1 - total0, 1)


# -- helpers ------------------------------------------------------------------------------------

class RefServer(Server):
    """A reference app of benchmarks/refs/ under plain uvicorn, with the settings `learnlog
    serve` gives uvicorn (uvloop, httptools, no access log, no proxy or server headers),
    in its own process group like learnlog's servers."""

    def __init__(self, module: str, workdir: Path, tag: str, workers: int) -> None:
        super().__init__("", workdir, tag, workers)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNLOG_")}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.module = module

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", str(self.workers), "--loop", "uvloop",
                "--http", "httptools", "--log-level", "warning", "--no-access-log",
                "--no-proxy-headers", "--no-server-header", "--app-dir", str(REFS),
                f"{self.module}:app"]


def check_envelope(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or \
            body.get("responseCode") != "OK":
        raise BenchError(f"{what}: HTTP {response.status_code} {response.text[:1500]}")
    return body


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# -- databases -----------------------------------------------------------------------------------

def drop_now(drop: Any) -> None:
    cleanup.remove(drop)
    drop()


# -- wrk ---------------------------------------------------------------------------------------

@dataclass
class Settings:
    duration: int
    warmup: int
    threads: int
    connections: int
    events_connections: int
    workers: int
    timeout: int
    wait_idle: float = 0.0  # seconds to wait for a quiet machine before each measured run
    only: tuple[str, ...] = ()  # --only: the runs to do (empty: all of them)

    def wants(self, *names: str) -> bool:
        """Whether any of these runs is part of this suite run."""
        return not self.only or any(name in self.only for name in names)


# Names for --only, each a run (or a part) of the suite; the references are measured
# whenever an engine has an HTTP run, so `--only update` compares the route with both.
RUNS: dict[str, str] = {
    "refs": "the two reference apps only (FastAPI and raw ceilings)",
    "update": "POST /v1/view/update (64 clients)",
    "lag": "group aggregate lag, probed during the view/update run (implies update)",
    "validate": "POST /v1/view/update/validate, learnlog's edge cost (info)",
    "events": "POST /v1/events, batches of 1,000",
    "trackprogress": "PUT /api/logger/trackprogress/{id}/",
    "read": "POST /v1/view/read of 20 contents, small and large tables",
    "summary_list": "GET /v1/summary/list/{userId}, small and large tables",
    "redis": "view/read on the large table with the Redis cache on",
    "export": "CSV export (export_bench.py)",
    "sync": "sync of 1M facts (sync_bench.py)",
    "logs": "tracking-log analytics (logs_bench.py)",
}
WRITE_RUNS = ("update", "lag", "validate", "events", "trackprogress")
READ_RUNS = ("read", "summary_list", "redis")
REFERENCES = (("fastapi", "fastapi_ceiling"), ("raw", "raw_ceiling"))
# `--only refs` has no database to mint a token: a placeholder as long as a learnlog admin
# token (205 characters), since the references only check that a bearer token is there
REFS_ONLY_TOKEN = "bench-reference-token.".ljust(205, "x")


def wait_for_quiet(limit: float, threshold: float = 0.15) -> float:
    """Wait (up to `limit` s) until other processes leave the machine idle; seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if background_load(1.0) <= threshold:
            break
    waited = time.perf_counter() - t0
    if waited > 1.5:
        err.print(f"  (waited {waited:.0f} s for a quiet machine)")
    return waited


def run_wrk(name: str, script: str, base: str, token: str, lines_file: Path,
            cfg: Settings, *, server: Server, connections: int | None = None,
            duration: int | None = None, measure: bool = True,
            timeout: int | None = None, pg_url: str | None = None,
            alongside: Any = None) -> dict[str, Any]:
    """Run wrk once; return its JSON summary plus CPU accounting and the command line.
    `alongside` (start/stop) runs for exactly as long as wrk does."""
    conns = connections or cfg.connections
    secs = duration or cfg.duration
    cmd = ["wrk", f"-t{cfg.threads}", f"-c{conns}", f"-d{secs}s",
           f"--timeout={timeout or cfg.timeout}s", "--latency", "-s", str(LUA / script), base]
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_FILE=str(lines_file), BENCH_NAME=name,
               BENCH_THREADS=str(cfg.threads))
    waited = wait_for_quiet(cfg.wait_idle) if measure and cfg.wait_idle > 0 else 0.0
    sessions0 = pg_sessions(pg_url) if pg_url and measure else None
    pg_url = pg_url if measure else None
    window = CpuWindow(server.pgid)
    window.start()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if alongside is not None:
        alongside.start()
    out, errs = _communicate(proc)
    if alongside is not None:
        alongside.stop()
    # wait4 gives wrk's own CPU time (all its threads) exactly.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    # sessions opened during the run, approximately (-1: the first query's own session)
    sessions = pg_sessions(pg_url) - sessions0 - 1 if pg_url and sessions0 is not None else None
    window.stop(pg_family(pg_url) if pg_url else None)
    text = out.decode(errors="replace")
    if not server.alive():
        raise BenchError(f"the server died during wrk {name} (exit {server.exit_code()}; "
                         "exit 0 or -15 means something sent it SIGTERM):\n"
                         f"{server.log_tail()}")
    if proc.returncode != 0:
        raise BenchError(f"wrk {name} exited {proc.returncode}: "
                         f"{errs.decode(errors='replace')[-2000:]}\n{text[-2000:]}")
    lines = [line for line in text.splitlines() if line.startswith('{"bench":')]
    if not lines:
        raise BenchError(f"wrk {name}: no JSON summary in its output:\n{text[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    wrk_cpu = usage.ru_utime + usage.ru_stime
    wall = window.wall
    if sessions is not None:
        result["pg_sessions_opened"] = sessions
    result["command"] = " ".join(shlex.quote(c) for c in cmd)
    result["waited_for_quiet_s"] = round(waited, 1)
    result["cpu"] = {
        "wall_s": round(wall, 3),
        "wrk_cpu_s": round(wrk_cpu, 3),
        "wrk_cores": round(wrk_cpu / wall, 3),
        "wrk_share": round(wrk_cpu / (wall * NCPU), 4),
        "server_share": round(window.server_s / (wall * NCPU), 4),
        "postgres_share": round(window.postgres_s / (wall * NCPU), 4),
        "redis_share": round(window.redis_s / (wall * NCPU), 4),
        "machine_busy_share": round(window.machine_busy_s / (wall * NCPU), 4),
        # everything else that ran: other users of the machine contaminate the figures
        "other_share": round(max(0.0, window.machine_busy_s - wrk_cpu - window.server_s
                                 - window.postgres_s - window.redis_s) / (wall * NCPU), 4),
    }
    if result["requests"]:
        # CPU per request barely depends on other users of the machine: compare these
        result["cpu"]["server_ms_per_request"] = round(
            window.server_s * 1000 / result["requests"], 3)
        result["cpu"]["postgres_ms_per_request"] = round(
            window.postgres_s * 1000 / result["requests"], 3)
    result["wrk_text"] = "\n".join(line for line in text.splitlines()
                                   if not line.startswith('{"bench":'))
    errors = result["errors"]
    result["error_count"] = (errors["connect"] + errors["read"] + errors["write"]
                             + errors["timeout"] + errors["non2xx"])
    if result["requests"] == 0:
        result["error_count"] += 1
    if measure:
        lat = result["latency_ms"]
        colour = "red" if result["error_count"] else "green"
        err.print(f"  [{colour}]{name}[/{colour}]: {result['rps']:,.0f} req/s  "
                  f"p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f} ms  "
                  f"errors {result['error_count']}  "
                  f"(wrk {result['cpu']['wrk_share']:.0%} of the machine, "
                  f"machine busy {result['cpu']['machine_busy_share']:.0%})")
        if result["error_count"]:
            err.print(f"    first bad response: {result.get('first_bad')}")
    return result


def pg_sessions(url: str) -> int:
    """Sessions ever opened on this database (pg_stat_database.sessions, PostgreSQL 14+)."""
    import psycopg

    with psycopg.connect(seeding._pg_conninfo(url), autocommit=True) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database "
                           "WHERE datname = current_database()").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _communicate(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Read stdout and stderr to EOF without reaping the process (wait4 does that)."""
    import threading

    chunks: dict[str, bytes] = {}

    def drain(stream: Any, key: str) -> None:
        chunks[key] = stream.read()
        stream.close()

    readers = [threading.Thread(target=drain, args=(proc.stdout, "out")),
               threading.Thread(target=drain, args=(proc.stderr, "err"))]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    return chunks.get("out", b""), chunks.get("err", b"")


# -- the references ------------------------------------------------------------------------------

def measure_refs(engine: str, workdir: Path, cfg: Settings, results: dict[str, Any],
                 token: str) -> None:
    """The FastAPI and raw ceilings of SPEC §8 (benchmarks/refs/), with the `view/update`
    run's script, bodies and token, one server at a time, no learnlog server running."""
    if f"{engine}/refs/fastapi" in results:
        return
    bodies = workdir / "refs-update.jsonl"
    if not bodies.exists():
        bodies.write_text("".join(dumps({"request": update_body(k)}) + "\n"
                                  for k in write_pool()))
    probe = json.loads(bodies.read_text().split("\n", 1)[0])
    for name, module in REFERENCES:
        with RefServer(module, workdir, f"{engine}-ref-{name}", cfg.workers) as server:
            answer = httpx.post(server.base + "/v1/view/update", json=probe, timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
            check_envelope(answer, f"reference {name}: POST /v1/view/update")
            run_wrk("warmup", "update.lua", server.base, token, bodies, cfg,
                    duration=cfg.warmup, measure=False, server=server)
            results[f"{engine}/refs/{name}"] = run_wrk(
                f"{engine}/refs/{name}", "update.lua", server.base, token, bodies, cfg,
                server=server)


# The write floors (refs/write_floor.py): the minimum for a design that folds in the
# application (two round trips per batch), and the same work a statement per step.
WRITE_FLOORS = (("write_floor", 2), ("write_floor_steps", 6))


def measure_write_floor(pg_url: str, bodies: Path, token: str, workdir: Path,
                        cfg: Settings, name: str, trips: int) -> dict[str, Any]:
    """`refs/write_floor.py` on the database of the `view/update` run, under the same
    server settings, script and bodies, with as many writer lanes as learnlog."""
    server = RefServer("write_floor", workdir, f"postgresql-{name}", cfg.workers)
    server.env["WRITE_FLOOR_URL"] = pg_url.replace("postgresql+psycopg://", "postgresql://")
    server.env["WRITE_FLOOR_LANES"] = str(WRITER_LANES)
    server.env["WRITE_FLOOR_ROUND_TRIPS"] = str(trips)
    with server:
        probe = json.loads(bodies.read_text().split("\n", 1)[0])
        check_envelope(httpx.post(server.base + "/v1/view/update", json=probe, timeout=30,
                                  headers={"Authorization": f"Bearer {token}"}),
                       "write floor: POST /v1/view/update")
        run_wrk("warmup", "update.lua", server.base, token, bodies, cfg,
                duration=cfg.warmup, measure=False, server=server)
        return run_wrk(f"postgresql/{name}", "update.lua", server.base, token, bodies,
                       cfg, server=server, pg_url=pg_url)


# -- the write phase ----------------------------------------------------------------------------

def write_pool() -> list[dict[str, str]]:
    """Keys of the update pool, interleaved so consecutive requests hit different learners."""
    keys = []
    for n in range(WRITE_USERS * WRITE_CONTENTS):
        u, j = n % WRITE_USERS, n // WRITE_USERS
        c = u % WRITE_COLLECTIONS
        keys.append({"userId": f"wu{u:05d}", "contentId": f"wcol{c:02d}-c{j:02d}",
                     "collectionId": f"wcol{c:02d}", "contextId": f"wctx{c:02d}"})
    return keys


def event_batches() -> list[list[dict[str, str]]]:
    """EVENT_BATCHES batches of EVENT_BATCH distinct keys; no key is in two batches."""
    per_batch_users = EVENT_BATCH // EVENT_CONTENTS
    batches = []
    for b in range(EVENT_BATCHES):
        keys = []
        for u in range(b * per_batch_users, (b + 1) * per_batch_users):
            c = u % EVENT_COLLECTIONS
            for j in range(EVENT_CONTENTS):
                keys.append({"userId": f"eu{u:05d}", "contentId": f"ecol{c:02d}-c{j:02d}",
                             "collectionId": f"ecol{c:02d}", "contextId": f"ectx{c:02d}"})
        batches.append(keys)
    return batches


def update_body(key: dict[str, str]) -> dict[str, Any]:
    return {**key, "timespent": 1, "progress": 37, "progressDetails": {"current": 5}}


def register_collections(client: httpx.Client, prefix: str, count: int, contents: int,
                         ctx_prefix: str) -> None:
    for c in range(count):
        cid = f"{prefix}{c:02d}"
        children = [{"identifier": f"{cid}-c{j:02d}", "type": "content", "name": f"c{j}"}
                    for j in range(contents)]
        check_envelope(client.put(f"/v1/collection/{cid}", json={"request": {
            "name": f"Benchmark {cid}", "children": children}}), f"PUT /v1/collection/{cid}")
        check_envelope(client.put(f"/v1/context/{ctx_prefix}{c:02d}", json={"request": {
            "collectionId": cid, "name": f"Benchmark context {c}"}}),
            f"PUT /v1/context/{ctx_prefix}{c:02d}")


def start_keys(client: httpx.Client, keys: list[dict[str, str]]) -> None:
    """view.start every key, 1,000 per /v1/events request."""
    for s in range(0, len(keys), EVENT_BATCH):
        chunk = keys[s:s + EVENT_BATCH]
        body = {"request": {"events": [{"type": "view.start", **k} for k in chunk]}}
        result = check_envelope(client.post("/v1/events", json=body),
                                f"POST /v1/events (view.start x{len(chunk)})")["result"]
        if result.get("applied") != len(chunk):
            raise BenchError(f"POST /v1/events (view.start): result {result}, "
                             f"expected applied={len(chunk)}")


TRACK_LEARNERS = 2000  # learners with an exercise session each, for PUT trackprogress


def outbox_depth(url: str) -> int:
    """Rows waiting in the instance's outbox."""
    from sqlalchemy import create_engine

    from learnlog.jobs.outbox import pending
    from learnlog.store.db import normalise_url

    engine = create_engine(normalise_url(url))
    try:
        return pending(engine)
    finally:
        engine.dispose()


def instance_secret(url: str) -> str:
    """The token secret the instance generated and stored (tokens of many learners are
    minted here rather than by one `learnlog token` process each)."""
    from sqlalchemy import create_engine, text

    from learnlog.store.db import normalise_url

    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT value FROM meta WHERE key = 'jwt_secret'"))
                       .scalar_one())
    finally:
        engine.dispose()


def start_exercises(base: str, secret: str, path: Path) -> None:
    """One exercise session per learner; writes the PUT lines for trackprogress.lua."""
    from learnlog.api.auth import mint

    lines = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for n in range(TRACK_LEARNERS):
            token = mint(secret, f"tracker-{n:05d}", ["learner"])
            started = client.post("/api/logger/trackprogress/", json={
                "content_id": f"ex{n % 20}", "kind": "exercise",
                # Kolibri's usual kind of criterion; every answer below is wrong, so the
                # try never completes and its attempts keep growing all run long.
                "mastery_model": {"type": "m_of_n", "m": 5, "n": 10}},
                headers={"Authorization": f"Bearer {token}"})
            if started.status_code != 200:
                raise BenchError(f"POST trackprogress: {started.status_code} {started.text}")
            body = dumps({"time_spent_delta": 5, "interactions": [{
                "item": f"q{n % 50}", "correct": 0, "time_spent": 5,
                "answer": {"response": "42"}}]})
            lines.append(f"{token}\t/api/logger/trackprogress/{started.json()['session_id']}/"
                         f"\t{body}\n")
    path.write_text("".join(lines))


def write_phase(engine: str, dbs: Databases, workdir: Path, cfg: Settings,
                results: dict[str, Any]) -> None:
    parts = [name for name in WRITE_RUNS if cfg.wants(name)]
    err.rule(f"{engine}: references, writes ({', '.join(parts)}) and verify")
    do_update = cfg.wants("update", "lag")
    url, drop = dbs.fresh(engine, f"{engine}-write")
    pg_url = url if engine == "postgresql" else None
    env = app_env(url, workdir)
    cli(["migrate"], env, workdir)
    token = cli(["token", "--sub", "bench-admin", "--role", "admin"], env, workdir).stdout.strip()
    keys = write_pool()
    batches = event_batches()
    files = workdir / f"{engine}-write"
    files.mkdir(exist_ok=True)
    update_file = files / "update.jsonl"
    update_file.write_text("".join(dumps({"request": update_body(k)}) + "\n" for k in keys))
    events_file = files / "events.jsonl"
    if cfg.wants("events"):
        events_file.write_text("".join(dumps({"request": {"events": [
            {"type": "view.update", **update_body(k)} for k in batch]}}) + "\n"
            for batch in batches))
    # The ceilings first, while no learnlog server runs: the same machine, minutes apart.
    measure_refs(engine, workdir, cfg, results, token)
    with Server(url, workdir, f"{engine}-write", cfg.workers) as server:
        headers = {"Authorization": f"Bearer {token}"}
        validate_ok = cfg.wants("validate")
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
            t0 = time.perf_counter()
            started = 0
            if cfg.wants("update", "lag", "validate"):  # the update pool
                register_collections(client, "wcol", WRITE_COLLECTIONS, WRITE_CONTENTS, "wctx")
                start_keys(client, keys)
                started += len(keys)
            if cfg.wants("events"):
                register_collections(client, "ecol", EVENT_COLLECTIONS, EVENT_CONTENTS, "ectx")
                start_keys(client, [k for batch in batches for k in batch])
                started += EVENT_BATCHES * EVENT_BATCH
            err.print(f"  started {started:,} keys in {time.perf_counter() - t0:.1f} s")
            # Preflight: one of each, checked in full, before wrk only counts statuses.
            probe = {"request": update_body(keys[0])}
            if validate_ok:
                # learnlog's own edge-cost route may be removed: a 404 (or 405) skips its row
                answer = client.post("/v1/view/update/validate", json=probe)
                if answer.status_code in (404, 405):
                    validate_ok = False
                    note = (f"`POST /v1/view/update/validate` answered {answer.status_code} "
                            "(the route is gone): not measured")
                    results[f"{engine}/validate"] = {"skipped": note}
                    err.print(f"  [yellow]{engine}/validate skipped[/yellow]: {note}")
                else:
                    check_envelope(answer, "POST /v1/view/update/validate")
            if do_update:
                check_envelope(client.post("/v1/view/update", json=probe),
                               "POST /v1/view/update")
                read = check_envelope(client.post("/v1/view/read", json={"request": {
                    **{k: v for k, v in keys[0].items() if k != "contentId"},
                    "contentId": [keys[0]["contentId"]]}}), "POST /v1/view/read")
                row = read["result"]["contents"][0]
                if row["status"] != 1 or row["progress"] != 37:
                    raise BenchError(f"after one update, view/read gives {row}; expected "
                                     "status 1, progress 37")
        if cfg.wants("lag"):
            group_lag.setup(server.base, token, WRITE_USERS, WRITE_COLLECTIONS,
                            lambda: outbox_depth(url), err.print)
        lag_probe = None
        if do_update:
            run_wrk("warmup", "update.lua", server.base, token, update_file, cfg,
                    duration=cfg.warmup, measure=False, server=server)
            lag_probe = group_lag.LagProbe(server.base, token) if cfg.wants("lag") else None
            results[f"{engine}/update"] = run_wrk(f"{engine}/update", "update.lua",
                                                 server.base, token, update_file, cfg,
                                                 server=server, pg_url=pg_url,
                                                 alongside=lag_probe)
        if lag_probe is not None:
            lag = results[f"{engine}/group_lag"] = lag_probe.result()
            colour = "green" if lag["ok"] else "red"
            err.print(f"  [{colour}]{engine}/group_lag[/{colour}]: {lag['samples']} probes, "
                      f"p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms, max {lag['max_ms']} ms"
                      f"{', ' + str(lag['timeouts']) + ' timeouts' if lag['timeouts'] else ''}"
                      f"{', error ' + lag['error'] if lag['error'] else ''}")
        if validate_ok:
            results[f"{engine}/validate"] = run_wrk(f"{engine}/validate", "validate.lua",
                                                   server.base, token, update_file, cfg,
                                                   server=server, pg_url=pg_url)
        if cfg.wants("events"):
            run_wrk("warmup", "events.lua", server.base, token, events_file, cfg,
                    connections=cfg.events_connections, duration=cfg.warmup, measure=False,
                    timeout=60, server=server)
            results[f"{engine}/events"] = run_wrk(
                f"{engine}/events", "events.lua", server.base, token, events_file, cfg,
                connections=cfg.events_connections, server=server, timeout=60, pg_url=pg_url)
            results[f"{engine}/events"]["events_per_request"] = EVENT_BATCH
        if cfg.wants("trackprogress"):
            track_file = files / "trackprogress.tsv"
            start_exercises(server.base, instance_secret(url), track_file)
            run_wrk("warmup", "trackprogress.lua", server.base, token, track_file, cfg,
                    duration=cfg.warmup, measure=False, server=server)
            results[f"{engine}/trackprogress"] = run_wrk(
                f"{engine}/trackprogress", "trackprogress.lua", server.base, token,
                track_file, cfg, server=server, pg_url=pg_url)
    t0 = time.perf_counter()
    done = cli(["verify"], app_env(url, workdir), workdir, timeout=3600, check=False)
    last = [line for line in done.stderr.splitlines() if line.strip()]
    results[f"{engine}/verify"] = {
        "exit": done.returncode, "seconds": round(time.perf_counter() - t0, 2),
        "summary": next((line for line in reversed(last) if line.startswith("checked")),
                        last[-1] if last else ""),
        "differences": [line for line in last if "difference" in line][:10],
    }
    colour = "green" if done.returncode == 0 else "red"
    err.print(f"  [{colour}]learnlog verify exit {done.returncode}[/{colour}]: "
              f"{results[f'{engine}/verify']['summary']}")
    if pg_url and do_update:  # after verify: it rewrites the update pool's rows
        for name, trips in WRITE_FLOORS:
            results[f"{engine}/{name}"] = measure_write_floor(
                pg_url, update_file, token, workdir, cfg, name, trips)
    if pg_url and f"{engine}/events" in results:  # after verify: it rewrites event rows
        floor = results[f"{engine}/events_floor"] = events_floor.measure(
            pg_url.replace("postgresql+psycopg://", "postgresql://"),
            cfg.workers * WRITER_LANES, cfg.duration)
        err.print(f"  {engine}/events floor: {floor['events_per_second']:,} events/s "
                  f"({floor['writers']} writers, no learnlog code)")
    drop_now(drop)


# -- the read phase ------------------------------------------------------------------------------

def read_phase(engine: str, rows: int, label: str, dbs: Databases, workdir: Path,
               cfg: Settings, results: dict[str, Any], redis_url: str | None) -> None:
    err.rule(f"{engine}: reads with {label} summary rows")
    url, drop = dbs.fresh(engine, f"{engine}-read-{label}")
    pg_url = url if engine == "postgresql" else None
    seeded = seeding.seed(url, rows)
    results[f"{engine}/seed/{label}"] = {"rows": seeded.rows, "users": seeded.users,
                                          "seconds": seeded.seconds,
                                          "rows_per_second": seeded.rows_per_second}
    err.print(f"  seeded {rows:,} rows in {seeded.seconds:.1f} s")
    env = app_env(url, workdir)
    token = cli(["token", "--sub", "bench-admin", "--role", "admin"], env, workdir).stdout.strip()
    # No write phase for this engine in this run (--only, --skip-writes): the ceilings here.
    measure_refs(engine, workdir, cfg, results, token)
    rng = random.Random(rows)
    users = seeded.users
    pool = rng.sample(range(users), min(users, READ_POOL))
    files = workdir / f"{engine}-read-{label}"
    files.mkdir(exist_ok=True)
    read_file = files / "read.jsonl"
    list_file = files / "summary_list.txt"
    with read_file.open("w") as f:
        for i in pool:
            c = seeding.collection_of(i)
            f.write(dumps({"request": {
                "userId": seeding.user_id(i),
                "contentId": [seeding.content_id(c, j) for j in range(seeding.CONTENTS)],
                "collectionId": seeding.collection_id(c),
                "contextId": seeding.context_id(c)}}) + "\n")
    list_file.write_text("".join(f"/v1/summary/list/{seeding.user_id(i)}\n" for i in pool))
    variants: list[tuple[str, str | None]] = []
    if cfg.wants("read", "summary_list"):
        variants.append(("", None))
    if label == "large" and cfg.wants("read"):
        variants.append(("-db", None))  # the worker's memory off: what a miss costs
    if redis_url and label == "large" and cfg.wants("redis"):
        variants.append(("+redis", redis_url))
    for suffix, cache in variants:
        prefix = f"learnlog-bench-{os.getpid()}-{engine}-{label}:"
        if cache:
            cleanup.push(f"redis {prefix}", lambda u=cache, p=prefix: _redis_clear(u, p))
        serving = Server(url, workdir, f"{engine}-read-{label}{suffix}", cfg.workers, cache,
                         prefix)
        if suffix == "-db":
            serving.env["LEARNLOG_READ_CACHE_MB"] = "0"
        with serving as server:
            with httpx.Client(base_url=server.base, timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as client:
                check_seeded_answers(client, pool[:3])
            warmup: float = cfg.warmup
            if cache or not suffix:
                # A cache answers only for learners read once already (the workers' memory:
                # by the same worker, store/readcache.py): warm up long enough for every learner of
                # the pool to be read by every worker (wrk cycles over the pool).
                before = results.get(f"{engine}/read/{label}", {}).get("rps", 2000.0)
                readers = 1 if cache else cfg.workers
                warmup = min(120.0, max(3.0 * cfg.warmup,
                                        1.5 * readers * len(pool) / max(before, 50.0)))
            if cache or cfg.wants("read"):
                run_wrk("warmup", "read.lua", server.base, token, read_file, cfg,
                        duration=round(warmup), measure=False, server=server)
                stats0 = _redis_stats(cache) if cache else None
                result = run_wrk(f"{engine}/read{suffix}/{label}", "read.lua", server.base,
                                 token, read_file, cfg, server=server, pg_url=pg_url)
                if cache and stats0 is not None:
                    stats1 = _redis_stats(cache)
                    result["redis"] = {"warmup_s": round(warmup),
                                       "keyspace_hits": stats1[0] - stats0[0],
                                       "keyspace_misses": stats1[1] - stats0[1],
                                       "hashes_cached": _redis_count(cache, prefix)}
                    err.print(f"    redis during the run: {result['redis']}")
                results[f"{engine}/read{suffix}/{label}"] = result
            if not cache and not suffix and cfg.wants("summary_list"):
                run_wrk("warmup", "summary_list.lua", server.base, token, list_file, cfg,
                        duration=round(warmup), measure=False, server=server)
                results[f"{engine}/summary_list/{label}"] = run_wrk(
                    f"{engine}/summary_list/{label}", "summary_list.lua", server.base, token,
                    list_file, cfg, server=server, pg_url=pg_url)
            for key in [k for k in results if k.endswith(f"/{label}") and engine in k]:
                results[key].setdefault("rows", rows)
    drop_now(drop)


def _redis_stats(url: str) -> tuple[int, int]:
    import redis

    stats = redis.Redis.from_url(url).info("stats")
    return int(stats["keyspace_hits"]), int(stats["keyspace_misses"])


def _redis_count(url: str, prefix: str) -> int:
    import redis

    return sum(1 for _ in redis.Redis.from_url(url).scan_iter(match=prefix + "*", count=1000))


def _redis_clear(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    batch = []
    for key in client.scan_iter(match=prefix + "*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


def check_seeded_answers(client: httpx.Client, users: list[int]) -> None:
    """The app must read back exactly what seed.py wrote (statuses, enrolment figures)."""
    n = seeding.CONTENTS
    for i in users:
        uid, c = seeding.user_id(i), seeding.collection_of(i)
        k = seeding.completed_of(i)
        body = {"request": {"userId": uid,
                            "contentId": [seeding.content_id(c, j) for j in range(n)],
                            "collectionId": seeding.collection_id(c),
                            "contextId": seeding.context_id(c)}}
        got = check_envelope(client.post("/v1/view/read", json=body), "POST /v1/view/read")
        contents = got["result"]["contents"]
        want = [(2, 100) if j < k else (1, 25) for j in range(n)]
        seen = [(r["status"], r["progress"]) for r in contents]
        if seen != want:
            raise BenchError(f"POST /v1/view/read {dumps(body)} gave (status, progress) "
                             f"{seen}; the seed wrote {want}")
        listed = check_envelope(client.get(f"/v1/summary/list/{uid}"),
                                f"GET /v1/summary/list/{uid}")["result"]["summary"]
        if len(listed) != 1:
            raise BenchError(f"GET /v1/summary/list/{uid}: {len(listed)} enrolments, "
                             "expected 1")
        e = listed[0]
        statuses = {seeding.content_id(c, j): (2 if j < k else 1) for j in range(n)}
        expect = {"collectionId": seeding.collection_id(c),
                  "contextId": seeding.context_id(c), "contentStatus": statuses,
                  "progress": seeding._percent(k, n), "status": 2 if k == n else 1}
        wrong = {key: e.get(key) for key, value in expect.items() if e.get(key) != value}
        if wrong:
            raise BenchError(f"GET /v1/summary/list/{uid}: {wrong}; expected "
                             f"{ {key: expect[key] for key in wrong} }")


# -- the report ----------------------------------------------------------------------------------

@dataclass
class Row:
    figure: str
    engine: str
    target: str
    measured: dict[str, Any] | None
    derived: str
    ok: bool | None  # None: informational
    key: str
    note: str = ""
    fa_share: float | None = None  # throughput as a share of the FastAPI ceiling
    raw_share: float | None = None  # … and of the raw ceiling


def _fmt_rps(r: dict[str, Any] | None) -> tuple[str, str, str]:
    if not r:
        return "—", "—", "—"
    lat = r["latency_ms"]
    return f"{r['rps']:,.0f}", f"{lat['p50']:.1f}", f"{lat['p99']:.1f}"


# SPEC §8 targets, as shares of the FastAPI ceiling measured in the same run
UPDATE_SHARE, READ_SHARE, TRACK_SHARE = 0.60, 1.00, 0.40
UPDATE_P99_MS, READ_P99_MS, TRACK_P99_MS = 50.0, 20.0, 50.0
EVENTS_PER_S = 100_000  # SPEC §8's figure; what the floor allows on a faster machine
EVENTS_FLOOR_SHARE = 0.5  # of events_floor.py's events/s, measured in the same run
UPDATE_FLOOR_SHARE = 0.60  # PostgreSQL view/update: of refs/write_floor.py's req/s (0022)
WRITER_LANES = 2  # learnlog's default writer lanes per process (PostgreSQL)
SPEC_ROWS = 10_000_000  # the table size of the read targets


def references(results: dict[str, Any], engine: str) -> tuple[dict[str, Any] | None,
                                                                dict[str, Any] | None]:
    """The FastAPI and raw ceilings measured in this engine's phase (None: not measured)."""
    fa = results.get(f"{engine}/refs/fastapi")
    raw = results.get(f"{engine}/refs/raw")
    return (fa if fa and fa.get("rps") else None), (raw if raw and raw.get("rps") else None)


def shares(results: dict[str, Any], key: str) -> tuple[float | None, float | None]:
    """A learnlog run's throughput as a share of its engine's two ceilings: req/s over req/s,
    or for `POST /v1/events` events/s over req/s (SPEC §8: "≈ 12x the FastAPI ceiling in
    events")."""
    r = results.get(key)
    if not r or "rps" not in r or "/refs/" in key:
        return None, None
    rate = r["rps"] * r.get("events_per_request", 1)
    fa, raw = references(results, key.split("/")[0])
    return (rate / fa["rps"] if fa else None), (rate / raw["rps"] if raw else None)


SHARED_MACHINE = 0.10  # other processes above this share of the machine: say so


def contamination(r: dict[str, Any], fa: dict[str, Any]) -> str:
    """CPU per request (server + PostgreSQL) against the FastAPI ceiling's: a figure other
    users of the machine move far less than req/s; and a word when they took CPU."""
    def per_request(x: dict[str, Any]) -> float:
        c = x.get("cpu", {})
        return float(c.get("server_ms_per_request", 0) + c.get("postgres_ms_per_request", 0))

    text = ""
    mine, ceiling = per_request(r), per_request(fa)
    if mine and ceiling:
        text = f"CPU/request {mine / ceiling:.1f}x the FastAPI ceiling's"
    others = (r.get("cpu", {}).get("other_share", 0.0), fa.get("cpu", {}).get("other_share", 0.0))
    if max(others) > SHARED_MACHINE:
        text += (f"{'; ' if text else ''}shared machine: other processes took "
                 f"{pct(others[0])} during this run, {pct(others[1])} during the ceiling's")
    return text


def evaluate(results: dict[str, Any], engines: list[str], large_label: str,
             large_rows: int, small_rows: int) -> list[Row]:
    rows: list[Row] = []

    def clean(r: dict[str, Any] | None) -> bool:
        return bool(r) and r["error_count"] == 0  # type: ignore[index]

    def against(key: str, title: str, target: str, share_min: float, p99_max: float,
                judge: bool = True, note: str = "", floor_key: str = "") -> None:
        """A learnlog route judged as a share of the FastAPI ceiling (or of the reference
        `floor_key`, when given) and by its p99."""
        r = results.get(key)
        if not r:
            return
        engine = key.split("/")[0]
        fa, raw = references(results, engine)
        fa_share, raw_share = shares(results, key)
        floor = results.get(floor_key) if floor_key else None
        yardstick, share = fa, fa_share
        if floor_key:  # judged against that reference instead of the FastAPI ceiling
            yardstick = floor if floor and floor.get("rps") else None
            share = r["rps"] / yardstick["rps"] if yardstick else None
        if yardstick is None or share is None:
            ok, note = None, note or (f"no {floor_key} measured in this run" if floor_key
                                      else "no FastAPI ceiling measured in this run")
        else:
            ok = (clean(r) and clean(yardstick) and share >= share_min
                  and r["latency_ms"]["p99"] <= p99_max)
        derived = "" if fa is None else f"FastAPI ceiling {fa['rps']:,.0f} req/s"
        if raw is not None:
            derived += f"{'; ' if derived else ''}raw ceiling {raw['rps']:,.0f} req/s"
        if floor_key and yardstick is not None and share is not None:
            derived += (f"{'; ' if derived else ''}{share:.0%} of the write floor, "
                        f"{yardstick['rps']:,.0f} req/s (`refs/write_floor.py`)")
        if fa is not None:
            derived += "; " + contamination(r, fa)
        rows.append(Row(title, engine, target, r, derived, ok if judge else None, key, note,
                        fa_share, raw_share))

    for engine in engines:
        for name, title in (("fastapi", "reference: FastAPI ceiling (pydantic, writes "
                                        "nothing), 64 clients"),
                            ("raw", "reference: raw ceiling (bare ASGI + msgspec, writes "
                                    "nothing), 64 clients")):
            ref = results.get(f"{engine}/refs/{name}")
            if ref:
                other = ref.get("cpu", {}).get("other_share", 0.0)
                note = (f"shared machine: other processes took {pct(other)} during this run"
                        if other > SHARED_MACHINE else "")
                rows.append(Row(title, engine, "— (the yardstick; must answer without errors)",
                                ref, note, None if clean(ref) else False,
                                f"{engine}/refs/{name}"))
        if engine == "postgresql":  # decision 0022: against the write floor
            against(f"{engine}/update", "`view/update`, 64 concurrent clients",
                    f"≥ {pct(UPDATE_FLOOR_SHARE)} of PostgreSQL's write floor measured in "
                    f"the same run (decision 0022), p99 ≤ {UPDATE_P99_MS:.0f} ms",
                    UPDATE_FLOOR_SHARE, UPDATE_P99_MS, floor_key=f"{engine}/write_floor")
        else:
            against(f"{engine}/update", "`view/update`, 64 concurrent clients",
                    f"≥ {pct(UPDATE_SHARE)} of the FastAPI ceiling, p99 ≤ "
                    f"{UPDATE_P99_MS:.0f} ms", UPDATE_SHARE, UPDATE_P99_MS)
        for name, trips in WRITE_FLOORS:
            against(f"{engine}/{name}", f"reference: write floor, {trips} round trips per "
                    "batch (raw edge + the database's part of each update, no learnlog "
                    "code), 64 clients", "info", 0.0, float("inf"), judge=False)
        validate = results.get(f"{engine}/validate")
        if validate and "skipped" in validate:
            rows.append(Row("`view/update/validate` (learnlog's edge cost: validation, JWT, "
                            "envelope; writes nothing)", engine, "info", None,
                            validate["skipped"], None, f"{engine}/validate"))
        elif validate:
            against(f"{engine}/validate", "`view/update/validate` (learnlog's edge cost: "
                    "validation, JWT, envelope; writes nothing)", "info", 0.0,
                    float("inf"), judge=False)
        lag = results.get(f"{engine}/group_lag")
        if lag:
            rows.append(Row(f"group aggregate lag under the `view/update` load (a group of "
                            f"{lag['group_members']:,} learners among 11 groups)", engine,
                            "p99 ≤ 2 s", None,
                            f"{lag['samples']} probes: p50 {lag['p50_ms']:,.0f} ms, p99 "
                            f"{lag['p99_ms']:,.0f} ms, max {lag['max_ms']:,.0f} ms"
                            + (f", {lag['timeouts']} timeouts" if lag["timeouts"] else "")
                            + (f", error {lag['error']}" if lag["error"] else ""),
                            lag["ok"], f"{engine}/group_lag"))
        against(f"{engine}/trackprogress", "`PUT /api/logger/trackprogress/{id}/` with one "
                "interaction, 64 concurrent clients",
                f"≥ {pct(TRACK_SHARE)} of the FastAPI ceiling, p99 ≤ {TRACK_P99_MS:.0f} ms",
                TRACK_SHARE, TRACK_P99_MS)
        ev = results.get(f"{engine}/events")
        if ev:
            per_s = ev["rps"] * ev.get("events_per_request", EVENT_BATCH)
            is_pg = engine == "postgresql"
            fa_share, raw_share = shares(results, f"{engine}/events")
            floor = results.get(f"{engine}/events_floor")
            floor_rate = floor["events_per_second"] if floor else None
            derived = f"{per_s:,.0f} events/s (shares: events/s over the ceilings' req/s)"
            if floor_rate:
                derived += (f"; {per_s / floor_rate:.0%} of the floor, {floor_rate:,} "
                            f"events/s ({floor['writers']} writers, `events_floor.py`)")
            rows.append(Row("`POST /v1/events`, batches of 1,000", engine,
                            f"≥ {pct(EVENTS_FLOOR_SHARE)} of PostgreSQL's floor measured in "
                            f"the same run (decision 0020; {EVENTS_PER_S:,} events/s on a "
                            "faster machine)" if is_pg else "— (target is for PostgreSQL)",
                            ev, derived,
                            (clean(ev) and floor_rate is not None
                             and per_s >= EVENTS_FLOOR_SHARE * floor_rate) if is_pg else None,
                            f"{engine}/events", "", fa_share, raw_share))
        for route, title in (("read", "`view/read` of 20 contents"),
                             ("summary_list", "`summary/list`")):
            big = results.get(f"{engine}/{route}/{large_label}")
            small = results.get(f"{engine}/{route}/small")
            if big:
                size_ok = large_rows >= SPEC_ROWS
                against(f"{engine}/{route}/{large_label}",
                        f"{title}, {large_rows:,} summary rows",
                        f"≥ {pct(READ_SHARE)} of the FastAPI ceiling, p99 ≤ {READ_P99_MS:.0f} ms "
                        f"(with {SPEC_ROWS // 1_000_000}M rows)", READ_SHARE, READ_P99_MS,
                        judge=size_ok,
                        note="" if size_ok else "fewer rows than the SPEC's 10M: not judged")
            if big and small:
                ratio = big["rps"] / small["rps"] if small["rps"] else 0.0
                p99r = (big["latency_ms"]["p99"] / small["latency_ms"]["p99"]
                        if small["latency_ms"]["p99"] else 0.0)
                rows.append(Row(f"{title}: cost independent of table size", engine,
                                f"req/s at {large_rows:,} rows ≥ {FLAT_MIN_RATIO:.0%} of "
                                f"req/s at {small_rows:,} (our threshold)", big,
                                f"{ratio:.0%} of the {small_rows:,}-row run "
                                f"({small['rps']:,.0f} req/s, p99 "
                                f"{small['latency_ms']['p99']:.1f} ms); p99 x{p99r:.2f}",
                                clean(big) and clean(small) and ratio >= FLAT_MIN_RATIO,
                                f"{engine}/{route}/{large_label}"))
    sync = results.get("sync")
    if sync:
        full = sync["facts"] >= syncing.TARGET_FACTS
        rows.append(Row(f"sync, {sync['facts']:,} facts (`learnlog sync`, server "
                        f"`--workers {sync['best_workers']}`)", "sqlite → postgresql",
                        f"{syncing.TARGET_FACTS:,} facts in ≤ {syncing.TARGET_SECONDS:.0f} s",
                        None, f"{sync['seconds']:,.1f} s, {sync['facts_per_second']:,} facts/s",
                        sync["ok"], "sync",
                        "" if full else f"fewer facts than the SPEC's {syncing.TARGET_FACTS:,}"))
    logs = results.get("logs")
    if logs:
        for run in logs["runs"]:
            duck = run["engine"] == "duckdb"
            rows.append(Row(
                f"tracking-log analytics, {logs['logs']['bytes'] / 1e9:.2f} GB "
                f"(`learnlog logs ingest`)", run["engine"],
                f"≥ {tracking.TARGET_RATE:,} events/s end to end" if duck
                else "(recorded: SPEC sets no Spark target)", None,
                f"{run['seconds']:,.1f} s, {run['events_per_second']:,} events/s, peak RSS "
                f"{run['peak_rss_mib']:,} MiB", logs["ok"] if duck else None,
                f"logs-{run['engine']}", "see ## Tracking logs"))
    return rows


def pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def pct_or_dash(x: float | None) -> str:
    return "—" if x is None else pct(x)


def write_report(path: Path, results: dict[str, Any], rows: list[Row], engines: list[str],
                 machine: dict[str, Any], command: str, commit: str, started: dt.datetime,
                 cfg: Settings, quick: bool, large_rows: int, small_rows: int,
                 redis_used: bool, elapsed: float) -> None:
    out: list[str] = []
    w = out.append
    w("# learnlog benchmark results")
    w("")
    w("Written by `benchmarks/run.py`; do not edit by hand. Targets: SPEC §8.")
    if quick:
        w("")
        w("> **QUICK MODE** — short runs and fewer rows: a smoke test of the suite, not the "
          "SPEC §8 measurement. Run without `--quick` (`make bench`) for that.")
    if cfg.only:
        w("")
        w(f"> **SUBSET** — only {', '.join(cfg.only)} (`--only`): the other figures were not "
          "measured in this run.")
    others = [r["cpu"].get("other_share", 0.0) for r in results.values() if "cpu" in r]
    if machine.get("busy_before", 0) > 0.15 or (others and max(others) > 0.10):
        w("")
        w(f"> **Warning: the machine was shared.** It was {machine.get('busy_before', 0):.0%} "
          f"busy before the suite started and other processes took up to "
          f"{max(others or [0]):.0%} of it during the measured runs (see the CPU table): the "
          "figures below understate what learnlog does on an idle machine.")
    w("")
    w(f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')} (suite took {elapsed / 60:.1f} min)")
    w(f"- Command: `{command}` (in `{ROOT}`)")
    w(f"- Git commit: `{commit}`")
    w(f"- Machine: {machine['nproc']} x {machine['cpu_model']}, {machine['ram_gib']} GiB RAM, "
      f"Linux {machine['kernel']}; one core runs the reference Python loop (10M additions) "
      f"in {machine.get('cpu_loop_s', 0):.2f} s (lower is faster; runs on a slower day "
      "are not comparable figure for figure)")
    soft = [f"Python {machine['python']}", f"SQLite {machine['sqlite']}"]
    if "postgresql" in machine:
        soft.append(f"PostgreSQL {machine['postgresql']} (server defaults, "
                    "`synchronous_commit=on`)")
    if "redis" in machine:
        soft.append(f"Redis {machine['redis']}")
    soft.append(machine["wrk"].split(" Copyright")[0])
    w(f"- Software: {', '.join(soft)}")
    w(f"- Server: `learnlog serve --workers {cfg.workers}` (uvicorn, uvloop, httptools), "
      "default settings, strict context mode; SQLite `synchronous=FULL` in WAL mode.")
    w(f"- References: `uvicorn --workers {cfg.workers} --loop uvloop --http httptools` serving "
      "`benchmarks/refs/fastapi_ceiling.py` (FastAPI ceiling) and "
      "`benchmarks/refs/raw_ceiling.py` (raw ceiling), one after the other, in each engine's "
      "phase.")
    w(f"- Load: `wrk -t{cfg.threads} -c{cfg.connections} -d{cfg.duration}s --latency` on the "
      f"same machine (events: `-c{cfg.events_connections}`), each run after a "
      f"{cfg.warmup} s warm-up. Latencies are wrk's (closed loop), in ms.")
    w("")
    w("## SPEC §8 figures")
    w("")
    w("| figure | engine | target | req/s | p50 ms | p99 ms | of FastAPI ceiling "
      "| of raw ceiling | derived | result |")
    w("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        rps, p50, p99 = _fmt_rps(r.measured)
        verdict = "info" if r.ok is None else ("**PASS**" if r.ok else "**FAIL**")
        errors = r.measured.get("error_count", 0) if r.measured else 0
        if errors:
            verdict += f" ({errors:,} errors)"
        note = f" ({r.note})" if r.note else ""
        w(f"| {r.figure}{note} | {r.engine} | {r.target} | {rps} | {p50} | {p99} | "
          f"{pct_or_dash(r.fa_share)} | {pct_or_dash(r.raw_share)} | "
          f"{r.derived or '—'} | {verdict} |")
    w("")
    w("The ceilings (SPEC §8) are two minimal apps of `benchmarks/refs/` measured in the same "
      "run, on the same machine, under the same server and load, with the very requests of "
      "the `view/update` run (`lua/update.lua`, same bodies and token): "
      "`refs/fastapi_ceiling.py`, a FastAPI route validating the body with pydantic, and "
      "`refs/raw_ceiling.py`, a bare ASGI callable decoding it with msgspec; both check that "
      "an `Authorization: Bearer` header is there (no JWT verification), write nothing and "
      "answer a Sunbird envelope. Each engine's figures are compared with the ceilings "
      "measured in that engine's phase, right before its learnlog server starts.")
    w("")
    if any(key.endswith("/group_lag") for key in results):
        w("Group aggregate lag (benchmarks/group_lag.py): during the measured `view/update` "
          "run, one probe write at a time, at most five a second — a learner of the "
          "10,000-learner group starts a content of the group's collection (a new "
          "enrolment) — and `POST /data/group/agg` polled every 10 ms until the group's "
          "`enrolledCount` shows it; lag = first answer that shows it minus the write's "
          "acknowledgement. The server handles the outbox "
          "in-process (the default).")
        w("")
    w("## Every run")
    w("")
    w("| run | rows stored | requests | req/s | of FastAPI ceiling | of raw ceiling | p50 ms "
      "| p90 ms | p99 ms | max ms | errors (non-2xx / socket) |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for key, r in results.items():
        if "latency_ms" not in r:
            continue
        lat, e = r["latency_ms"], r["errors"]
        sock = e["connect"] + e["read"] + e["write"] + e["timeout"]
        stored = f"{r['rows']:,}" if "rows" in r else "—"
        fa_share, raw_share = shares(results, key)
        unit = " (events/s)" if "events_per_request" in r and fa_share is not None else ""
        w(f"| {key} | {stored} | {r['requests']:,} | {r['rps']:,.0f} | "
          f"{pct_or_dash(fa_share)}{unit} | {pct_or_dash(raw_share)}{unit} | {lat['p50']:.1f} | "
          f"{lat['p90']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} | {e['non2xx']} / {sock} |")
    skipped = [f"{key}: {r['skipped']}" for key, r in results.items() if "skipped" in r]
    if skipped:
        w("")
        w("Skipped: " + "; ".join(skipped) + ".")
    w("")
    if any(key.endswith("/verify") for key in results):
        w("## Correctness after the write load")
        w("")
        w("`learnlog verify` (stored summaries and enrolments = the fold of the facts) on the "
          "database that took the write phase's load:")
        w("")
        w("| engine | exit | result | seconds |")
        w("| --- | ---: | --- | ---: |")
        for engine in engines:
            v = results.get(f"{engine}/verify")
            if v:
                verdict = "**PASS**" if v["exit"] == 0 else "**FAIL**"
                w(f"| {engine} | {v['exit']} | {verdict}: {v['summary']} | {v['seconds']} |")
        w("")
    if any("/seed/" in key for key in results):
        w("## Seeding (benchmarks/seed.py)")
        w("")
        w("| engine | summary rows | learners | seconds | rows/s |")
        w("| --- | ---: | ---: | ---: | ---: |")
        for key, r in results.items():
            if "/seed/" in key:
                w(f"| {key.split('/')[0]} | {r['rows']:,} | {r['users']:,} | "
                  f"{r['seconds']:.1f} | {r['rows_per_second']:,.0f} |")
        w("")
    if "export" in results:
        out.extend(exporting.section(results["export"]))
    if "sync" in results:
        out.extend(syncing.section(results["sync"]))
    if "logs" in results:
        out.extend(tracking.section(results["logs"]))
    w("## Is the load generator the bottleneck?")
    w("")
    w(f"CPU used during each measured run, as a share of the whole machine ({NCPU} cores = "
      "100 %): wrk from its own rusage, the server from its process group, PostgreSQL from "
      "the benchmark database's backends, the cluster's background processes and the "
      "backends that exited during the run (PostgreSQL runs only), Redis from its server "
      "process, the machine from /proc/stat; \"other processes\" is the rest.")
    w("")
    w("| run | wrk | wrk cores | server | postgres | redis | other processes | machine busy "
      "| server CPU ms/request | postgres CPU ms/request | PostgreSQL sessions opened (≈) |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    wrk_shares = []
    for key, r in results.items():
        if "cpu" not in r:
            continue
        c = r["cpu"]
        wrk_shares.append(c["wrk_share"])
        w(f"| {key} | {pct(c['wrk_share'])} | {c['wrk_cores']:.2f} | {pct(c['server_share'])} "
          f"| {pct(c['postgres_share'])} | {pct(c['redis_share'])} | "
          f"{pct(c.get('other_share', 0.0))} | {pct(c['machine_busy_share'])} | "
          f"{c.get('server_ms_per_request', 0):.2f} | {c.get('postgres_ms_per_request', 0):.2f} "
          f"| {r.get('pg_sessions_opened', '—')} |")
    if wrk_shares:
        w("")
        w("CPU ms per request (server processes, and PostgreSQL backends) hardly change when "
          "other processes share the machine, so they are the figures to compare between runs "
          "on a busy machine. Set beside the `refs/fastapi` row's, they give a route's budget: "
          f"at its target a route may cost about {1 / UPDATE_SHARE:.1f}x the FastAPI "
          f"ceiling's CPU per request (`view/update`), 1x (reads), {1 / TRACK_SHARE:.1f}x "
          "(trackprogress), server and PostgreSQL together. PostgreSQL sessions opened during "
          "a run (pg_stat_database.sessions) show connection churn: a server whose pools hold "
          "enough connections opens none once warm.")
        w("")
        w(f"wrk used {min(wrk_shares) * 100:.0f}-{max(wrk_shares) * 100:.0f} % of the "
          "machine. SPEC §8 counts the load generator in (2 cores, load generator included): "
          "whatever wrk uses is CPU the server did not have, for learnlog and the references "
          "alike. Where the machine is near 100 % busy the server is CPU-bound, not waiting on "
          "wrk; wrk would be the limit only if it saturated a core of its own (wrk cores ≈ "
          "threads) while the machine had idle time.")
    w("")
    w("## Method")
    w("")
    w(f"- Writes run on fresh, unseeded databases. {WRITE_COLLECTIONS} collections of "
      f"{WRITE_CONTENTS} contents are registered (`PUT /v1/collection`, `PUT /v1/context`), "
      f"then {WRITE_USERS * WRITE_CONTENTS:,} keys ({WRITE_USERS:,} learners x "
      f"{WRITE_CONTENTS} contents) are started with `view.start` events. Each `view/update` "
      "request hits the next key of that pool (consecutive requests: different learners), "
      "body `{timespent: 1, progress: 37, progressDetails: {current: 5}}`. The same bodies "
      "go to learnlog's own `view/update/validate` (validates and authenticates, writes "
      "nothing: learnlog's edge cost, info only, skipped when the route is gone) right after, "
      "on the same server.")
    w("- References: before an engine's learnlog server starts, each reference app is "
      "started under uvicorn (same workers, loop and HTTP parser as `learnlog serve`, its own "
      "process group, same CPU accounting) and takes the `view/update` run's script, bodies "
      "and token after the same warm-up. They check that a bearer token is present but "
      "verify no JWT: a real route's auth costs more, minimal on purpose.")
    w(f"- Events: {EVENT_BATCHES} distinct bodies of {EVENT_BATCH:,} `view.update` events over "
      f"distinct, pre-started keys ({EVENT_BATCH // EVENT_CONTENTS} learners x "
      f"{EVENT_CONTENTS} contents each); events/s = req/s x {EVENT_BATCH:,}; "
      f"{cfg.events_connections} connections (each request already carries 1,000 events). "
      "PostgreSQL's floor for it (`benchmarks/events_floor.py`, decision 0020): after the "
      f"write phase, {cfg.workers * WRITER_LANES} processes (the server's writer lanes) each "
      "read the batch's 1,000 summaries and open sessions, rewrite both rows of every key "
      "on the server and commit, for as long as a measured run, with no learnlog code.")
    w(f"- Reads run on seeded databases ({small_rows:,} and {large_rows:,} summary rows): "
      f"each learner is enrolled in one collection of {seeding.CONTENTS} contents (of "
      f"{seeding.COLLECTIONS}) and has a summary for each, so `view/read` (the 20 contents) "
      "and `summary/list` (its one enrolment) read the same 20 rows at any table size. "
      f"Requests cycle over up to {READ_POOL:,} learners drawn at random from the whole "
      "table. Before wrk runs, a few answers are checked field by field against what the "
      "seed wrote; wrk then counts every non-2xx response as an error, and any error fails "
      "the row.")
    if redis_used and any("redis" in r for r in results.values()):
        w("- `+redis` rows: the same `view/read` load with `LEARNLOG_REDIS_URL` set (hot "
          "content-status maps in Redis), after a warm-up long enough to read every learner "
          "of the pool once (the cache answers only for learners it holds). Redis counters "
          "during the measured run (keyspace hits/misses are server-wide): " + "; ".join(
              f"{key}: {r['redis']['keyspace_hits']:,} hits, "
              f"{r['redis']['keyspace_misses']:,} misses, "
              f"{r['redis']['hashes_cached']:,} learner hashes cached, "
              f"warm-up {r['redis']['warmup_s']} s"
              for key, r in results.items() if "redis" in r) + ".")
    w("- \"cost independent of table size\" compares the same route at both sizes; the 80 % "
      "threshold is this suite's, not the SPEC's.")
    w("- Raw wrk summaries (JSON, with the exact wrk command and CPU figures): "
      "`benchmarks/results/`.")
    limits = HERE / "LIMITS.md"  # the hand-kept analysis, copied in verbatim when present
    if limits.exists():
        w("")
        w(limits.read_text().rstrip())
    path.write_text("\n".join(out) + "\n")


# -- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="learnlog benchmark suite (SPEC §8)")
    parser.add_argument("--quick", action="store_true",
                        help="short runs (5 s) and 1M rows instead of 10M: a smoke test")
    parser.add_argument("--engines", default="sqlite,postgresql",
                        help="comma list of sqlite, postgresql (default both)")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 15; quick 5)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--events-connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="learnlog serve --workers")
    parser.add_argument("--rows-small", type=int, default=10_000)
    parser.add_argument("--rows-large", type=int,
                        help="default 10,000,000 (quick: 1,000,000); 0 skips the large size")
    parser.add_argument("--pg-url", default=os.environ.get(
        "LEARNLOG_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database to connect to for CREATE/DROP DATABASE")
    parser.add_argument("--redis-url", default=os.environ.get(
        "LEARNLOG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the +redis read rows ('' to skip); skipped if it does not answer")
    parser.add_argument("--wait-idle", type=float,
                        help="before each measured run, wait up to this many seconds for "
                        "other processes to leave the machine idle (default 30; quick 0)")
    parser.add_argument("--skip-writes", action="store_true")
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--skip-export", action="store_true",
                        help="keep the CSV export figures of the last run")
    parser.add_argument("--skip-sync", action="store_true",
                        help="keep the sync figures of the last run")
    parser.add_argument("--skip-logs", action="store_true",
                        help="keep the tracking-log figures of the last run")
    parser.add_argument("--logs-bytes", type=int,
                        help="bytes of synthetic logs (default 1.1 GB; quick 200 MB)")
    parser.add_argument("--sync-facts", type=int,
                        help="facts the sync benchmark moves (default 1,000,000; quick 20,000)")
    parser.add_argument("--sync-workers", default="2",
                        help="comma list of `learnlog serve --workers` for the sync target "
                        "(default 2: the client pushes two lanes of partitions at once)")
    parser.add_argument("--only", metavar="RUNS",
                        help="comma list of runs to do, the rest skipped (the references are "
                        "measured whenever an engine has an HTTP run): "
                        + ", ".join(RUNS) + "; writes RESULTS.quick.md and results/quick/, "
                        "never RESULTS.md")
    parser.add_argument("--output", help="report path (default benchmarks/RESULTS.md; "
                        "quick or --only: benchmarks/RESULTS.quick.md)")
    parser.add_argument("--strict", action="store_true",
                        help="also exit 1 when a SPEC §8 target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in engines:
        if e not in ("sqlite", "postgresql"):
            raise SystemExit(f"unknown engine {e!r}")
    only: tuple[str, ...] = ()
    if args.only is not None:
        only = tuple(dict.fromkeys(n.strip() for n in args.only.split(",") if n.strip()))
        unknown = [n for n in only if n not in RUNS]
        if unknown or not only:
            raise SystemExit(f"--only: unknown run(s) {unknown}; one or more of: "
                             + ", ".join(f"{n} ({what})" for n, what in RUNS.items()))
    subset = bool(only)
    cfg = Settings(duration=args.duration or (5 if args.quick else 15),
                   warmup=1 if args.quick else 2, threads=args.threads,
                   connections=args.connections, events_connections=args.events_connections,
                   workers=args.workers, timeout=10,
                   wait_idle=args.wait_idle if args.wait_idle is not None else (
                       0.0 if args.quick else 30.0), only=only)
    large_rows = args.rows_large if args.rows_large is not None else (
        1_000_000 if args.quick else 10_000_000)
    # a quick or partial run never replaces the measurement of record (RESULTS.md, results/)
    partial = args.quick or subset
    output = Path(args.output) if args.output else HERE / (
        "RESULTS.quick.md" if partial else "RESULTS.md")
    if subset and output.resolve() == (HERE / "RESULTS.md").resolve():
        raise SystemExit("--only: a partial run does not write benchmarks/RESULTS.md")
    results_dir = HERE / "results" / ("quick" if partial else "")
    redis_url = args.redis_url or None
    if redis_url:
        try:
            import redis

            redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
        except Exception as error:
            err.print(f"[yellow]Redis at {redis_url} does not answer ({error}): "
                      "no +redis rows[/yellow]")
            redis_url = None
    pg_admin = args.pg_url if "postgresql" in engines else None
    learnlog_bin()
    started = dt.datetime.now(dt.UTC)
    t_start = time.perf_counter()
    command = " ".join(shlex.quote(a) for a in [
        os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT))
        else sys.executable, os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    machine = machine_info(pg_admin, redis_url)
    harness.POSTMASTER = find_postmaster(pg_admin) if pg_admin else None
    machine["busy_before"] = round(background_load(), 3)
    machine["cpu_loop_s"] = cpu_speed()
    if machine["busy_before"] > 0.15:
        err.print(f"[yellow]warning: the machine is {machine['busy_before']:.0%} busy before "
                  "the suite starts; other processes will take CPU from the server[/yellow]")
    commit = git_commit()
    workdir = Path(tempfile.mkdtemp(prefix="learnlog-bench-"))
    if not args.keep:
        cleanup.push("work dir", lambda: shutil.rmtree(workdir, ignore_errors=True))
    err.print(f"work directory {workdir}")
    dbs = Databases(workdir, args.pg_url)
    results: dict[str, Any] = {}
    failure: str | None = None
    try:
        for engine in engines:
            if not args.skip_writes and cfg.wants(*WRITE_RUNS):
                write_phase(engine, dbs, workdir, cfg, results)
            if not args.skip_reads and cfg.wants("read", "summary_list"):
                read_phase(engine, args.rows_small, "small", dbs, workdir, cfg, results, None)
            if not args.skip_reads and large_rows and cfg.wants(*READ_RUNS):
                read_phase(engine, large_rows, "large", dbs, workdir, cfg, results,
                           redis_url)
            if cfg.wants("refs") and f"{engine}/refs/fastapi" not in results:
                err.rule(f"{engine}: references")
                measure_refs(engine, workdir, cfg, results, REFS_ONLY_TOKEN)
        # --only: the parts not named are skipped, and no figures of an earlier run are
        # carried into the report
        args.skip_export = args.skip_export or not cfg.wants("export")
        args.skip_sync = args.skip_sync or not cfg.wants("sync")
        args.skip_logs = args.skip_logs or not cfg.wants("logs")
        last_export = results_dir / "export.json"
        if not args.skip_export:
            sizes = [0, 10_000, 100_000] if args.quick else [0, 100_000, 1_000_000]
            results["export"] = exporting.measure(engines, sizes, workdir, dbs.fresh)
        elif last_export.exists() and not subset:
            results["export"] = json.loads(last_export.read_text())
        last_sync = results_dir / "sync.json"
        if not args.skip_sync and pg_admin:
            facts = args.sync_facts or (20_000 if args.quick else syncing.TARGET_FACTS)
            err.rule(f"sync: {facts:,} facts, SQLite → PostgreSQL")
            results["sync"] = syncing.measure(
                facts, [int(w) for w in args.sync_workers.split(",")], workdir,
                syncing.Helpers(dbs.fresh, app_env, cli, Server, CpuWindow, pg_family))
            results["sync"]["commit"] = commit
        elif last_sync.exists() and not subset:
            results["sync"] = json.loads(last_sync.read_text())
        last_logs = results_dir / "logs.json"
        if not args.skip_logs:
            size = args.logs_bytes or (200_000_000 if args.quick else tracking.TARGET_BYTES)
            err.rule(f"tracking logs: {size / 1e9:.2f} GB, DuckDB and Spark")
            results["logs"] = tracking.measure(size, ["duckdb", "spark"], workdir)
            results["logs"]["commit"] = commit
        elif last_logs.exists() and not subset:
            results["logs"] = json.loads(last_logs.read_text())
    except (BenchError, httpx.HTTPError, subprocess.SubprocessError,
            syncing.SyncFailed, tracking.IngestFailed) as error:
        failure = f"{type(error).__name__}: {error}"
        err.print(f"[bold red]benchmark failed:[/bold red] {failure}")
    except KeyboardInterrupt:
        failure = "interrupted"
        err.print("[red]interrupted[/red]")
    finally:
        cleanup.run()
    rows = evaluate(results, engines, "large", large_rows, args.rows_small)
    elapsed = time.perf_counter() - t_start
    # raw results: small JSON files, no wrk bodies
    results_dir.mkdir(parents=True, exist_ok=True)
    for old in results_dir.glob("*.json"):
        old.unlink()
    for key, r in results.items():
        (results_dir / (key.replace("/", "-") + ".json")).write_text(
            json.dumps({"name": key, **r}, indent=1) + "\n")
    (results_dir / "_run.json").write_text(json.dumps({
        "date": started.isoformat(), "command": command, "commit": commit, "machine": machine,
        "settings": cfg.__dict__, "rows_small": args.rows_small, "rows_large": large_rows,
        "quick": args.quick, "only": list(only), "failure": failure,
        "rows": [{"figure": r.figure, "engine": r.engine, "target": r.target,
                  "derived": r.derived, "ok": r.ok, "run": r.key} for r in rows]},
        indent=1) + "\n")
    write_report(output, results, rows, engines, machine, command, commit, started, cfg,
                 args.quick, large_rows, args.rows_small, redis_url is not None, elapsed)
    if failure:
        with output.open("a") as f:
            f.write(f"\n## The suite did not complete\n\n```\n{failure[:4000]}\n```\n")
    err.print(f"wrote {output} and {results_dir}/")
    errors = [k for k, r in results.items() if r.get("error_count")]
    bad_verify = [k for k, r in results.items() if k.endswith("/verify") and r["exit"] != 0]
    missed = [f"{r.figure} ({r.engine})" for r in rows if r.ok is False]
    for r in rows:
        mark = "info" if r.ok is None else ("PASS" if r.ok else "FAIL")
        rps, _, p99 = _fmt_rps(r.measured)
        share = "" if r.fa_share is None else (
            f" = {pct(r.fa_share)} of FastAPI, {pct_or_dash(r.raw_share)} of raw;")
        err.print(f"  {mark:4}  {r.engine:10} {r.figure}: {rps} req/s p99 {p99} ms{share} "
                  f"{r.derived}")
    if failure or errors or bad_verify:
        err.print(f"[bold red]errors[/bold red]: runs with errors {errors}, "
                  f"verify failed {bad_verify}, failure {failure!r}")
        return 1
    if args.strict and missed:
        err.print(f"[red]targets missed[/red]: {missed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
