"""What an instance holds, for sync (SPEC §5): per partition, the highest counter it holds
from each instance — the version vector a peer compares with its own to know what to send.

Every table whose rows are facts carries `partition`, `instance_id` and `counter`
(`schema._sync_columns`; tombstones too). Derived tables (summaries, group figures) and
local ones (outbox, exports, meta) do not, and are never exchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, func, select, text, union_all

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


# -- PostgreSQL: which counters are settled ---------------------------------------------
#
# Several processes write to one PostgreSQL database, and a transaction that took counter n
# may commit after one that took n+1. A peer that read n+1 first would never ask for n. So
# a writer registers the lowest counter it took as a transaction-scoped advisory lock
# (`register_counters`), and a reader sends this instance's facts only up to the counter
# below every such lock (`settled_counter`). The short gate lock closes the window between
# taking counters and registering them. Writers never wait for each other.

GATE = (0x4C4E << 48) | 1  # session lock: shared while a writer takes and registers counters
TAKEN = 0x4C4D  # high 16 bits of the bigint advisory keys that register a taken counter


def take_counters(conn: Connection, n: int) -> list[int]:
    """n fresh counters from the sequence, registered until this transaction ends: the
    gate taken shared, the counters drawn, the lowest registered, the gate released, in
    one call on the driver (`learnlog_take_counters`, migration 0014)."""
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute("SELECT learnlog_take_counters(%s, %s, %s)", (n, GATE, TAKEN),
                    prepare=True)
        return sorted(int(row[0]) for row in cur.fetchall())


def settled_counter(conn: Connection) -> int | None:
    """The highest counter of this database below which no transaction is still open
    (None on SQLite: its single writer commits counters in order)."""
    if conn.dialect.name != "postgresql":
        return None
    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": GATE})
    try:
        last, called = conn.execute(
            text("SELECT last_value, is_called FROM fact_counter")).one()
        low = conn.execute(text(
            "SELECT min(((classid::bigint & 65535) << 32) | objid::bigint) FROM pg_locks "
            "WHERE locktype = 'advisory' AND objsubid = 1 AND (classid::bigint >> 16) = :t "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ), {"t": TAKEN}).scalar()
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": GATE})
    top = int(last) if called else 0
    return top if low is None else min(top, int(low) - 1)


def sendable_vectors(conn: Connection, instance_id: str,
                     partitions: Iterable[str] | None = None) -> VersionVectors:
    """`held_vectors`, with this instance's counters capped at the settled one: what may
    be sent without a later commit filling a gap below it."""
    settled = settled_counter(conn)
    vectors = held_vectors(conn, partitions)
    if settled is not None:
        for vector in vectors.values():
            if vector.get(instance_id, 0) > settled:
                vector[instance_id] = settled
    return vectors
