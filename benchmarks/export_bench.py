"""CSV export benchmark (SPEC §4.3: exports stream, so any number of rows takes the same
memory).

    .venv/bin/python benchmarks/export_bench.py                       # SQLite: 0, 100k, 1M rows
    .venv/bin/python benchmarks/export_bench.py --engines sqlite,postgresql
    .venv/bin/python benchmarks/export_bench.py --rows 0,10000,100000  # a quick look

For each engine and size: a fresh database migrated by the app, N content sessions
bulk-inserted straight into the schema's `sessions` table (N/50 learners of 50 sessions each,
in the collections `seed.py` registers, one learner in five registered with a username), then
`learnlog export --type session --out …` runs as a child process: the same streaming writer
the export job uses. Recorded: wall time of the child (start-up, count and export), rows/s and
the child's peak resident set (`VmHWM` of its own /proc status, written as it exits; not
`ru_maxrss`, which on Linux carries the parent's peak into a child). The 0-row run is the
process's own baseline; memory is constant when the 1M-row peak stays at the 100k-row peak.

Writes `results/export.json` and the `## CSV export` section of RESULTS.md. `run.py` calls
`measure()` and `section()` as part of the suite (skip with `--skip-export`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402  (benchmarks/harness.py)
import seed as seeding  # noqa: E402  (benchmarks/seed.py)

err = Console(stderr=True)
SESSIONS_PER_LEARNER = 50
SECTION = "## CSV export"
Fresh = Callable[[str, str], tuple[str, Any]]  # (engine, tag) -> (url, drop)


def session_rows(rows: int, now_ms: int) -> Iterator[dict[str, Any]]:
    """N content sessions of N/50 learners, in the collections `seed.py` registers."""
    base = now_ms - 30 * 86_400_000
    for n in range(rows):
        i = n // SESSIONS_PER_LEARNER
        c = seeding.collection_of(i)
        uid = seeding.user_id(i)
        started = base + n * 1_000
        progress = (n % 1_001) / 1_000
        yield {"dataset": seeding.DATASET, "user_id": uid, "session_id": f"{n:032x}",
               "collection_key": seeding.collection_id(c),
               "context_key": seeding.context_id(c),
               "content_id": seeding.content_id(c, n % seeding.CONTENTS),
               "started_at": started, "ended_at": started + 60_000, "progress": progress,
               "time_spent": (n % 600) + 0.25,
               "completed_at": started + 60_000 if progress == 1.0 else None,
               "repeat": False, "closed": True, "partition": f"{seeding.DATASET}:user:{uid}",
               "instance_id": seeding.INSTANCE, "counter": n + 1, "updated_at": now_ms,
               "kind": "video"}


def user_rows(rows: int, now_ms: int) -> Iterator[dict[str, Any]]:
    """One learner in five is registered, with a non-ASCII username."""
    for i in range(0, -(-rows // SESSIONS_PER_LEARNER), 5):
        uid = seeding.user_id(i)
        yield {"dataset": seeding.DATASET, "user_id": uid, "username": f"Lernende {i} ü",
               "kind": "learner", "partition": f"{seeding.DATASET}:user:{uid}",
               "instance_id": seeding.INSTANCE, "counter": i + 1, "updated_at": now_ms}


def _tables(rows: int, now_ms: int) -> list[tuple[str, list[str], Iterator[tuple[Any, ...]]]]:
    """(table, columns, rows as tuples in that order): every column of the app's schema."""
    from learnlog.store.schema import sessions, users

    layout = seeding.Layout(seeding.CONTENTS, seeding.COLLECTIONS, now_ms)
    tables = [("collections", list(seeding.COLLECTION_COLUMNS), iter(layout.collection_rows()))]
    for table, values in ((users, user_rows(rows, now_ms)),
                          (sessions, session_rows(rows, now_ms))):
        names = [c.name for c in table.columns]
        tables.append((table.name, names, _ordered(names, values)))
    return tables


def _ordered(names: list[str], values: Iterator[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for row in values:
        yield tuple(row.get(name) for name in names)


def seed_sessions(url: str, rows: int) -> float:
    """Migrate, then bulk-insert the rows (one transaction; COPY on PostgreSQL)."""
    seeding._migrate(url)
    now_ms = int(time.time() * 1000)
    start = time.perf_counter()
    if url.startswith("sqlite"):
        con = sqlite3.connect(seeding._sqlite_path(url), isolation_level=None)
        try:
            con.execute("PRAGMA synchronous=OFF")  # this seeding connection only
            con.execute("BEGIN")
            for table, columns, values in _tables(rows, now_ms):
                con.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES "
                                f"({','.join('?' * len(columns))})", values)
            con.execute("COMMIT")
            con.execute("ANALYZE")
        finally:
            con.close()
    else:
        import psycopg

        with psycopg.connect(seeding._pg_conninfo(url)) as conn, conn.cursor() as cur:
            for table, columns, values in _tables(rows, now_ms):
                with cur.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
                    for value in values:
                        copy.write(seeding._line(value))
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM (ANALYZE) sessions")
    return time.perf_counter() - start


# Runs `learnlog …` and, at exit, writes the process's own peak resident set (VmHWM, in
# kB) to the file named first. Not `ru_maxrss`: Linux carries a parent's peak into a
# forked child's `ru_maxrss` across exec, so a child of the (large) suite process would
# report the suite's peak, not its own.
PEAK_WRAPPER = (
    "import atexit, sys\n"
    "peak_file = sys.argv.pop(1)\n"
    "def peak():\n"
    "    with open('/proc/self/status') as f:\n"
    "        kb = next(l.split()[1] for l in f if l.startswith('VmHWM:'))\n"
    "    with open(peak_file, 'w') as f:\n"
    "        f.write(kb)\n"
    "atexit.register(peak)\n"
    "from learnlog.cli import main\n"
    "sys.argv[0] = 'learnlog'\n"
    "main()\n")


def export_child(url: str, out: Path, workdir: Path) -> dict[str, Any]:
    """`learnlog export` in a child process: wall time and the child's own peak RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNLOG_")}
    env["LEARNLOG_DATABASE_URL"] = url
    peak_file = workdir / "export.peak"
    with open(workdir / "export.log", "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", PEAK_WRAPPER, str(peak_file), "export",
                                 "--type", "session", "--out", str(out)],
                                env=env, cwd=workdir, stdout=log, stderr=log)
        _, status, _usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"learnlog export exited {proc.returncode}: "
                         f"{(workdir / 'export.log').read_text()[-3000:]}")
    with out.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    peak_kib = int(peak_file.read_text())
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024, 1),
            "csv_rows": lines - 1, "csv_mib": round(out.stat().st_size / 2**20, 1)}


def measure(engines: list[str], sizes: list[int], workdir: Path,
            fresh: Fresh) -> dict[str, Any]:
    """Seed and export every size on every engine; the figures, one dict per run."""
    load = os.getloadavg()[0]  # other work on the machine slows the figures down
    runs = []
    for engine in engines:
        for rows in sizes:
            url, drop = fresh(engine, f"export-{rows}")
            err.print(f"{engine}: seeding {rows:,} sessions …")
            seeded = seed_sessions(url, rows)
            out = workdir / f"export-{engine}-{rows}.csv"
            figures = export_child(url, out, workdir)
            out.unlink()
            drop()
            if figures["csv_rows"] != rows:
                raise SystemExit(f"{engine}: exported {figures['csv_rows']} of {rows} rows")
            rate = round(rows / figures["seconds"]) if rows else 0
            runs.append({"engine": engine, "rows": rows, "seed_seconds": round(seeded, 1),
                         "rows_per_second": rate, **figures})
            err.print(f"  {rows:,} rows: {figures['seconds']} s, {rate:,} rows/s, "
                      f"peak RSS {figures['peak_rss_mib']} MiB")
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(), "load_before": round(load, 2), "runs": runs}


def section(result: dict[str, Any]) -> list[str]:
    """The `## CSV export` section of RESULTS.md."""
    out = [SECTION, "",
           "`learnlog export --type session` (the export job's streaming writer) as a child "
           "process on a fresh database holding N content sessions (`benchmarks/"
           "export_bench.py`, run "
           f"{result['date'][:16].replace('T', ' ')} UTC, {result['cpus']} CPUs, load average "
           f"{result.get('load_before', '?')} before it). Seconds are the child's wall time "
           "(start-up, the count for the progress bar, the export); peak RSS is the child's "
           "own high-water mark (`VmHWM`, read as it exits).", "",
           "| engine | session rows | seconds | rows/s | peak RSS MiB | CSV MiB |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["runs"]:
        rate = f"{r['rows_per_second']:,}" if r["rows"] else "—"
        out.append(f"| {r['engine']} | {r['rows']:,} | {r['seconds']:.2f} | {rate} | "
                   f"{r['peak_rss_mib']:.1f} | {r['csv_mib']:.1f} |")
    for engine in dict.fromkeys(r["engine"] for r in result["runs"]):
        sized = sorted((r["rows"], r["peak_rss_mib"]) for r in result["runs"]
                       if r["engine"] == engine)
        if len(sized) >= 2:
            (small, small_rss), (large, large_rss) = sized[-2], sized[-1]
            # "constant": within 10 % (and 5 MiB of allocator noise) of the smaller run
            flat = large_rss <= small_rss * 1.1 + 5
            out += ["", f"{engine}: peak RSS {large_rss:.1f} MiB at {large:,} rows against "
                    f"{small_rss:.1f} MiB at {small:,} ({large_rss - small_rss:+.1f} MiB for "
                    f"{large // max(small, 1)}x the rows): " + (
                        "memory does not grow with the rows." if flat else
                        "**memory grows with the rows.**")]
    return [*out, ""]


def update_report(path: Path, lines: list[str], section: str = SECTION) -> None:
    """Put a section into RESULTS.md: in place of the last one with its heading, else
    before "Is the load generator the bottleneck?", else at the end (the sync benchmark's
    section goes through here too)."""
    text = path.read_text() if path.exists() else ""
    block = "\n".join(lines).rstrip("\n") + "\n"
    if section + "\n" in text:
        head, _, rest = text.partition(section + "\n")
        tail = rest[rest.find("\n## ") + 1:] if "\n## " in rest else ""
        text = head + block + ("\n" + tail if tail else "")
    elif "## Is the load generator the bottleneck?" in text:
        text = text.replace("## Is the load generator the bottleneck?",
                            block + "\n## Is the load generator the bottleneck?", 1)
    else:
        text = text + "\n" + block
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite", help="comma list: sqlite, postgresql")
    parser.add_argument("--rows", default="0,100000,1000000", help="comma list of sizes")
    parser.add_argument("--pg-url", default=os.environ.get(
        "LEARNLOG_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database to connect to for CREATE/DROP DATABASE")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    harness.clean_up_on_exit()

    workdir = Path(tempfile.mkdtemp(prefix="learnlog-export-bench-"))
    harness.cleanup.push("work dir", lambda: shutil.rmtree(workdir, ignore_errors=True))
    result = measure([e.strip() for e in args.engines.split(",")],
                     [int(n) for n in args.rows.split(",")], workdir,
                     harness.Databases(workdir, args.pg_url).fresh)
    result["commit"] = harness.git_commit()
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "export.json").write_text(
        json.dumps({"name": "export", **result}, indent=1) + "\n")
    lines = section(result)
    update_report(Path(args.output), lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
