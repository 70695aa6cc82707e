"""The calling side of sync (SPEC §5): `learnlog sync` pulls what this instance lacks from
a peer, then pushes what the peer lacks.

Each chunk is applied in its own transaction in stream order, and version vectors are
read afresh at every start, so a sync killed half-way and run again continues where it
stopped; a chunk applied twice changes nothing the second time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine

from ..domain.errors import LearnlogError
from ..service.ports import ServiceContext
from ..service.writer import CommandBus
from ..settings import Settings
from ..store.sync import VersionVectors, held_vectors, sendable_vectors
from .apply import ApplyFacts
from .facts import Chunk, Plan, Row, plan, read_chunk
from .server import Grant, describe, hello, parse_facts, pull, push_command, refusal


class SyncError(Exception):
    """The peer refused or failed; the message says what to do."""


class Instance(Protocol):
    """This instance, as sync uses it (`bootstrap.Runtime` is one): its context and
    settings, an engine for reads, the writer that applies what it receives."""

    @property
    def settings(self) -> Settings: ...
    @property
    def ctx(self) -> ServiceContext: ...
    @property
    def read_engine(self) -> Engine: ...
    @property
    def writer(self) -> CommandBus: ...


class Peer(Protocol):
    """The other instance: its three sync calls, JSON in and out."""

    def hello(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def pull(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def push(self, body: Body) -> dict[str, Any]: ...


Body = dict[str, Any] | bytes  # a push body, or the same already encoded as JSON


def _encoded(body: Body) -> bytes:
    return body if isinstance(body, bytes) else orjson.dumps(body)


def _wire(value: Any) -> Any:
    """What a value looks like after a trip through JSON."""
    return orjson.loads(_encoded(value))


class HttpPeer:
    """A learnlog server over HTTP (`POST /v1/sync/*` with a bearer token)."""

    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        import httpx

        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers={
            "authorization": f"Bearer {token}", "content-type": "application/json"})

    def _post(self, path: str, body: Body) -> dict[str, Any]:
        import httpx

        try:
            response = self._http.post(path, content=_encoded(body))
        except httpx.HTTPError as error:
            raise SyncError(f"cannot reach the server ({error}); check --server and that "
                            "the server runs") from error
        answer = orjson.loads(response.content) if response.content else {}
        if response.status_code != 200:
            raise SyncError(f"the server answered {response.status_code}: "
                            f"{_message(answer)}")
        result: dict[str, Any] = answer
        return result

    def hello(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._post("/v1/sync/hello", body)

    def pull(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._post("/v1/sync/pull", body)

    def push(self, body: Body) -> dict[str, Any]:
        return self._post("/v1/sync/push", body)

    def close(self) -> None:
        self._http.close()


def _message(answer: Any) -> str:
    params = answer.get("params", {}) if isinstance(answer, dict) else {}
    return str(params.get("errmsg") or answer)


class LocalPeer:
    """Another instance in this process (tests, tools): the same server functions the
    HTTP routes call, with every body passed through JSON as on the wire."""

    def __init__(self, rt: Instance, grant: Grant | None = None) -> None:
        self.rt = rt
        self.grant = grant or Grant("default", None)

    def hello(self, body: dict[str, Any]) -> dict[str, Any]:
        me = describe(self.rt.ctx, self.rt.settings.max_body_bytes)
        with self.rt.read_engine.connect() as conn:
            return dict(_wire(hello(conn, self.grant, me, _wire(body))))

    def pull(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.rt.read_engine.connect() as conn:
            return dict(_wire(pull(conn, self.grant, _wire(body),
                                   self.rt.ctx.instance_id)))

    def push(self, body: Body) -> dict[str, Any]:
        return dict(_wire(self.rt.writer.run_sync(push_command(self.grant, _wire(body)))))


@dataclass
class Report:
    """What a sync moved."""

    partitions: int = 0
    pulled: int = 0
    pushed: int = 0
    written: int = 0  # facts this instance stored
    dropped: int = 0  # facts this instance refused (erased or deleted here)
    peer_written: int = 0
    chunks: int = 0
    peer: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[str, int], None]  # (phase, facts moved)
LANES = 4  # pushes in flight at once, each over its own partitions


def _split(chunk: Chunk, limit: int) -> list[tuple[int, bytes]]:
    """The chunk as push bodies of at most `limit` bytes (in stream order: halves), each
    with its count of facts, encoded once."""
    body = orjson.dumps(chunk.wire())
    if len(body) <= limit or chunk.count <= 1:
        return [(chunk.count, body)]
    ordered = sorted(((r["partition"], r["instance_id"], r["counter"], name, r)
                      for name, found in chunk.facts.items() for r in found),
                     key=lambda x: x[:3])
    half = len(ordered) // 2
    parts = []
    for piece in (ordered[:half], ordered[half:]):
        facts: dict[str, list[Row]] = {}
        for *_, name, r in piece:
            facts.setdefault(name, []).append(r)
        parts += _split(Chunk(facts, None, False), limit)
    return parts


def sync(local: Instance, peer: Peer, partitions: list[str] | None = None, *,
         dataset: str = "default", limit: int = 2000,
         progress: Progress | None = None) -> Report:
    """Pull from the peer what this instance lacks, then push what the peer lacks."""
    me = describe(local.ctx, local.settings.max_body_bytes)
    with local.read_engine.connect() as conn:
        mine = held_vectors(conn, partitions)
    if partitions is None:
        mine = {p: v for p, v in mine.items() if p.startswith(f"{dataset}:")}
    answer = peer.hello({**me, "partitions": partitions, "vectors": mine})
    why = refusal(me, answer)
    if why is not None:
        raise SyncError(why)
    parts: list[str] = answer["partitions"]
    theirs: VersionVectors = answer["vectors"]
    report = Report(partitions=len(parts), peer=answer)
    with local.read_engine.connect() as conn:
        mine = held_vectors(conn, parts)
    cursor = None
    while True:  # pull
        chunk = peer.pull({"partitions": parts, "vectors": mine, "target": theirs,
                           "cursor": cursor, "limit": limit})
        facts, values = parse_facts(chunk, dataset)
        if facts:
            outcome = local.writer.run_sync(ApplyFacts(facts, values))
            report.pulled += outcome["received"]
            report.written += outcome["written"]
            report.dropped += outcome["dropped"]
            report.chunks += 1
            if progress is not None:
                progress("pull", outcome["received"])
        cursor = chunk["cursor"]
        if chunk["done"]:
            break
    with local.read_engine.connect() as conn:
        steps = plan(sendable_vectors(conn, local.ctx.instance_id, parts), theirs)
    max_bytes = int(answer.get("maxBodyBytes", 1024 * 1024)) * 9 // 10
    # Partitions are independent streams: LANES lanes of them push at once, so each of the
    # peer's workers has a chunk to check while its writer applies another (with two
    # lanes, both connections often landed on one worker of two and the other idled).
    # Each lane reads its next chunk while the peer applies the last one. Within a lane
    # chunks go one after another, which keeps every (partition, instance) stream a prefix.
    lane_of = {p: i % LANES for i, p in enumerate(sorted({step[0] for step in steps}))}
    lanes = [[s for s in steps if lane_of[s[0]] == k] for k in range(LANES)]
    lock = threading.Lock()

    def read(lane: Plan, position: tuple[str, str, int] | None
             ) -> tuple[Chunk, list[tuple[int, bytes]]]:
        with local.read_engine.connect() as conn:
            out = read_chunk(conn, lane, position, limit)
        return out, (_split(out, max_bytes) if out.count else [])

    def push_lane(lane: Plan) -> None:
        # The next chunk is read and encoded while the peer applies this one.
        with ThreadPoolExecutor(1) as reader:
            ahead = reader.submit(read, lane, None)
            while True:
                out, bodies = ahead.result()
                if not out.done:
                    ahead = reader.submit(read, lane, out.cursor)
                for count, body in bodies:
                    result = peer.push(body)
                    with lock:
                        report.pushed += count
                        report.peer_written += result["written"]
                        report.chunks += 1
                        if progress is not None:
                            progress("push", count)
                if out.done:
                    return

    with ThreadPoolExecutor(LANES) as pool:
        for done in [pool.submit(push_lane, lane) for lane in lanes if lane]:
            done.result()
    return report


__all__ = ["HttpPeer", "Instance", "LearnlogError", "LocalPeer", "Peer", "Report", "SyncError",
           "sync"]
