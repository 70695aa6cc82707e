"""DuckDB and Spark (local mode, a real JVM) compute the same statistics from the same
synthetic logs (SPEC §6: the pipelines are written once). Each runs as
`learnlog logs ingest --engine …`, in its own process as an operator would run it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

from learnlog.analytics.synthetic import courses, generate
from tests.integration.test_tracking_ingest import rounded
from tests.tracking import stored


def test_duckdb_and_spark_give_identical_results_on_the_synthetic_set(tmp_path: Path) -> None:
    logs = tmp_path / "tracking logs"  # a space: Spark names files as URIs (%20)
    generate(logs / "a.log", event_count=4000, users=80, course_count=3, seed=3)
    generate(logs / "b.log.gz", event_count=2000, users=80, course_count=3, seed=4)
    # One course has its structure registered (places join unit ids), the others not.
    (tmp_path / "course.json").write_text(json.dumps(courses(3)[0].structure()))
    results = {}
    summaries = {}
    for engine in ("duckdb", "spark"):
        url = f"sqlite:///{tmp_path / engine}.db"
        env = {**os.environ, "LEARNLOG_DATABASE_URL": url,
               "LEARNLOG_ANALYTICS_DIR": str(tmp_path / f"store-{engine}")}
        done = subprocess.run(
            [sys.executable, "-m", "learnlog", "logs", "structure",
             str(tmp_path / "course.json"), "--engine", engine],
            env=env, capture_output=True, text=True, timeout=600, check=False)
        assert "48 units, 0 made inactive; no logs of it ingested yet" in " ".join(
            done.stderr.split()), done.stderr[-3000:]
        done = subprocess.run(
            [sys.executable, "-m", "learnlog", "logs", "ingest", str(logs), "--engine", engine],
            env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        summary = " ".join(done.stderr.split())
        found = re.search(r"ingested .*? recomputed", summary)
        assert found is not None, summary[-2000:]
        summaries[engine] = found.group(0).replace(f"with {engine}", "")
        db = create_engine(url)
        results[engine] = rounded(stored(db))
        db.dispose()
    assert summaries["duckdb"] == summaries["spark"]  # the same lines, comments, events
    assert " 0 malformed" not in summaries["duckdb"]  # the generator writes broken lines
    for part in ("videos", "timeline", "stats_times", "stats_visits", "stats_problems",
                 "stats_activity"):
        assert results["duckdb"][part], part
    units = {r[3] for r in results["duckdb"]["stats_times"]}  # (…, unit_id, day, …)
    assert courses(3)[0].unit_key(0, 0, 0) in units  # a place the structure mapped
    assert any("#" in u for u in units)  # the places of the courses without one
    assert results["duckdb"] == results["spark"]


def test_spark_without_java_says_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "t.log").write_text("")
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java"),
           "LEARNLOG_DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}",
           "LEARNLOG_ANALYTICS_DIR": str(tmp_path / "store")}
    done = subprocess.run([sys.executable, "-m", "learnlog", "logs", "ingest",
                           str(tmp_path / "t.log"), "--engine", "spark"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    assert "it needs Java 17 or newer" in " ".join(done.stderr.split())
