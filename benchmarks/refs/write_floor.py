"""The durable-write floor for `POST /v1/view/update` on PostgreSQL (decision 0022): the
raw ceiling's edge plus the database work one update cannot leave out, and nothing else.

    WRITE_FLOOR_URL=postgresql://… uvicorn --workers 2 --loop uvloop --http httptools \
        --app-dir benchmarks/refs write_floor:app

The database is one learnlog's `view/update` run just used: every key of the benchmark's
bodies has a started summary and an open session. The body is decoded and the caller
checked exactly as `raw_ceiling.py` does (it imports them). Then, as any design that
acknowledges only committed writes must, the request waits for its write to commit: each
worker process runs `WRITE_FLOOR_LANES` lanes (2: learnlog's default writer lanes), each
with one connection, and a lane takes every request waiting (group commit) and, in one
transaction:
- locks the batch's learners (transaction advisory locks, in one fixed order: learnlog's
  statement, so two lanes writing one learner cannot deadlock);
- reads the batch's summaries with their open sessions (one joined statement by key:
  the state the fold starts from);
- rewrites each summary and each open session once, the new values computed on the
  server from the request's progress and time (no rows built in Python), the session
  versioned by the fact counter's sequence;
- commits (`synchronous_commit=on`: one WAL flush per batch).
It answers only then. No outbox, no enrolment, no cache, no notices, no Python fold: what
learnlog does beyond this is its own cost.

Standalone like the ceilings (only the raw ceiling's edge is shared); not part of the
application; used by benchmarks/run.py only.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psycopg
from raw_ceiling import Receive, Scope, Send, answer, envelope, respond, update_body

DATASET = "default"  # the benchmark admin's dataset
BATCH_MAX = 512

LOCK = ("SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT "
        "hashtextextended(k, 0) AS h FROM unnest(%b::text[]) k ORDER BY 1) locks")
KEYS = ("unnest(%(ds)b::text[], %(users)b::text[], %(colls)b::text[], %(ctxs)b::text[], "
        "%(contents)b::text[], %(progress)b::float8[], %(spent)b::float8[]) "
        "AS w(dataset, user_id, collection_key, context_key, content_id, progress, spent)")
ON = ("s.dataset = w.dataset AND s.user_id = w.user_id AND s.collection_key = "
      "w.collection_key AND s.context_key = w.context_key AND s.content_id = w.content_id")
READ = (f"SELECT s.*, x.* FROM {KEYS} JOIN summaries s ON {ON} LEFT JOIN sessions x "
        "ON x.dataset = s.dataset AND x.user_id = s.user_id "
        "AND x.session_id = s.open_session_id")
WRITE_SUMMARIES = (
    "UPDATE summaries s SET progress = greatest(s.progress, w.progress), "
    "time_spent = s.time_spent + w.spent, last_access = %(now)s, "
    "status = CASE WHEN greatest(s.progress, w.progress) >= 100 THEN 2 ELSE 1 END, "
    f"rev = s.rev + 1, updated_at = %(now)s FROM {KEYS} WHERE {ON}")
WRITE_SESSIONS = (
    "UPDATE sessions x SET progress = greatest(x.progress, w.progress), "
    "time_spent = x.time_spent + w.spent, ended_at = %(now)s, "
    "counter = nextval('fact_counter'), updated_at = %(now)s "
    f"FROM {KEYS} JOIN summaries s ON {ON} WHERE x.dataset = s.dataset "
    "AND x.user_id = s.user_id AND x.session_id = s.open_session_id")

Job = tuple[Any, "asyncio.Future[None]"]
_queue: asyncio.Queue[Job] | None = None
_lanes: list[asyncio.Task[None]] = []


def _params(batch: list[Job]) -> dict[str, Any]:
    updates = [body.request for body, _ in batch]
    return {
        "ds": [DATASET] * len(updates), "users": [u.userId for u in updates],
        "colls": [u.collectionId or u.contentId for u in updates],
        "ctxs": [u.contextId or u.collectionId or u.contentId for u in updates],
        "contents": [u.contentId for u in updates],
        "progress": [float(u.progress or 0.0) for u in updates],
        "spent": [float(u.timespent) for u in updates],
        "now": int(time.time() * 1000)}


async def _lane(queue: asyncio.Queue[Job], url: str, pipelined: bool) -> None:
    conn = await psycopg.AsyncConnection.connect(url)
    if pipelined:
        # Pipeline mode for good (never left, so no closing Sync): the lock and the read
        # go out together and come back with the read's rows (one round trip), the writes
        # and the COMMIT go out together (the second).
        await conn.pipeline().__aenter__()
    while True:
        batch = [await queue.get()]
        while not queue.empty() and len(batch) < BATCH_MAX:
            batch.append(queue.get_nowait())
        params = _params(batch)
        learners = sorted({f"{DATASET}\x1f{u}" for u in params["users"]})
        try:
            await conn.execute(LOCK, (learners,), prepare=True)
            await (await conn.execute(READ, params, prepare=True)).fetchall()
            await conn.execute(WRITE_SUMMARIES, params, prepare=True)
            await conn.execute(WRITE_SESSIONS, params, prepare=True)
            await conn.commit()
        except Exception as error:  # every request of the batch fails, none is lost
            await conn.rollback()
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            continue
        for _, future in batch:
            if not future.done():
                future.set_result(None)


async def _start() -> None:
    global _queue
    _queue = asyncio.Queue()
    url = os.environ["WRITE_FLOOR_URL"]
    pipelined = os.environ.get("WRITE_FLOOR_ROUND_TRIPS", "2") == "2"
    _lanes.extend(asyncio.create_task(_lane(_queue, url, pipelined))
                  for _ in range(int(os.environ.get("WRITE_FLOOR_LANES", "2"))))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if _queue is None:
        await _start()  # the first call of the worker (its lifespan startup)
    assert _queue is not None
    body = await update_body(scope, receive, send)
    if body is None:
        return
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _queue.put_nowait((body, future))
    try:
        await future
    except Exception as error:
        await respond(send, 500, envelope("api.view.update", "SERVER_ERROR", "failed", {},
                                          err="SERVER_ERROR", errmsg=str(error)))
        return
    await respond(send, 200, answer(body))
