"""Test helpers: a thin client of the viewer API, a real server process, an unreliable
sync peer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from learnlog.api.auth import mint
from learnlog.sync.client import SyncError


def keys(user: str, content: str, collection: str | None = None,
         context: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"userId": user, "contentId": content}
    if collection is not None:
        body["collectionId"] = collection
    if context is not None:
        body["contextId"] = context
    return body


def assess(item: str, score: float, maxscore: float = 1.0, ets: int = 1_700_000_000_000
           ) -> dict[str, Any]:
    """One ASSESS telemetry event."""
    return {"eid": "ASSESS", "ets": ets,
            "edata": {"item": {"id": item, "maxscore": maxscore, "type": "mcq"},
                      "score": score}}


class Api:
    """Calls the viewer routes and returns the parsed envelope (any HTTP client)."""

    def __init__(self, client: Any, token: str, secret: str | None = None) -> None:
        self.client = client
        self.token = token
        self.secret = secret

    def as_user(self, user: str, *roles: str) -> Api:
        assert self.secret is not None
        return Api(self.client, mint(self.secret, user, list(roles) or ["learner"]),
                   self.secret)

    def call(self, method: str, path: str, body: Any = None, *, status: int | None = 200,
             token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        response = self.client.request(method, path, json=body, headers=headers)
        if status is not None:
            assert response.status_code == status, (response.status_code, response.text)
        data: dict[str, Any] = response.json()
        return data

    def post(self, path: str, request: Any, **kw: Any) -> dict[str, Any]:
        return self.call("POST", path, {"request": request}, **kw)

    def start(self, *k: Any, **kw: Any) -> dict[str, Any]:
        return self.post("/v1/view/start", keys(*k), **kw)

    def update(self, *k: Any, status: int | None = 200, **fields: Any) -> dict[str, Any]:
        return self.post("/v1/view/update", {**keys(*k), **fields}, status=status)

    def end(self, *k: Any, **kw: Any) -> dict[str, Any]:
        return self.post("/v1/view/end", keys(*k), **kw)

    def submit(self, *k: Any, assessments: list[Any], status: int | None = 200,
               **fields: Any) -> dict[str, Any]:
        return self.post("/v1/assessment/submit",
                         {**keys(*k), "assessments": assessments, **fields}, status=status)

    def read(self, user: str, contents: list[str], collection: str | None = None,
             context: str | None = None, **kw: Any) -> dict[str, dict[str, Any]]:
        body = keys(user, "x", collection, context)
        body["contentId"] = contents
        result = self.post("/v1/view/read", body, **kw)["result"]
        return {c["contentId"]: c for c in result["contents"]}

    def one(self, user: str, content: str, collection: str | None = None,
            context: str | None = None) -> dict[str, Any]:
        return self.read(user, [content], collection, context)[content]

    def assessments(self, user: str, contents: list[str], collection: str | None = None,
                    context: str | None = None) -> dict[str, dict[str, Any]]:
        body = keys(user, "x", collection, context)
        body["contentId"] = contents
        result = self.post("/v1/assessment/read", body)["result"]
        return {c["contentId"]: c for c in result["contents"]}

    def put_collection(self, collection: str, children: list[Any], **fields: Any
                       ) -> dict[str, Any]:
        return self.call("PUT", f"/v1/collection/{collection}",
                         {"request": {"name": collection, "children": children, **fields}})

    def summaries(self, user: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/v1/summary/list/{user}")["result"]["summary"])

    def summary(self, user: str, collection: str, context: str | None = None
                ) -> dict[str, Any]:
        request = {k: v for k, v in keys(user, "x", collection, context).items()
                   if k != "contentId"}
        return self.post("/v1/summary/read", request)["result"]


def leaf(identifier: str, optional: bool = False, kind: str = "video") -> dict[str, Any]:
    node: dict[str, Any] = {"identifier": identifier, "type": "content", "kind": kind}
    if optional:
        node["optional"] = True
    return node


def unit(identifier: str, *children: dict[str, Any]) -> dict[str, Any]:
    return {"identifier": identifier, "type": "unit", "children": list(children)}


class ServerProcess:
    """A real `learnlog serve` process on a free port, over HTTP."""

    def __init__(self, database_url: str, env: dict[str, str], workdir: Path) -> None:
        self.database_url = database_url
        from tests.servers import free_port  # late: tests.servers is a pytest plugin

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LEARNLOG_DATABASE_URL": database_url,
                    "LEARNLOG_JWT_SECRET": "e2e-secret-" + "y" * 32,
                    "LEARNLOG_EXPORTS_DIR": str(workdir / "exports"), **env}
        self.log = workdir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.clients: list[httpx.Client] = []
        self.workers = env.get("WORKERS", "1")

    @property
    def secret(self) -> str:
        return self.env["LEARNLOG_JWT_SECRET"]

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "learnlog", "serve", "--port", str(self.port),
                 "--workers", self.workers],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def api(self, user: str = "admin", *roles: str) -> Api:
        client = httpx.Client(base_url=self.base_url, timeout=30)
        self.clients.append(client)
        return Api(client, mint(self.secret, user, list(roles) or ["admin"]), self.secret)


class Unreliable:
    """A sync peer whose chunks may arrive twice (`twice`) and whose connection drops
    after `drop_after` calls."""

    def __init__(self, peer: Any, twice: bool = False, drop_after: int | None = None
                 ) -> None:
        self.peer, self.twice, self.left = peer, twice, drop_after
        self._seen: set[str] = set()

    def _tick(self) -> None:
        if self.left is not None:
            self.left -= 1
            if self.left < 0:
                raise SyncError("connection lost")

    def hello(self, body: dict[str, Any]) -> dict[str, Any]:
        self._tick()
        return self.peer.hello(body)

    def pull(self, body: dict[str, Any]) -> dict[str, Any]:
        self._tick()
        chunk = self.peer.pull(body)
        mark = repr(body["cursor"])
        if self.twice and mark not in self._seen and chunk["count"]:
            self._seen.add(mark)  # the same chunk again: the client applies it twice
            return {**chunk, "cursor": body["cursor"], "done": False}
        return chunk

    def push(self, body: dict[str, Any]) -> dict[str, Any]:
        self._tick()
        if self.twice:
            self.peer.push(body)
        return self.peer.push(body)


def summary_list_follows_writes(a: Api, b: Api, warm: Callable[[], None],
                                user: str = "learner-1", course: str = "course-1") -> None:
    """Worker `b`'s `summary/list` (held in its memory once `warm` ran) follows worker
    `a`'s writes of a summary, a collection and an enrolment (the read caches' tests)."""
    a.put_collection(course, [unit("u1", leaf("do_1"), leaf("do_2"))])
    a.post("/v1/enrol", {"userId": user, "collectionId": course, "contextId": "batch-1"})
    warm()
    assert [s["contentStatus"] for s in b.summaries(user)] == [{"do_1": 0, "do_2": 0}]
    a.start(user, "do_1", course, "batch-1")
    a.update(user, "do_1", course, "batch-1", progress=100, timespent=5)  # a summary
    assert b.summaries(user)[0]["contentStatus"] == {"do_1": 2, "do_2": 0}
    a.put_collection(course, [unit("u1", leaf("do_1"), leaf("do_2"), leaf("do_3"))])
    assert b.summaries(user)[0]["collection"]["leafNodesCount"] == 3  # a collection
    a.post("/v1/enrol", {"userId": user, "collectionId": course, "contextId": "batch-2"})
    assert len(b.summaries(user)) == 2  # an enrolment


@contextmanager
def two_workers(settings: Any) -> Iterator[tuple[Api, Api, Any, Any]]:
    """Two runtimes on one database (`settings`), each behind its own in-process client,
    standing for two workers: (client a, client b, runtime a, runtime b)."""
    from fastapi.testclient import TestClient

    from learnlog.api.app import create_app
    from learnlog.bootstrap import bootstrap

    runtimes = [bootstrap(settings) for _ in range(2)]
    with TestClient(create_app(runtimes[0].settings, runtimes[0])) as a, \
            TestClient(create_app(runtimes[1].settings, runtimes[1])) as b:
        for rt in runtimes:
            rt.start()
        token = mint(runtimes[0].secret, "admin", ["admin"])
        yield (Api(a, token, runtimes[0].secret), Api(b, token, runtimes[1].secret),
               *runtimes)
    for rt in runtimes:
        rt.close()
