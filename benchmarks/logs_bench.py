"""Tracking-log analytics benchmark (SPEC §8: "tracking-log analytics (DuckDB) | ≥ 500,000
events/s end to end on 2 cores (parse, sessionise, segments, write)").

    .venv/bin/python benchmarks/logs_bench.py                    # 1.1 GB, DuckDB then Spark
    .venv/bin/python benchmarks/logs_bench.py --bytes 200000000  # a quick look
    .venv/bin/python benchmarks/logs_bench.py --engines duckdb

Input: `learnlog.analytics.synthetic` logs written into a temporary folder, split into four
files (a day's rotation each): page views, legacy and MFE navigation, video play / pause /
seek / stop with stale times after seeks, server problem checks, forum posts, page closes,
staff and anonymous events, comment and blank lines; no broken lines (a file with one is
read line by line, the slower exact path: see LIMITS.md).

Measured: the wall time of `learnlog logs ingest DIR [--engine spark]` as a child process on
a fresh SQLite database: start-up, reading and parsing every line, normalising and keeping
the events as Parquet, every statistic of SPEC §6 for every course (sessions and time on
page, visits, video viewings, coverage and timelines, problems, weekly activity) and
writing them all into the database. Events/s = JSON events read / seconds. Peak RSS: the
largest resident set of the child's process group (with Spark's JVM), sampled every
0.2 s.

Writes `results/logs.json` and the `## Tracking logs` section of RESULTS.md; `run.py` calls
`measure()` and `section()` as part of the suite (skip with `--skip-logs`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import export_bench as exporting  # noqa: E402  (benchmarks/export_bench.py)
import logs_floor as flooring  # noqa: E402  (benchmarks/logs_floor.py)
import sync_bench as syncing  # noqa: E402  (benchmarks/sync_bench.py: process groups)

err = Console(stderr=True)
SECTION = "## Tracking logs"
TARGET_BYTES = 1_100_000_000  # ≥ 1 GB (SPEC §8 / issue 6)
TARGET_RATE = 500_000  # events/s, DuckDB
FILES = 4
SUMMARY = re.compile(r"([\d,]+) lines read, ([\d,]+) comments, ([\d,]+) events accepted, "
                     r"([\d,]+) rejected")


class IngestFailed(Exception):
    """An ingestion run failed or printed no summary: the run is invalid."""


def make_logs(folder: Path, total_bytes: int) -> dict[str, Any]:
    from learnlog.analytics.synthetic import generate

    started = time.perf_counter()
    written = [generate(folder / f"tracking.log-{i}", size_bytes=total_bytes // FILES,
                        users=5000, course_count=20, seed=i, noise=False)
               for i in range(FILES)]
    return {"files": FILES, "bytes": sum(w.bytes for w in written),
            "events": sum(w.events for w in written),
            "lines": sum(w.lines for w in written),
            "seconds": round(time.perf_counter() - started, 1)}


def ingest_once(folder: Path, engine: str, workdir: Path) -> dict[str, Any]:
    """One `learnlog logs ingest` run on a fresh database; its time, RSS and summary."""
    db = workdir / f"{engine}.db"
    env = {**os.environ, "LEARNLOG_DATABASE_URL": f"sqlite:///{db}",
           "LEARNLOG_ANALYTICS_DIR": str(workdir / f"store-{engine}"),
           "PYTHONUNBUFFERED": "1"}
    command = [str(Path(sys.executable).with_name("learnlog")), "logs", "ingest",
               str(folder), "--engine", engine]
    err.print(f"  learnlog logs ingest --engine {engine} …")
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:  # the child's process group (with Spark's JVM): summed RSS
        while not done.wait(0.2):
            peak[0] = max(peak[0], sum(_rss_kib(pid) for pid in syncing._group_pids(
                child.pid)))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, error = child.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise IngestFailed(f"ingest --engine {engine} failed: {error[-2000:]}")
    summary = " ".join(error.split())
    found = SUMMARY.search(summary)
    if found is None:
        raise IngestFailed(f"no summary in: {summary[-1000:]}")
    lines, comments, accepted, rejected = (int(g.replace(",", "")) for g in found.groups())
    events = lines - comments  # every line that is not a comment is read as JSON
    return {"engine": engine, "seconds": round(seconds, 2), "lines": lines,
            "comments": comments, "events": events, "accepted": accepted,
            "rejected": rejected, "events_per_second": round(events / seconds),
            "peak_rss_mib": round(peak[0] / 1024)}


def _rss_kib(pid: int) -> int:
    """A live process's resident set now (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(total_bytes: int, engines: list[str], workdir: Path) -> dict[str, Any]:
    folder = workdir / "logs"
    err.print(f"tracking logs: writing {total_bytes / 1e9:.2f} GB of synthetic logs …")
    made = make_logs(folder, total_bytes)
    err.print(f"  {made['events']:,} events in {made['files']} files, {made['seconds']} s")
    os.sync()  # the logs' dirty pages written out now, not during a measured run
    time.sleep(2)
    runs = []
    floor = None
    for engine in engines:
        run = ingest_once(folder, engine, workdir)
        runs.append(run)
        err.print(f"  {run['engine']}: {run['seconds']} s, {run['events_per_second']:,} "
                  f"events/s, peak RSS {run['peak_rss_mib']:,} MiB")
        if engine == "duckdb":  # what the machine allows at all, on the same logs (0015)
            floor = flooring.measure(folder, workdir / "duckdb.db")
            err.print(f"  floor: {floor['seconds']} s, at most "
                      f"{floor['events_per_second']:,} events/s")
    duck = next((r for r in runs if r["engine"] == "duckdb"), None)
    ok = bool(duck and made["bytes"] >= 1_000_000_000
              and duck["events_per_second"] >= TARGET_RATE)
    return {"logs": made, "runs": runs, "ok": ok, "floor": floor,
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(), "python": platform.python_version()}


def section(result: dict[str, Any]) -> list[str]:
    made = result["logs"]
    lines = [SECTION, "",
             f"`learnlog logs ingest` over {made['bytes'] / 1e9:.2f} GB of synthetic Open edX "
             f"tracking logs ({made['events']:,} events, {made['files']} files; "
             f"`benchmarks/logs_bench.py`, run {result['when']}"
             + (f" on commit `{result['commit']}`" if result.get("commit") else "")
             + f", {result['cpus']} CPUs). Seconds are the child's wall time from start-up "
             "to the last statistic stored in a fresh SQLite database (parse, normalise, "
             "keep as Parquet, sessionise, time on page, visits, video viewings and "
             "timelines, problems, weekly activity, write).",
             "",
             f"SPEC §8: ≥ {TARGET_RATE:,} events/s end to end on DuckDB (≥ 1 GB): "
             + ("**PASS**." if result["ok"] else "**FAIL**."),
             "",
             "| engine | seconds | events | events/s | accepted | rejected | peak RSS MiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["runs"]:
        lines.append(f"| {r['engine']} | {r['seconds']:,} | {r['events']:,} | "
                     f"{r['events_per_second']:,} | {r['accepted']:,} | {r['rejected']:,} | "
                     f"{r['peak_rss_mib']:,} |")
    floor = result.get("floor")
    if floor:
        parts = ", ".join(f"{k} {v} s" for k, v in floor["parts"].items())
        duck = next(r for r in result["runs"] if r["engine"] == "duckdb")
        lines += ["", f"The machine's floor on the same logs (`benchmarks/logs_floor.py`, "
                  f"decision 0015): {parts}; {floor['seconds']} s in all, so at most "
                  f"{floor['events_per_second']:,} events/s with no normalising, no "
                  f"Parquet and no statistics at all. The DuckDB run takes "
                  f"{duck['seconds'] / floor['seconds']:.1f} times the floor."]
    lines += ["", "Where the DuckDB run's time goes and what is next: LIMITS.md, "
              "\"Tracking logs\".", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=TARGET_BYTES)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--no-report", action="store_true",
                        help="print the figures, write neither RESULTS.md nor results/")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="learnlog-logs-bench-") as tmp:
        result = measure(args.bytes, args.engines.split(","), Path(tmp))
    commit = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=HERE,
                            capture_output=True, text=True, check=False).stdout.strip()
    result["commit"] = commit
    lines = section(result)
    print("\n".join(lines))
    if not args.no_report:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "logs.json").write_text(json.dumps(result, indent=2) + "\n")
        exporting.update_report(Path(args.output), lines, SECTION)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
