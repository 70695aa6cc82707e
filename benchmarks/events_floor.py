"""What this machine's PostgreSQL allows for `POST /v1/events`, whatever the design: the
database work that applying a batch of 1,000 `view.update` events cannot leave out, run
by the same number of concurrent writers as the server has, with no learnlog code and no
Python per row (decision 0020).

    .venv/bin/python benchmarks/events_floor.py POSTGRES_URL [--writers 4] [--seconds 10]

POSTGRES_URL: the database the events run of `run.py` just used (its event learners,
`eu…`, have a started summary and an open session per content). Each writer repeats, in
one transaction per batch of 1,000 keys (50 learners x 20 contents, as the benchmark's
bodies):
- read the batch's 1,000 summaries (a join on their keys, as any design must look them up);
- read their 1,000 open sessions;
- rewrite each summary and each session once, computed on the server (time added, last
  access, revision; the session's sync counter from the same sequence learnlog uses);
- commit (`synchronous_commit=on`: one WAL flush per batch).
Prints one JSON line: events/s, batches, seconds, writers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from typing import Any

BATCH_USERS = 50  # x 20 contents = the benchmark's 1,000 distinct keys per request

READ_SUMMARIES = (
    "SELECT s.* FROM summaries s JOIN unnest(%(ds)b::text[], %(users)b::text[]) "
    "AS w(dataset, user_id) USING (dataset, user_id)")
READ_SESSIONS = (
    "SELECT x.* FROM sessions x JOIN unnest(%(ds)b::text[], %(users)b::text[], %(ids)b::text[]) "
    "AS w(dataset, user_id, session_id) USING (dataset, user_id, session_id)")
WRITE_SUMMARIES = (
    "UPDATE summaries s SET time_spent = s.time_spent + 1, last_access = %(now)s, "
    "rev = s.rev + 1, updated_at = %(now)s FROM unnest(%(ds)b::text[], %(users)b::text[]) "
    "AS w(dataset, user_id) WHERE s.dataset = w.dataset AND s.user_id = w.user_id")
WRITE_SESSIONS = (
    "UPDATE sessions x SET time_spent = x.time_spent + 1, ended_at = %(now)s, "
    "counter = nextval('fact_counter'), updated_at = %(now)s "
    "FROM unnest(%(ds)b::text[], %(users)b::text[], %(ids)b::text[]) "
    "AS w(dataset, user_id, session_id) WHERE x.dataset = w.dataset "
    "AND x.user_id = w.user_id AND x.session_id = w.session_id")


def batches(url: str) -> list[dict[str, list[str]]]:
    """The event learners in groups of 50, with their open sessions."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT dataset, user_id, open_session_id FROM summaries "
            "WHERE user_id LIKE 'eu%%' AND open_session_id IS NOT NULL "
            "ORDER BY dataset, user_id").fetchall()
    by_user: dict[tuple[str, str], list[str]] = {}
    for dataset, user, sid in rows:
        by_user.setdefault((dataset, user), []).append(sid)
    users = sorted(by_user)
    found = []
    for i in range(0, len(users) - BATCH_USERS + 1, BATCH_USERS):
        group = users[i:i + BATCH_USERS]
        sessions = [(d, u, s) for d, u in group for s in by_user[(d, u)]]
        found.append({"ds": [d for d, _ in group], "users": [u for _, u in group],
                      "sds": [d for d, _, _ in sessions], "susers": [u for _, u, _ in sessions],
                      "ids": [s for _, _, s in sessions]})
    return found


def _writer(url: str, work: list[dict[str, list[str]]], until: float, start: Any,
            done: Any) -> None:
    import psycopg

    conn = psycopg.connect(url)
    count = 0
    keys = 0
    start.wait()
    while time.time() < until:
        for b in work:
            now = int(time.time() * 1000)
            with conn.transaction():
                cur = conn.cursor()
                summaries = cur.execute(READ_SUMMARIES, {"ds": b["ds"], "users": b["users"]},
                                        prepare=True).fetchall()
                sessions = {"ds": b["sds"], "users": b["susers"], "ids": b["ids"]}
                cur.execute(READ_SESSIONS, sessions, prepare=True).fetchall()
                cur.execute(WRITE_SUMMARIES, {"ds": b["ds"], "users": b["users"], "now": now},
                            prepare=True)
                cur.execute(WRITE_SESSIONS, {**sessions, "now": now}, prepare=True)
            count += 1
            keys += len(summaries)
            if time.time() >= until:
                break
    conn.close()
    done.put((count, keys))


def measure(url: str, writers: int, seconds: float) -> dict[str, Any]:
    """Events/s the database allows with `writers` concurrent writers for `seconds`."""
    work = batches(url)
    if len(work) < writers:
        raise SystemExit(f"{url}: {len(work)} event batches found, {writers} writers need "
                         "one each; run the events benchmark on this database first")
    ctx = multiprocessing.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    until = time.time() + seconds + 1.0
    procs = [ctx.Process(target=_writer, args=(url, work[i::writers], until, start, done))
             for i in range(writers)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # the processes connect and wait
    began = time.time()
    start.set()
    results = [done.get(timeout=seconds + 120) for _ in procs]
    elapsed = time.time() - began
    for p in procs:
        p.join()
    batches_done = sum(c for c, _ in results)
    keys = sum(k for _, k in results)
    return {"events_per_second": round(keys / elapsed), "batches": batches_done,
            "seconds": round(elapsed, 2), "writers": writers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="postgresql://… of the benchmark's database")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.url.replace("postgresql+psycopg://", "postgresql://"),
                             args.writers, args.seconds)))


if __name__ == "__main__":
    main()
