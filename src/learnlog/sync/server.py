"""The serving side of sync (SPEC §5): hello, pull and push over one database.

A caller is granted partitions: an admin (or service) every partition of its dataset, a
device the ones its token names. Hello refuses a peer that speaks another protocol or
resolves keys in another context mode, saying what differs; pull sends the facts the
peer lacks in chunks; push applies the peer's facts, all of a chunk or none of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ..domain.errors import Conflict, Forbidden, InvalidInput
from ..service.ports import ServiceContext
from ..store.sync import VersionVectors, held_vectors, sendable_vectors
from .apply import ApplyFacts
from .facts import (
    PROTOCOL,
    Row,
    check_rows,
    parse_cursor,
    parse_vectors,
    partitions_of,
    plan,
    read_chunk,
)

MAX_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Grant:
    """What a caller may sync: every partition of its dataset (None) or the ones named."""

    dataset: str
    partitions: frozenset[str] | None

    def allows(self, partition: str) -> bool:
        if not partition.startswith(f"{self.dataset}:"):
            return False  # nothing crosses datasets, whatever a token names
        return self.partitions is None or partition in self.partitions

    def check(self, partitions: Sequence[str], field: str) -> None:
        """Refuse (403) any partition outside the grant."""
        for p in partitions:
            if not self.allows(p):
                raise Forbidden(f"This token is not granted partition {p!r}.",
                                code="PARTITION_NOT_GRANTED", field=field)


def refusal(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> str | None:
    """Why two instances may not sync, or None: the protocol and the context mode must be
    the same on both sides (keys are resolved by the mode; SPEC §2.1)."""
    differs = []
    for name, label in (("protocol", "protocol versions"), ("contextMode", "context modes")):
        if ours[name] != theirs.get(name):
            differs.append(f"{label} differ (this instance: {ours[name]}, the other: "
                           f"{theirs.get(name)})")
    return "; ".join(differs) + "; sync refused." if differs else None


def _partitions(raw: Any, field: str) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise InvalidInput(f"{field} must be a list of partition names.",
                           code="INVALID_PARAMETER_VALUE", field=field)
    return sorted(set(raw))


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a JSON object.", code="INVALID_PARAMETER_VALUE",
                           field="body")
    return body


def hello(conn: Connection, grant: Grant, me: Mapping[str, Any], body: Any) -> dict[str, Any]:
    """Check the peer, settle the partitions and say what this instance holds of them."""
    body = _object(body)
    why = refusal(me, body)
    if why is not None:
        raise Conflict(why, code="SYNC_REFUSED", field="contextMode" if body.get(
            "protocol") == me["protocol"] else "protocol")
    wanted = _partitions(body.get("partitions"), "partitions")
    theirs = parse_vectors(body.get("vectors", {}), "vectors")
    if wanted is not None:
        grant.check(wanted, "partitions")
        partitions = wanted
    elif grant.partitions is not None:
        partitions = sorted(grant.partitions)
    else:
        held = held_vectors(conn)
        partitions = sorted(p for p in set(held) | set(theirs) if grant.allows(p))
    return {**me, "partitions": partitions,
            "vectors": sendable_vectors(conn, me["instanceId"], partitions)}


def pull(conn: Connection, grant: Grant, body: Any, instance_id: str) -> dict[str, Any]:
    """The next chunk of facts the peer lacks (up to the `target` hello returned)."""
    body = _object(body)
    partitions = _partitions(body.get("partitions"), "partitions")
    if partitions is None:
        raise InvalidInput("partitions is mandatory (the ones hello returned).",
                           code="INVALID_PARAMETER_VALUE", field="partitions")
    grant.check(partitions, "partitions")
    theirs = parse_vectors(body.get("vectors", {}), "vectors")
    raw_target = body.get("target")
    target: VersionVectors = (sendable_vectors(conn, instance_id, partitions)
                              if raw_target is None
                              else parse_vectors(raw_target, "target"))
    target = {p: target.get(p, {}) for p in partitions}
    cursor = parse_cursor(body.get("cursor"), "cursor")
    limit = body.get("limit", 2000)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_CHUNK:
        raise InvalidInput(f"limit must be 1 to {MAX_CHUNK}.", code="INVALID_PARAMETER_VALUE",
                           field="limit")
    return read_chunk(conn, plan(target, theirs), cursor, limit).wire()


def parse_facts(body: Any, dataset: str) -> tuple[dict[str, list[Row]], dict[str, list[Any]]]:
    """The facts of a push or a pulled chunk, checked (400 naming the field), by table,
    with their domain values (in the same order)."""
    body = _object(body)
    raw = body.get("facts")
    if not isinstance(raw, list):
        raise InvalidInput("facts must be a list of {table, columns, rows}.",
                           code="INVALID_PARAMETER_VALUE", field="facts")
    out: dict[str, list[Row]] = {}
    values: dict[str, list[Any]] = {}
    count = 0
    for i, group in enumerate(raw):
        where = f"facts[{i}]"
        if not isinstance(group, dict) or not isinstance(group.get("rows"), list):
            raise InvalidInput(f"{where} must be an object with table, columns and rows.",
                               code="INVALID_PARAMETER_VALUE", field=where)
        count += len(group["rows"])
        if count > MAX_CHUNK:
            raise InvalidInput(f"A push carries at most {MAX_CHUNK} facts.",
                               code="INVALID_PARAMETER_VALUE", field=f"{where}.rows")
        name = str(group.get("table"))
        found, loaded = check_rows(name, group.get("columns") or [], group["rows"], dataset,
                                   where)
        out.setdefault(name, []).extend(found)
        values.setdefault(name, []).extend(loaded)
    return out, values


def push_command(grant: Grant, body: Any) -> ApplyFacts:
    """The writer command that applies a push (refused whole if any fact is outside the
    grant)."""
    facts, values = parse_facts(body, grant.dataset)
    grant.check(sorted(partitions_of(facts)), "facts.partition")
    return ApplyFacts(facts, values)


def describe(ctx: ServiceContext, max_body_bytes: int) -> dict[str, Any]:
    """What an instance tells a peer about itself in hello."""
    return {"protocol": PROTOCOL, "contextMode": ctx.mode.value,
            "instanceId": ctx.instance_id, "maxBodyBytes": max_body_bytes}
