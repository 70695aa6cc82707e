"""Offline sync between real instances over HTTP (SPEC §5): `learnlog serve` processes and
`learnlog sync` / `learnlog token` subprocesses, nothing in-process.

Server A runs on the engine under test (or SQLite); the other side is an SQLite file, as
on a school server or a laptop, whose own server may keep running while the CLI syncs its
database. Every assertion reads what the instances answer over HTTP or hold in their
databases, so each test fails if sync loses, duplicates or leaks facts, or lets a bad
body through.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from learnlog.api.auth import mint
from learnlog.store.db import normalise_url
from learnlog.store.schema import meta, sessions, summaries
from learnlog.store.sync import held_vectors, synced_tables
from tests.support import Api, ServerProcess, leaf

pytestmark = pytest.mark.e2e

SECRET_A = "sync-a-secret-" + "a" * 32
SECRET_B = "sync-b-secret-" + "b" * 32
ANA, BEN = "default:user:ana", "default:user:ben"
SUMMARY = re.compile(r"synced (\d+) partitions with (\w+): pulled ([\d,]+) facts "
                     r"\(([\d,]+) stored, ([\d,]+) erased or deleted here\), "
                     r"pushed ([\d,]+) \(([\d,]+) stored there\) in ([\d,]+) chunks")
Facts = dict[str, set[tuple[Any, ...]]]


# -- processes ------------------------------------------------------------------------------

def local_env(database_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI process whose local database is `database_url`."""
    return {**os.environ, "LEARNLOG_DATABASE_URL": database_url,
            "LEARNLOG_JWT_SECRET": SECRET_B, "LEARNLOG_EXPORTS_DIR": str(tmp / "exports"),
            "LEARNLOG_CONTEXT_MODE": "strict", **extra}


def sync_args(server: ServerProcess, token: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "learnlog", "sync", "--server", server.base_url,
            "--token", token, *extra]


def run_sync(env: dict[str, str], server: ServerProcess, token: str, *extra: str
             ) -> subprocess.CompletedProcess[str]:
    """`learnlog sync` against `server`, on the database of `env`, to its end."""
    return subprocess.run(sync_args(server, token, *extra), env=env, capture_output=True,
                          text=True, timeout=120)


def flat(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return " ".join(text.split())


def report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The summary line of a successful `learnlog sync` (asserts it succeeded)."""
    assert done.returncode == 0, done.stderr[-3000:]
    found = SUMMARY.search(flat(done.stderr))
    assert found is not None, done.stderr[-3000:]
    n = [int(v.replace(",", "")) for v in found.groups()[2:]]
    return {"partitions": int(found[1]), "peer": found[2], "pulled": n[0], "written": n[1],
            "dropped": n[2], "pushed": n[3], "peer_written": n[4], "chunks": n[5]}


def admin_token(server: ServerProcess) -> str:
    return mint(server.secret, "admin", ["admin"])


def post(server: ServerProcess, path: str, body: Any, token: str, *,
         raw: bytes | None = None) -> httpx.Response:
    """A sync call as any client would send it (plain JSON, bearer token)."""
    content = raw if raw is not None else orjson.dumps(body)
    return httpx.post(f"{server.base_url}{path}", content=content, timeout=30,
                      headers={"authorization": f"Bearer {token}",
                               "content-type": "application/json"})


def failure(response: httpx.Response, status: int) -> tuple[str, str, str]:
    """(error code, message, field) of a Sunbird error envelope with this status."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["params"]["status"] == "failed", body
    return body["params"]["err"], body["params"]["errmsg"], body["result"].get("field", "")


# -- databases ------------------------------------------------------------------------------

@contextmanager
def database(url: str) -> Iterator[Engine]:
    engine = create_engine(normalise_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def facts(url: str) -> Facts:
    """Every fact row a database holds, all columns (versions included)."""
    with database(url) as engine, engine.connect() as conn:
        return {t.name: {tuple(r) for r in conn.execute(select(t))} for t in synced_tables()}


def instance_id(url: str) -> str:
    with database(url) as engine, engine.connect() as conn:
        return str(conn.execute(select(meta.c.value).where(meta.c.key == "instance_id"))
                   .scalar_one())


def session_rows(url: str, **where: str) -> list[dict[str, Any]]:
    with database(url) as engine, engine.connect() as conn:
        cond = [sessions.c[k] == v for k, v in where.items()]
        return [dict(r) for r in conn.execute(select(sessions).where(*cond)).mappings()]


def table_rows(url: str, table: str) -> list[dict[str, Any]]:
    known = {t.name: t for t in synced_tables()}
    with database(url) as engine, engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(known[table])).mappings()]


def count_sessions(engine: Engine, instance: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(sessions).where(
            sessions.c.instance_id == instance)).scalar_one())


def folds(url: str) -> list[tuple[Any, ...]]:
    """Every summary's key, time, progress and status (folds: they never travel)."""
    with database(url) as engine, engine.connect() as conn:
        cols = [summaries.c[n] for n in ("dataset", "user_id", "collection_key",
                                         "context_key", "content_id", "time_spent",
                                         "progress", "status")]
        return [tuple(r) for r in conn.execute(select(*cols).order_by(*cols[:5]))]


def wire(row: dict[str, Any], **changes: Any) -> tuple[list[str], list[Any]]:
    """A stored row as push sends it: its column names, then its values."""
    out = {**row, **changes}
    return list(out), list(out.values())


def push_body(table: str, *found: dict[str, Any]) -> dict[str, Any]:
    columns = list(found[0])
    return {"facts": [{"table": table, "columns": columns,
                       "rows": [[r[c] for c in columns] for r in found]}]}


# -- helpers over HTTP ----------------------------------------------------------------------

def seconds(api: Api, user: str, content: str) -> float:
    return float(api.one(user, content, "k1")["timeSpent"])


def two_servers(serve: Callable[..., ServerProcess], tmp: Path, url_a: str | None = None
                ) -> tuple[ServerProcess, ServerProcess]:
    """Server A (on `url_a`, else an SQLite file) and server B (an SQLite file), each with
    its own secret and instance id, started side by side."""
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(serve, url_a or f"sqlite:///{tmp / 'a.db'}",
                        LEARNLOG_JWT_SECRET=SECRET_A)
        b = pool.submit(serve, f"sqlite:///{tmp / 'b.db'}", LEARNLOG_JWT_SECRET=SECRET_B)
        return a.result(), b.result()


# -- 1. the Kolibri loss case ----------------------------------------------------------------

def test_the_kolibri_loss_case_ends_with_the_sum_on_both_servers(
        database_url: str, serve: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """The same learner's content advanced by 100 s on A and 7 s on B, then synced both
    ways by `learnlog sync` on B's database: both show 107 s more than before, and both
    sessions exist on both."""
    a, b = two_servers(serve, tmp_path, database_url)
    api_a, api_b = a.api(), b.api()
    for side in (api_a, api_b):
        side.put_collection("k1", [leaf("c1"), leaf("c2")])
    api_a.start("ana", "c1", "k1")
    api_a.update("ana", "c1", "k1", progress=10, timespent=20)
    first = report(run_sync(b.env, a, admin_token(a)))
    assert first["pulled"] > 0 and first["pushed"] > 0  # B's collection went to A
    before = {"a": seconds(api_a, "ana", "c1"), "b": seconds(api_b, "ana", "c1")}
    assert before == {"a": 20, "b": 20}

    api_a.start("ana", "c1", "k1")
    api_a.update("ana", "c1", "k1", progress=40, timespent=100)
    api_b.start("ana", "c1", "k1")
    api_b.update("ana", "c1", "k1", progress=70, timespent=7)
    assert (seconds(api_a, "ana", "c1"), seconds(api_b, "ana", "c1")) == (120, 27)

    done = report(run_sync(b.env, a, admin_token(a)))
    id_a, id_b = instance_id(a.database_url), instance_id(b.database_url)
    assert id_a != id_b
    assert done["peer"] == id_a
    assert done["pulled"] > 0 and done["pushed"] > 0
    for name, side in (("a", api_a), ("b", api_b)):
        assert seconds(side, "ana", "c1") == before[name] + 107, name
        assert side.one("ana", "c1", "k1")["progress"] == 70, name
        assert seconds(side, "ana", "c2") == 0, name
    found = {url: session_rows(url, user_id="ana", content_id="c1")
             for url in (a.database_url, b.database_url)}
    for url, rows in found.items():
        assert len(rows) == 3, url  # the first 20 s, the 100 s and the 7 s
        assert {r["instance_id"] for r in rows} == {id_a, id_b}, url
        assert sorted(r["time_spent"] for r in rows) == [7, 20, 100], url
    ids = [{r["session_id"] for r in rows} for rows in found.values()]
    assert ids[0] == ids[1]
    assert facts(a.database_url) == facts(b.database_url)
    assert api_a.summaries("ana") == api_b.summaries("ana")

    again = report(run_sync(b.env, a, admin_token(a)))  # nothing is left to move
    assert (again["pulled"], again["pushed"], again["chunks"]) == (0, 0, 0)
    for name, side in (("a", api_a), ("b", api_b)):
        assert seconds(side, "ana", "c1") == before[name] + 107, name


# -- 2. a sync killed half-way, run again --------------------------------------------------

LEARNERS, CONTENTS = 40, 20


def seed(server: ServerProcess, users: list[str], contents: int, seconds_each: float) -> int:
    """Every user starts and advances every content, in batches of events; returns how
    many sessions that wrote."""
    events: list[dict[str, Any]] = []
    for user in users:
        for n in range(contents):
            key = {"userId": user, "contentId": f"c{n}", "collectionId": "k1"}
            events.append({"type": "view.start", **key})
            events.append({"type": "view.update", **key, "progress": 10 + n,
                           "timespent": seconds_each})
    token = admin_token(server)
    for s in range(0, len(events), 1000):
        reply = post(server, "/v1/events", {"request": {"events": events[s:s + 1000]}}, token)
        assert reply.status_code == 200, reply.text
    return len(users) * contents


def advance(server: ServerProcess, user: str, contents: int, seconds_each: float) -> None:
    """More time on a user's open sessions of contents c0… (no new session)."""
    events = [{"type": "view.update", "userId": user, "contentId": f"c{n}",
               "collectionId": "k1", "timespent": seconds_each} for n in range(contents)]
    reply = post(server, "/v1/events", {"request": {"events": events}}, admin_token(server))
    assert reply.status_code == 200, reply.text


def test_a_killed_sync_run_again_completes_with_nothing_lost_or_duplicated(
        serve: Callable[..., ServerProcess], tmp_path: Path) -> None:
    a, b = two_servers(serve, tmp_path)
    children = [leaf(f"c{n}") for n in range(CONTENTS)]
    for server in (a, b):
        server.api().put_collection("k1", children)
    written = seed(a, [f"u{n:03d}" for n in range(LEARNERS)], CONTENTS, 3)
    written += seed(b, ["u000", "u001", "zed"], 4, 5)  # B's own, some on A's keys
    id_a = instance_id(a.database_url)
    total_a = sum(len(rows) for rows in facts(a.database_url).values())

    log = tmp_path / "killed-sync.log"
    with database(b.database_url) as engine:
        with open(log, "wb") as out:
            proc = subprocess.Popen(sync_args(a, admin_token(a), "--chunk", "50"), env=b.env,
                                    stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while (count_sessions(engine, id_a) == 0 and proc.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        code = proc.wait()
        arrived = count_sessions(engine, id_a)
    assert code == -signal.SIGKILL, f"the sync ended before it was killed:\n{log.read_text()}"
    assert 0 < arrived < LEARNERS * CONTENTS, arrived  # killed half-way through the pull

    rest = report(run_sync(b.env, a, admin_token(a), "--chunk", "50"))
    assert 0 < rest["pulled"] < total_a  # it continued where the killed run stopped
    assert rest["pushed"] > 0
    held = facts(a.database_url)
    assert held == facts(b.database_url)
    for url in (a.database_url, b.database_url):
        assert len(session_rows(url)) == written, url
    assert len(held["sessions"]) == written
    assert folds(a.database_url) == folds(b.database_url)
    api_a, api_b = a.api(), b.api()
    for user in ("u000", "u001", f"u{LEARNERS - 1:03d}", "zed"):
        assert api_a.summaries(user) == api_b.summaries(user), user
    assert seconds(api_a, "u000", "c1") == seconds(api_b, "u000", "c1") == 3 + 5

    # Both sides go on with sessions the other now holds (their creators' open sessions):
    # the next sync carries the newer versions, and the join keeps them.
    advance(a, "u000", CONTENTS, 2)
    advance(b, "zed", 4, 4)
    again = report(run_sync(b.env, a, admin_token(a), "--chunk", "50"))
    assert again["pulled"] >= CONTENTS and again["pushed"] >= 4
    assert facts(a.database_url) == facts(b.database_url)
    assert folds(a.database_url) == folds(b.database_url)
    assert len(session_rows(a.database_url)) == written  # no session more: the same ones
    for side in (api_a, api_b):
        assert seconds(side, "u000", "c1") == 3 + 2 + 5
        assert seconds(side, "zed", "c1") == 5 + 4


# -- 3. partition grants -----------------------------------------------------------------------

def test_a_device_token_syncs_only_its_partition_and_may_push_only_there(
        serve: Callable[..., ServerProcess], tmp_path: Path) -> None:
    a = serve(None, LEARNLOG_JWT_SECRET=SECRET_A)
    minting = subprocess.Popen(  # `learnlog token` of A, while A gets its records
        [sys.executable, "-m", "learnlog", "token", "--sub", "tablet", "--role", "device",
         "--partition", ANA], env=a.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    api = a.api()
    api.put_collection("k1", [leaf("c1"), leaf("c2")])
    for user in ("ana", "ben"):
        for content in ("c1", "c2"):
            api.start(user, content, "k1")
            api.update(user, content, "k1", progress=50, timespent=5)
    out, errors = minting.communicate(timeout=60)
    assert minting.returncode == 0, errors
    device = out.strip()

    laptop = f"sqlite:///{tmp_path / 'tablet.db'}"
    done = report(run_sync(local_env(laptop, tmp_path), a, device))
    assert done["partitions"] == 1 and done["pulled"] > 0 and done["pushed"] == 0
    got = facts(laptop)
    assert {r["partition"] for t in synced_tables() for r in table_rows(laptop, t.name)} == {ANA}
    assert {r["user_id"] for r in session_rows(laptop)} == {"ana"}
    assert {f[1] for f in folds(laptop)} == {"ana"}  # ana's summaries, refolded there
    with database(laptop) as engine, engine.connect() as conn:
        assert set(held_vectors(conn)) == {ANA}
    with database(a.database_url) as engine, engine.connect() as conn:
        theirs = {t.name: {tuple(r) for r in conn.execute(
            select(t).where(t.c.partition == ANA))} for t in synced_tables()}
    assert got == theirs  # all of ana's facts, and nothing else
    for path, body in (("/v1/sync/hello", {"protocol": 1, "contextMode": "strict",
                                           "partitions": [BEN]}),
                       ("/v1/sync/pull", {"partitions": [ANA, BEN]})):
        code, message, _ = failure(post(a, path, body, device), 403)
        assert code == "PARTITION_NOT_GRANTED" and BEN in message, path

    # A push carrying a row of ben's is refused whole: 403, and A's facts do not change.
    before = facts(a.database_url)
    ana_row = session_rows(a.database_url, user_id="ana")[0]
    ben_row = session_rows(a.database_url, user_id="ben")[0]
    forged_ben = {**ben_row, "session_id": "forged-ben", "time_spent": 999.0,
                  "instance_id": "tablet", "counter": 1}
    forged_ana = {**ana_row, "session_id": "forged-ana", "time_spent": 11.0,
                  "instance_id": "tablet", "counter": 2}
    for body in (push_body("sessions", forged_ben),
                 push_body("sessions", forged_ana, forged_ben)):
        code, message, field = failure(post(a, "/v1/sync/push", body, device), 403)
        assert code == "PARTITION_NOT_GRANTED"
        assert BEN in message and "partition" in field
    assert facts(a.database_url) == before
    assert api.one("ben", "c1", "k1")["timeSpent"] == 5

    # The same token may push into its own partition (the refusal was about ben's row).
    accepted = post(a, "/v1/sync/push", push_body("sessions", forged_ana), device)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["written"] == 1
    assert api.one("ana", ana_row["content_id"], "k1")["timeSpent"] == 5 + 11


# -- 4. instances that may not sync ----------------------------------------------------------

def test_instances_of_different_context_modes_or_protocols_are_refused(
        serve: Callable[..., ServerProcess], tmp_path: Path) -> None:
    content = serve(None, LEARNLOG_JWT_SECRET=SECRET_A, LEARNLOG_CONTEXT_MODE="content")
    api = content.api()
    api.put_collection("k1", [leaf("c1")])
    api.start("ana", "c1", "k1")
    laptop = f"sqlite:///{tmp_path / 'strict.db'}"
    refused = run_sync(local_env(laptop, tmp_path), content, admin_token(content))
    assert refused.returncode == 1, refused.stderr[-3000:]
    said = flat(refused.stderr)
    assert "sync failed" in said and "409" in said, said
    assert "context modes differ (this instance: content, the other: strict)" in said, said
    assert not any(facts(laptop).values())

    reply = post(content, "/v1/sync/hello", {"protocol": 99, "contextMode": "strict"},
                 admin_token(content))
    code, message, field = failure(reply, 409)
    assert code == "SYNC_REFUSED" and field == "protocol"
    assert "protocol versions differ (this instance: 1, the other: 99)" in message, message


# -- 5. malformed pushes -----------------------------------------------------------------------

def test_malformed_pushes_answer_400_naming_the_field_and_change_nothing(
        serve: Callable[..., ServerProcess]) -> None:
    a = serve(None, LEARNLOG_JWT_SECRET=SECRET_A)
    api = a.api()
    api.put_collection("k1", [leaf("c1")])
    api.start("ana", "c1", "k1")
    api.update("ana", "c1", "k1", progress=50, timespent=5)
    token = admin_token(a)
    row = {**session_rows(a.database_url, user_id="ana")[0], "session_id": "pushed-1",
           "instance_id": "elsewhere", "counter": 1}
    columns, values = wire(row)
    good = {"table": "sessions", "columns": columns, "rows": [values]}
    other_dataset = wire(row, dataset="other", partition="other:user:ana")[1]
    cases: list[tuple[str, dict[str, Any] | None, bytes | None, str]] = [
        ("unknown table", {"facts": [{**good, "table": "summaries"}]}, None,
         "facts[0].table"),
        ("a column missing", {"facts": [{**good, "columns": columns[:-1],
                                         "rows": [values[:-1]]}]}, None, "facts[0].columns"),
        ("a column too many", {"facts": [{**good, "columns": [*columns, "extra"],
                                          "rows": [[*values, 1]]}]}, None,
         "facts[0].columns"),
        ("a string counter", {"facts": [{**good, "rows": [
            wire(row, counter="1")[1]]}]}, None, "facts[0].rows[0].counter"),
        ("another dataset", {"facts": [{**good, "rows": [other_dataset]}]}, None,
         "facts[0].rows[0].dataset"),
        ("a short row", {"facts": [{**good, "rows": [values[:-1]]}]}, None,
         "facts[0].rows[0]"),
        ("a bad fact after a good one", {"facts": [good, {**good, "table": "nope"}]}, None,
         "facts[1].table"),
        ("facts not a list", {"facts": {"sessions": []}}, None, "facts"),
        ("a body that is a list", None, b"[1, 2]", "body"),
        ("a body that is not JSON", None, b"{\"facts\": [", "body"),
    ]
    before = facts(a.database_url)
    for name, body, raw, field in cases:
        code, message, said = failure(post(a, "/v1/sync/push", body, token, raw=raw), 400)
        assert said == field, (name, said, message)
        assert field in message or field == "body", (name, message)
        assert code in ("INVALID_FACT", "INVALID_PARAMETER_VALUE", "INVALID_JSON"), name
    assert facts(a.database_url) == before
    assert api.one("ana", "c1", "k1")["timeSpent"] == 5
    # The good fact alone is taken (the refusals were about the bad ones).
    accepted = post(a, "/v1/sync/push", {"facts": [good]}, token)
    assert accepted.status_code == 200, accepted.text
    assert api.one("ana", "c1", "k1")["timeSpent"] == 10
