"""Sync benchmark (SPEC §8: "sync | 1,000,000 facts between two instances in ≤ 60 s").

    .venv/bin/python benchmarks/sync_bench.py                      # 1,000,000 facts, 1 worker
    .venv/bin/python benchmarks/sync_bench.py --facts 20000        # a quick look
    .venv/bin/python benchmarks/sync_bench.py --workers 1,2        # one run per server size
    .venv/bin/python benchmarks/sync_bench.py --profile /tmp/prof  # py-spy on both sides

Source: a fresh SQLite file migrated by `learnlog migrate`, then N content sessions inserted
straight into its `sessions` table in one transaction: N/1,000 learners x 50 contents x 20
sessions, organic views in strict mode (collection_key = context_key = content_id), every
row in the learner's partition `default:user:<id>` with the source's own instance id and
counters 1..N in the order the sessions happened; the source's `meta` counter is set to N
so its own counter continues above them. No summaries: the receiver folds its own.

Target: `learnlog serve --workers W` on a fresh PostgreSQL database, with an admin token
minted by `learnlog token` against that database (its stored token secret).

Measured: the wall time of `learnlog sync --server … --token …` run as a child process with
the source's settings: it pulls nothing (the target is empty) and pushes the N facts, which
the target joins, stores and folds into summaries chunk by chunk. Recorded beside it: the
client's CPU (its own rusage), the server process group's and the PostgreSQL backends' CPU
(/proc: harness.py's `CpuWindow`, as in run.py) and the seconds the seeding took (not
part of the figure).
Checked after: the target holds N sessions, one summary per distinct key, and its summaries'
time spent and view counts add up to the seeded sessions'.

`--profile DIR` runs the client under `py-spy record` and attaches py-spy to every process
of the server, then prints the top functions of each side (the figures of a profiled run
are marked as such and are slower).

Writes `results/sync.json` and the `## Sync` section of RESULTS.md. `run.py` calls
`measure()` and `section()` as part of the suite (skip with `--skip-sync`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import export_bench as exporting  # noqa: E402  (benchmarks/export_bench.py)
import harness  # noqa: E402  (benchmarks/harness.py)
import seed as seeding  # noqa: E402  (benchmarks/seed.py)

err = Console(stderr=True)
SECTION = "## Sync"
DATASET = "default"
CONTENTS = 50  # contents per learner
ROUNDS = 20  # sessions per (learner, content): one a day
FACTS_PER_LEARNER = CONTENTS * ROUNDS
TARGET_FACTS, TARGET_SECONDS = 1_000_000, 60.0  # SPEC §8
DAY_MS = 86_400_000
Fresh = Callable[[str, str], tuple[str, Any]]  # (engine, tag) -> (url, drop)


class SyncFailed(Exception):
    """The sync did not complete (exit status, timeout, a dead server): the run is invalid."""


@dataclass(frozen=True)
class Helpers:
    """What the caller lends (`run.py`, or `main` here): the databases of its run and
    harness.py's processes and CPU accounting."""

    fresh: Fresh  # harness.Databases(...).fresh
    app_env: Callable[..., dict[str, str]]  # harness.app_env
    cli: Callable[..., subprocess.CompletedProcess[str]]  # harness.cli
    server: Callable[..., Any]  # harness.Server
    cpu_window: Callable[[int | None], Any]  # harness.CpuWindow
    pg_family: Callable[[str], set[int]]  # harness.pg_family


# -- the source's facts --------------------------------------------------------------------

@dataclass
class Seeded:
    """What the seed wrote, for the checks after the sync."""

    facts: int
    learners: int
    keys: int
    time_spent: float
    instance_id: str
    pinned: bool  # set through LEARNLOG_INSTANCE_ID, not read from the database
    seconds: float


def user_id(i: int) -> str:
    return f"sync-learner-{i:06d}"


def content_id(c: int) -> str:
    return f"sync-video-{c:03d}"


def session_rows(facts: int, learners: int, instance_id: str, base_ms: int,
                 keys: set[tuple[int, int]], spent: list[float]) -> Iterator[dict[str, Any]]:
    """The sessions in the order they happened (counter n+1 for the n-th): day r, content
    slot c (20 minutes each), learner u; what `learnlog` writes for an organic video view
    in strict mode (`rows.session_to_row` of a closed session)."""
    per_round = learners * CONTENTS
    for n in range(facts):
        r, c, u = n // per_round, (n // learners) % CONTENTS, n % learners
        uid, cid = user_id(u), content_id(c)
        started = base_ms + r * DAY_MS + c * 1_200_000 + u * 30
        time_spent = float(30 + (n * 7) % 570) + 0.25  # ≤ 600 s, exact in binary
        ended = started + int(time_spent * 1000) + 2_000
        progress = (r + 1) / ROUNDS  # each visit picks up where the last one left off
        keys.add((u, c))
        spent.append(time_spent)
        yield {"dataset": DATASET, "user_id": uid, "session_id": f"{instance_id[:8]}{n:024x}",
               "collection_key": cid, "context_key": cid, "content_id": cid,
               "started_at": started, "ended_at": ended, "progress": progress,
               "time_spent": time_spent,
               "completed_at": ended if progress >= 1.0 else None,
               "repeat": False, "closed": True,
               "progress_details": f'{{"current":{int(time_spent)}}}', "extra_fields": None,
               "partition": f"{DATASET}:user:{uid}", "instance_id": instance_id,
               "counter": n + 1, "updated_at": ended, "kind": "video", "mastery_level": None}


def source_instance(path: str) -> str | None:
    con = sqlite3.connect(path)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'instance_id'").fetchone()
    finally:
        con.close()
    return None if row is None else str(row[0])


def seed_source(url: str, facts: int, env: dict[str, str], workdir: Path,
                cli: Callable[..., Any]) -> Seeded:
    """Migrate with the app, then insert the facts in one transaction."""
    from learnlog.store.schema import sessions

    cli(["migrate"], env, workdir)
    path = seeding._sqlite_path(url)
    instance_id = source_instance(path)
    pinned = instance_id is None  # bootstrap stores one; if it ever stops, pin it
    if instance_id is None:
        instance_id = "sync-bench-source"
    learners = -(-facts // FACTS_PER_LEARNER)
    base_ms = int(time.time() * 1000) - (ROUNDS + 1) * DAY_MS
    keys: set[tuple[int, int]] = set()
    spent: list[float] = []
    names = [c.name for c in sessions.columns]
    start = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")  # this seeding connection only
        # Four indexes take rows in scattered places: with SQLite's 2 MiB page cache the
        # transaction spills pages into the WAL again and again (minutes, GiBs of WAL for 1M
        # rows); a cache that holds the whole table writes each page once.
        con.execute("PRAGMA cache_size=-2000000")  # KiB
        con.execute("BEGIN")
        con.executemany(
            f"INSERT INTO sessions ({','.join(names)}) VALUES ({','.join('?' * len(names))})",
            (tuple(row[n] for n in names) for row in session_rows(
                facts, learners, instance_id, base_ms, keys, spent)))
        con.execute("UPDATE meta SET value = ? WHERE key = 'counter'", (str(facts),))
        con.execute("COMMIT")
        con.execute("ANALYZE")
    finally:
        con.close()
    return Seeded(facts, learners, len(keys), sum(spent), instance_id, pinned,
                  time.perf_counter() - start)


# -- one sync -------------------------------------------------------------------------------

def _learnlog() -> str:
    return str(Path(sys.executable).with_name("learnlog"))


def _py_spy() -> str:
    path = Path(sys.executable).with_name("py-spy")
    found = str(path) if path.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


SPY = ["--idle", "--threads", "--format", "raw", "--rate", "100"]  # see PROFILE_RATE


def _group_pids(pgid: int) -> list[int]:
    """The processes of a process group (the server and its uvicorn workers)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2:].split()[2]) == pgid:
                out.append(int(name))
    return sorted(out)


def _memory_kib(pid: int) -> tuple[int, int]:
    """A live process's peak resident set so far (VmHWM: with the pages of files it maps,
    e.g. a SQLite database read through mmap) and its anonymous resident memory now
    (RssAnon: its heap); zeros once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            found = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return 0, 0
    return (int(found.get("VmHWM", "0 kB").split()[0]),
            int(found.get("RssAnon", "0 kB").split()[0]))


def target_state(url: str) -> dict[str, Any]:
    """What the target holds after the sync."""
    import psycopg

    with psycopg.connect(seeding._pg_conninfo(url), autocommit=True) as conn:
        facts = conn.execute("SELECT count(*) FROM sessions").fetchone()
        folded = conn.execute("SELECT count(*), coalesce(sum(time_spent), 0), "
                              "coalesce(sum(view_count), 0) FROM summaries").fetchone()
        queued = conn.execute("SELECT count(*) FROM outbox").fetchone()
        autovacuum = conn.execute("SHOW autovacuum").fetchone()
    assert facts is not None and folded is not None and queued is not None
    return {"sessions": int(facts[0]), "summaries": int(folded[0]),
            "time_spent": float(folded[1]), "view_count": int(folded[2]),
            "outbox_queued": int(queued[0]),
            "autovacuum": None if autovacuum is None else str(autovacuum[0])}


def checks(seeded: Seeded, state: dict[str, Any]) -> list[str]:
    """What is wrong with the target, or nothing."""
    problems = []
    if state["sessions"] != seeded.facts:
        problems.append(f"target holds {state['sessions']:,} sessions, not {seeded.facts:,}")
    if state["summaries"] != seeded.keys:
        problems.append(f"target holds {state['summaries']:,} summaries, not {seeded.keys:,}")
    if abs(state["time_spent"] - seeded.time_spent) > 1e-6 * max(abs(seeded.time_spent), 1):
        problems.append(f"summaries' time spent adds up to {state['time_spent']!r}, the "
                        f"sessions' to {seeded.time_spent!r}")
    if state["view_count"] != seeded.facts:
        problems.append(f"summaries' view counts add up to {state['view_count']:,}, not "
                        f"{seeded.facts:,}")
    return problems


def sync_once(source_url: str, seeded: Seeded, workers: int, workdir: Path,
              helpers: Helpers, timeout: float, profile: Path | None) -> dict[str, Any]:
    """A fresh target served by `workers` processes; the timed `learnlog sync` into it."""
    tag = f"sync-target-w{workers}"
    url, drop = helpers.fresh("postgresql", tag)
    env = helpers.app_env(url, workdir)
    helpers.cli(["migrate"], env, workdir)
    token = helpers.cli(["token", "--sub", "bench", "--role", "admin"], env,
                        workdir).stdout.strip()
    source_env = helpers.app_env(source_url, workdir)
    source_env["COLUMNS"] = "250"  # its closing line unwrapped, for the report
    if seeded.pinned:
        source_env["LEARNLOG_INSTANCE_ID"] = seeded.instance_id
    server = helpers.server(url, workdir, tag, workers)
    server.start()
    try:
        command = [_learnlog(), "sync", "--server", server.base, "--token", token]
        spies: list[subprocess.Popen[bytes]] = []
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            for pid in _group_pids(server.pgid):
                spies.append(subprocess.Popen(
                    [_py_spy(), "record", "--pid", str(pid), *SPY,
                     "-o", str(profile / f"server-w{workers}-{pid}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)  # py-spy attaches
            command = [_py_spy(), "record", *SPY, "-o",
                       str(profile / f"client-w{workers}.txt"), "--", *command]
        log_path = workdir / f"{tag}.log"
        window = helpers.cpu_window(server.pgid)
        err.print(f"  learnlog sync → {server.base} (--workers {workers}) …")
        window.start()
        with open(log_path, "wb") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(command, env=source_env, cwd=workdir, stdout=log,
                                    stderr=subprocess.STDOUT)
            deadline = start + timeout
            peak_kib = anon_kib = 0
            while True:
                hwm, anon = _memory_kib(proc.pid)
                peak_kib, anon_kib = max(peak_kib, hwm), max(anon_kib, anon)
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    proc.kill()
                    _, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.05)
            seconds = time.perf_counter() - start
        window.stop(helpers.pg_family(url))
        proc.returncode = os.waitstatus_to_exitcode(status)
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        text = log_path.read_text(errors="replace")
        timed_out = seconds > timeout
        if proc.returncode != 0 or timed_out:
            why = f"timed out after {timeout:.0f} s" if timed_out else \
                f"exited {proc.returncode}"
            raise SyncFailed(f"learnlog sync {why}:\n{text[-3000:]}\n"
                             f"server log:\n{server.log_tail()}")
        if not server.alive():
            raise SyncFailed(f"the server died during the sync:\n{server.log_tail()}")
        state = target_state(url)
    finally:
        server.stop()
    drop()
    summary = next((line.strip() for line in reversed(text.splitlines())
                    if "synced" in line), "")
    client_cpu = usage.ru_utime + usage.ru_stime
    run = {"workers": workers, "seconds": round(seconds, 2),
           "facts_per_second": round(seeded.facts / seconds),
           "client_cpu_s": round(client_cpu, 2), "server_cpu_s": round(window.server_s, 2),
           "postgres_cpu_s": round(window.postgres_s, 2),
           "machine_busy_s": round(window.machine_busy_s, 2),
           # as last seen (every 50 ms); not ru_maxrss, which carries the parent's peak
           "client_peak_rss_mib": None if profile else round(peak_kib / 1024, 1),
           "client_peak_heap_mib": None if profile else round(anon_kib / 1024, 1),
           "profiled": profile is not None, "client_says": summary, "target": state,
           "problems": checks(seeded, state)}
    colour = "red" if run["problems"] else "green"
    err.print(f"  [{colour}]--workers {workers}[/{colour}]: {run['seconds']} s, "
              f"{run['facts_per_second']:,} facts/s; CPU s client {run['client_cpu_s']}, "
              f"server {run['server_cpu_s']}, postgres {run['postgres_cpu_s']}"
              + "".join(f"\n    [red]{p}[/red]" for p in run["problems"]))
    return run


def measure(facts: int, workers: list[int], workdir: Path, helpers: Helpers, *,
            timeout: float = 3600, profile: Path | None = None) -> dict[str, Any]:
    """Seed one source, sync it into a fresh target per server size; the figures."""
    load = os.getloadavg()[0]  # other work on the machine slows the figures down
    source_url, drop_source = helpers.fresh("sqlite", "sync-source")
    env = helpers.app_env(source_url, workdir)
    err.print(f"sync: seeding {facts:,} session facts into the SQLite source …")
    seeded = seed_source(source_url, facts, env, workdir, helpers.cli)
    err.print(f"  {seeded.learners:,} learners, {seeded.keys:,} keys in "
              f"{seeded.seconds:.1f} s")
    runs = [sync_once(source_url, seeded, w, workdir, helpers, timeout, profile)
            for w in workers]
    drop_source()
    best = min(runs, key=lambda r: r["seconds"])
    scaled = best["seconds"] * TARGET_FACTS / facts
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(), "load_before": round(load, 2), "facts": facts,
            "learners": seeded.learners, "keys": seeded.keys,
            "seed_seconds": round(seeded.seconds, 1),
            "seed_rows_per_second": round(facts / seeded.seconds), "runs": runs,
            "best_workers": best["workers"], "seconds": best["seconds"],
            "facts_per_second": best["facts_per_second"],
            "seconds_per_million": round(scaled, 1),
            "ok": (not best["problems"] and best["seconds"] <= TARGET_SECONDS
                   if facts >= TARGET_FACTS else None),
            "error_count": sum(len(r["problems"]) for r in runs)}


# -- the report ------------------------------------------------------------------------------

def section(result: dict[str, Any]) -> list[str]:
    """The `## Sync` section of RESULTS.md."""
    full = result["facts"] >= TARGET_FACTS
    verdict = ("**PASS**" if result["ok"] else "**FAIL**") if full else (
        f"info (fewer facts than the SPEC's {TARGET_FACTS:,})")
    out = [SECTION, "",
           f"`learnlog sync` from a SQLite instance holding {result['facts']:,} session facts "
           f"({result['learners']:,} learners x {CONTENTS} contents x {ROUNDS} sessions, "
           f"{result['keys']:,} summary keys) to a `learnlog serve` instance on a fresh "
           "PostgreSQL database (`benchmarks/sync_bench.py`, run "
           f"{result['date'][:16].replace('T', ' ')} UTC"
           + (f" on commit `{result['commit'][:10]}`" if result.get("commit") else "")
           + f", {result['cpus']} CPUs, load average "
           f"{result.get('load_before', '?')} before it). Seconds are the wall time of the "
           "`learnlog sync` child (start-up, hello, an empty pull, the push of every fact; "
           "the target joins, stores and folds each chunk before answering). CPU seconds: "
           "the client's own rusage, the server's process group and the database's "
           "PostgreSQL backends from /proc. The source was seeded by direct SQL in "
           f"{result['seed_seconds']} s ({result['seed_rows_per_second']:,} rows/s), not "
           "part of the figure.", "",
           f"SPEC §8: {TARGET_FACTS:,} facts between two instances in ≤ "
           f"{TARGET_SECONDS:.0f} s. Best: `--workers {result['best_workers']}`, "
           f"{result['seconds']:.1f} s, {result['facts_per_second']:,} facts/s "
           f"(≈ {result['seconds_per_million']:,.0f} s per million): {verdict}.", "",
           "| server workers | facts | seconds | facts/s | client CPU s | server CPU s | "
           "postgres CPU s | other processes CPU s | target sessions | target summaries | "
           "checks |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in result["runs"]:
        checked = "**FAIL**: " + "; ".join(r["problems"]) if r["problems"] else "PASS"
        note = " (profiled)" if r.get("profiled") else ""
        out.append(f"| {r['workers']}{note} | {result['facts']:,} | {r['seconds']:.2f} | "
                   f"{r['facts_per_second']:,} | {r['client_cpu_s']:.1f} | "
                   f"{r['server_cpu_s']:.1f} | {r['postgres_cpu_s']:.1f} | "
                   f"{_other(r):.1f} | {r['target']['sessions']:,} | "
                   f"{r['target']['summaries']:,} | {checked} |")
    out += ["", "Checks: the target holds every session, one summary per key, and its "
            "summaries' time spent (to 1e-6) and view counts add up to the seeded sessions'. "
            "\"Other processes\" is the machine's busy CPU time during the sync minus the "
            "three parties': other users of the machine slow the figure down."]
    if any(r["target"].get("autovacuum") == "off" for r in result["runs"]):
        out += ["", "This PostgreSQL cluster runs with `autovacuum = off`: the target's tables "
                "are never analysed while the sync fills them, and a plan PostgreSQL cached "
                "for a prepared statement while a table was nearly empty (a hash join over "
                "a sequential scan) stays in use as the table grows."]
    return [*out, ""]


def _other(run: dict[str, Any]) -> float:
    """CPU seconds other processes took from the machine during the sync."""
    return max(0.0, run["machine_busy_s"] - run["client_cpu_s"] - run["server_cpu_s"]
               - run["postgres_cpu_s"])


# -- profiles ---------------------------------------------------------------------------------

PROFILE_RATE = 100  # py-spy samples per second and thread
# Leaves where a thread waits rather than works (py-spy's own idle test misses them on
# some kernels, so every sample is recorded with --idle and sorted here).
IDLE = ("Condition.wait (", "Event.wait (", "Queue.get (", "select (", "sleep (",
        "WorkerThread.run (", "_recv_into (", "Runner.run (",
        "Writer._run (")  # the writer thread's queue.get(): waiting for the next command


def _frame(raw: str) -> str:
    """`func (path:line)` without the line."""
    head, sep, _line = raw.rpartition(":")
    return f"{head})" if sep and raw.endswith(")") and "(" in head else raw


def _thread_name(frames: list[str]) -> str:
    for role, marker in (("writer", "Writer._run"), ("outbox", "OutboxLoop._run"),
                         ("read pool", "WorkerThread.run"), ("progress bar", "rich/live")):
        if any(marker in f for f in frames):
            return role
    label = frames[0]
    return label.split(": ", 1)[1] if ": " in label else "other"


def hotspots(files: list[Path], wall: float, top: int = 20) -> list[str]:
    """Where the threads of the profiled processes spent the sync (py-spy raw stacks, every
    sample, idle ones too): per thread its busy seconds, then the functions with the most
    own time and the learnlog functions with the most time inside, as seconds and as a
    share of the sync's wall time."""
    threads: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            raw = stack.split(";")
            name = _thread_name(raw)
            threads[name] += n
            frames = [_frame(f) for f in raw[1:]] or ["(no frame)"]
            if any(frames[-1].startswith(mark) for mark in IDLE):
                idle[name] += n
                continue
            own[f"[{name}] {frames[-1]}"] += n
            for frame in dict.fromkeys(frames):
                if "learnlog" in frame:
                    inside[f"[{name}] {frame}"] += n

    def fmt(n: int) -> str:
        seconds = n / PROFILE_RATE
        return f"{seconds:7.2f} s {seconds / wall:6.1%}"

    out = [f"wall time of the sync {wall:.2f} s; per thread: sampled / waiting "
           "(idle leaves) / busy"]
    out += [f"  {name}: {n / PROFILE_RATE:.2f} s / {idle[name] / PROFILE_RATE:.2f} s / "
            f"{(n - idle[name]) / PROFILE_RATE:.2f} s" for name, n in threads.most_common()]
    out.append("own time (busy samples):")
    out += [f"  {fmt(n)}  {frame}" for frame, n in own.most_common(top)]
    out.append("time inside (learnlog frames, busy samples):")
    out += [f"  {fmt(n)}  {frame}" for frame, n in inside.most_common(top)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=TARGET_FACTS,
                        help="session facts to sync (default 1,000,000)")
    parser.add_argument("--workers", default="2",
                        help="comma list of `learnlog serve --workers` to run it with "
                        "(default 1: one push is in flight at a time, one process takes it)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds after which the sync is killed")
    parser.add_argument("--profile", help="directory for py-spy profiles of both sides")
    parser.add_argument("--pg-url", default=os.environ.get(
        "LEARNLOG_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database to connect to for CREATE/DROP DATABASE")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--no-report", action="store_true",
                        help="print the section, leave RESULTS.md and results/ alone")
    args = parser.parse_args(argv)
    harness.clean_up_on_exit()

    harness.learnlog_bin()
    harness.POSTMASTER = harness.find_postmaster(args.pg_url)
    workdir = Path(tempfile.mkdtemp(prefix="learnlog-sync-bench-"))
    harness.cleanup.push("work dir", lambda: shutil.rmtree(workdir, ignore_errors=True))
    helpers = Helpers(harness.Databases(workdir, args.pg_url).fresh, harness.app_env,
                      harness.cli, harness.Server, harness.CpuWindow, harness.pg_family)
    profile = Path(args.profile) if args.profile else None
    commit = harness.git_commit()  # the code the processes start with, not what it is after
    try:
        result = measure(args.facts, [int(w) for w in args.workers.split(",")], workdir,
                         helpers, timeout=args.timeout, profile=profile)
    except SyncFailed as error:
        err.print(f"[bold red]sync benchmark failed:[/bold red] {error}")
        return 1
    result["commit"] = commit
    lines = section(result)
    if not args.no_report:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "sync.json").write_text(
            json.dumps({"name": "sync", **result}, indent=1) + "\n")
        exporting.update_report(Path(args.output), lines, SECTION)
    print("\n".join(lines))
    if profile is not None:
        for w in result["runs"]:
            for side, pattern in (("client", f"client-w{w['workers']}.txt"),
                                  ("server", f"server-w{w['workers']}-*.txt")):
                print(f"\n{side}, --workers {w['workers']}:")
                print("\n".join(hotspots(sorted(profile.glob(pattern)), w["seconds"])))
    return 1 if result["error_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
