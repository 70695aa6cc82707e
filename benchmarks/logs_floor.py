"""What this machine allows for the tracking-log benchmark, whatever the design: the
parts of `learnlog logs ingest` that no design can leave out, each timed alone on the
same synthetic logs (decision 0015).

    .venv/bin/python benchmarks/logs_floor.py LOGS_DIR STATS_DB

LOGS_DIR: the logs `logs_bench.py` writes; STATS_DB: a SQLite database that one
`learnlog logs ingest LOGS_DIR` filled (its statistics rows are inserted again).
Parts:
- start-up: a fresh Python importing DuckDB, Ibis and learnlog's analytics;
- reading: DuckDB's `read_json` of every line, counting the events with a time (no field
  kept, nothing normalised or written);
- one sort: every event ordered by (user, time) once (sessions need at least this);
- writing: the statistics rows inserted into an empty SQLite database in key order, one
  `executemany` per table (tables clustered by key, as learnlog's are).
"""

from __future__ import annotations

import glob
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TABLES = ("stats_videos", "stats_video_users", "stats_timeline", "stats_times",
          "stats_visits", "stats_problems", "stats_activity")


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(logs: Path, stats_db: Path) -> dict[str, Any]:
    """The four parts' seconds, their sum (the floor) and the events/s it allows."""
    import duckdb

    files = sorted(glob.glob(f"{logs}/*"))
    source = "[" + ", ".join(f"'{f}'" for f in files) + "]"
    startup = timed(lambda: subprocess.run(
        [sys.executable, "-c", "import duckdb, ibis, learnlog.analytics.ingest"], check=True))
    db = duckdb.connect()
    read = timed(lambda: db.execute(
        f"SELECT count(time) FROM read_json({source}, format='newline_delimited', "
        "ignore_errors=true, columns={'time': 'VARCHAR'})").fetchall())
    db.execute(
        f"CREATE TABLE e AS SELECT username, time FROM read_json({source}, "
        "format='newline_delimited', ignore_errors=true, columns={'username': 'VARCHAR', "
        "'time': 'VARCHAR'})")
    lines = int(db.execute("SELECT count(*) FROM e").fetchone()[0])  # type: ignore[index]
    sort = timed(lambda: db.execute(
        "SELECT count(*) FROM (SELECT lead(time) OVER (PARTITION BY username ORDER BY time) "
        "FROM e)").fetchall())
    db.close()
    writing, rows = _writing(stats_db)
    parts = {"start-up": startup, "reading": read, "one sort": sort, "writing": writing}
    floor = sum(parts.values())
    return {"parts": {k: round(v, 2) for k, v in parts.items()}, "seconds": round(floor, 2),
            "lines": lines, "rows": rows, "events_per_second": round(lines / floor)}


def _writing(stats_db: Path) -> tuple[float, int]:
    """Seconds to insert the statistics rows of `stats_db` into an empty database."""
    source = sqlite3.connect(stats_db)
    total = 0.0
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        target = sqlite3.connect(Path(tmp) / "w.db")
        for table in TABLES:
            ddl = source.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                                 (table,)).fetchone()[0]
            target.execute(ddl)
            info = list(source.execute(f"PRAGMA table_info({table})"))
            key = ", ".join(r[1] for r in sorted(info, key=lambda r: r[5]) if r[5])
            found = source.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
            if not found:
                continue
            count += len(found)
            sql = f"INSERT INTO {table} VALUES ({', '.join('?' * len(found[0]))})"
            total += timed(lambda: target.executemany(sql, found))  # noqa: B023
        total += timed(target.commit)
        target.close()
    source.close()
    return total, count


def main() -> None:
    found = measure(Path(sys.argv[1]), Path(sys.argv[2]))
    for name, seconds in found["parts"].items():
        print(f"{name:10s} {seconds:6.2f} s")
    print(f"{'floor':10s} {found['seconds']:6.2f} s for {found['lines']:,} lines and "
          f"{found['rows']:,} statistics rows: at most {found['events_per_second']:,} "
          "events/s")


if __name__ == "__main__":
    main()
