"""What an instance holds, for sync (SPEC §5): per partition, the highest counter it holds
from each instance — the version vector a peer compares with its own to know what to send.

Every table whose rows are facts carries `partition`, `instance_id` and `counter`
(`schema._sync_columns`; tombstones too). Derived tables (summaries, group figures) and
local ones (outbox, exports, meta) do not, and are never exchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from sqlalchemy import Connection, Table, func, select, union_all

from .schema import metadata

VersionVectors = dict[str, dict[str, int]]  # partition → instance id → highest counter


@cache
def synced_tables() -> tuple[Table, ...]:
    """The tables whose rows are facts, in a fixed order (computed once)."""
    return tuple(t for t in metadata.sorted_tables
                 if {"partition", "instance_id", "counter"} <= set(t.c.keys()))


def held_vectors(conn: Connection, partitions: Iterable[str] | None = None
                 ) -> VersionVectors:
    """The version vector of every partition this database holds facts of (or of the ones
    named; a named partition with no facts gets an empty vector)."""
    wanted = None if partitions is None else sorted(set(partitions))
    parts = []
    for t in synced_tables():
        query = select(t.c.partition, t.c.instance_id, func.max(t.c.counter).label("top"))
        if wanted is not None:
            query = query.where(t.c.partition.in_(wanted))
        parts.append(query.group_by(t.c.partition, t.c.instance_id))
    vectors: VersionVectors = {p: {} for p in wanted or ()}
    for partition, instance_id, top in conn.execute(union_all(*parts)):
        held = vectors.setdefault(partition, {})
        held[instance_id] = max(held.get(instance_id, 0), int(top))
    return vectors
