"""The writer's own cost per `view/update`, in process: no HTTP, no load generator, so the
figure hardly moves when the machine's speed does (the HTTP runs of `run.py` moved by up
to 40 % within an hour on 2026-12-06). For A/B work on the write path.

    .venv/bin/python benchmarks/writer_cpu.py [--engine sqlite|postgresql] [--batch 16]
        [--batches 400] [--groups] [--profile]

A fresh database (a temporary SQLite file, or a database created on `--pg-url`), the
benchmark's pool (10 collections of 10 contents, 1,000 learners, every key started),
then `--batches` write batches of `--batch` `view/update` commands (the bodies of
`run.py`'s update run, consecutive commands on different learners), each applied as one
batch by the writer on this thread, as a writer lane does. `--groups`: the pool's
learners are members of the benchmark's groups first (`group_lag.py`'s setup, small).
Prints the writer thread's CPU per command and per batch (µs), and the database's
(PostgreSQL: its backends', from /proc) per command; `--profile` adds cProfile's top.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

USERS, CONTENTS, COLLECTIONS = 1_000, 10, 10


def _pg_backend_ticks(url: str) -> float:
    """CPU seconds of the PostgreSQL backends serving this database's connections."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")]
    total = 0
    hz = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / hz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get(
        "LEARNLOG_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--groups", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    from learnlog.bootstrap import bootstrap
    from learnlog.domain.collection import Node
    from learnlog.service import viewer as svc
    from learnlog.service.identity import PutActivity, PutGroup, PutMember
    from learnlog.settings import Settings

    drop: Any = None
    work = Path(tempfile.mkdtemp(prefix="learnlog-writer-cpu-"))
    if args.engine == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
        pg_url = None
    else:
        import psycopg

        name = f"writer_cpu_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        pg_url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
        url = pg_url.replace("postgresql://", "postgresql+psycopg://", 1)

        def drop() -> None:
            with psycopg.connect(args.pg_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    rt: Any = None
    try:
        rt = bootstrap(Settings(database_url=url, jwt_secret="writer-cpu-" + "z" * 32,
                                _env_file=None))  # type: ignore[call-arg]
        writer: Any = rt.writer
        ds = "default"
        keys = []
        setup = [svc.PutCollection(ds, f"wcol{c:02d}", f"c{c}", None, None, tuple(
            Node(f"wcol{c:02d}-c{j:02d}", "content", f"c{j}") for j in range(CONTENTS)), ())
            for c in range(COLLECTIONS)]
        for n in range(USERS * CONTENTS):
            u, j = n % USERS, n // USERS
            c = u % COLLECTIONS
            keys.append(svc.Keys(ds, f"wu{u:05d}", f"wcol{c:02d}-c{j:02d}", f"wcol{c:02d}",
                                 None))
        for future in writer.run_many(setup):
            future.result()
        if args.groups:
            groups: list[Any] = []
            for c in range(COLLECTIONS):
                groups += [PutGroup(ds, f"wgrp{c:02d}", "group", f"wgrp{c:02d}", None),
                           PutActivity(ds, f"wgrp{c:02d}", "Collection", f"wcol{c:02d}")]
            for future in writer.run_many(groups):
                future.result()
            members = [PutMember(ds, f"wgrp{u % COLLECTIONS:02d}", f"wu{u:05d}", "learner")
                       for u in range(USERS)]
            for s in range(0, len(members), 200):
                for future in writer.run_many(members[s:s + 200]):
                    future.result()
        for s in range(0, len(keys), 500):
            for future in writer.run_many([svc.StartView(k) for k in keys[s:s + 500]]):
                future.result()
        if args.groups:  # the refreshes the memberships queued, drained
            from learnlog.jobs.outbox import process_once

            while process_once(rt.engine, rt.jobs):
                pass

        if pg_url:  # statistics in place, no autovacuum counted as the writes' cost
            import psycopg

            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
        updates = [svc.UpdateView(k, 1.0, 37.0, {"current": 5}) for k in keys]
        warm = 50
        profiler = cProfile.Profile() if args.profile else None
        cpu = 0.0
        db0 = 0.0
        t0 = time.perf_counter()
        for b in range(warm + args.batches):
            if b == warm:
                db0 = _pg_backend_ticks(pg_url) if pg_url else 0.0
                t0 = time.perf_counter()
                if profiler:
                    profiler.enable()
            start = (b * args.batch) % len(updates)
            batch = updates[start:start + args.batch]
            c0 = time.thread_time()
            for future in writer.run_many(batch):
                future.result()
            if b >= warm:
                cpu += time.thread_time() - c0
        wall = time.perf_counter() - t0
        if profiler:
            profiler.disable()
        db = (_pg_backend_ticks(pg_url) - db0) if pg_url else 0.0
        n = args.batches * args.batch
        out = {"engine": args.engine, "batch": args.batch, "batches": args.batches,
               "groups": args.groups, "writer_us_per_command": round(cpu / n * 1e6, 1),
               "writer_us_per_batch": round(cpu / args.batches * 1e6, 1),
               "database_us_per_command": round(db / n * 1e6, 1) if pg_url else None,
               "commands_per_s": round(n / wall)}
        print(json.dumps(out))
        if profiler:
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    finally:
        if rt is not None:
            rt.close()
        if drop is not None:
            drop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
