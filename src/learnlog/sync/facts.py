"""Facts on the wire (SPEC §5): which tables travel, how a row is checked, how two versions
of one row become one, and how the facts a peer lacks are read, in order.

A fact's version is `(instance_id, counter)`. Facts are read per partition and instance in
counter order, so a receiver that applied a prefix of the stream holds exactly the facts
up to the last counter it applied, and an interrupted transfer resumes from there.

Summaries, enrolment figures and group figures are folds; they never travel. This module
never writes: `sync.apply` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from math import isfinite
from typing import Any

import orjson
from sqlalchemy import Boolean, Connection, Float, Integer, Table, Text

from ..domain import merge
from ..domain.erasures import parse_erasure
from ..domain.errors import Conflict, InvalidInput
from ..domain.ids import are_valid_ids, is_valid_id
from ..domain.keys import anonymous_partition, learner_of, partition_of, shared_partition
from ..store import rows
from ..store.fastsql import param_mark
from ..store.schema import (
    attempts,
    enrolments,
    item_attempts,
    sessions,
    tombstones,
    tries,
)
from ..store.sync import VersionVectors, synced_tables

PROTOCOL = 1
VERSION = ("instance_id", "counter")
Row = dict[str, Any]

# Text columns that hold plain text; every other Text column holds JSON.
PLAIN_TEXT = frozenset({("collections", "description"), ("item_attempts", "simple_answer"),
                        ("tombstones", "record_id")})


@cache
def tables() -> dict[str, Table]:
    """The tables whose rows travel, by name (computed once; do not change it)."""
    return {t.name: t for t in synced_tables()}


# -- how two versions of one row join ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Rule:
    """How rows of one table are read as values, joined, and written back."""

    load: Callable[[Row], Any]
    dump: Callable[[Any, Row], Row]  # the value with a version row's partition/version
    join: Callable[[Row, Any, Row, Any], Any]  # (row a, value a, row b, value b) → value
    # A joined value keeps its creator's id and the higher counter (single-writer facts
    # whose instance id says who created them); otherwise it gets a version of its own.
    creator_keeps: bool = False


def _record_value(row: Row) -> Row:
    return {k: v for k, v in row.items() if k not in VERSION}


def _record_dump(value: Row, version: Row) -> Row:
    return {**value, "instance_id": version["instance_id"], "counter": version["counter"]}


RECORD = Rule(load=_record_value, dump=_record_dump,
              join=lambda ra, a, rb, b: merge.merge_record(ra["updated_at"], a,
                                                           rb["updated_at"], b))

RULES: dict[str, Rule] = {
    "sessions": Rule(
        load=rows.session_from_row,
        dump=lambda s, v: rows.session_to_row(s, v["partition"], v["counter"],
                                              v["updated_at"]),
        join=lambda ra, a, rb, b: merge.merge_session(a, b), creator_keeps=True),
    "attempts": Rule(
        load=rows.attempt_from_row,
        dump=lambda a, v: rows.attempt_to_row(a, v["partition"], v["instance_id"],
                                              v["counter"]),
        join=lambda ra, a, rb, b: merge.merge_attempt(a, b)),
    "tries": Rule(
        load=rows.try_from_row,
        dump=lambda t, v: rows.try_to_row(t, v["partition"], v["instance_id"], v["counter"],
                                          v["updated_at"]),
        join=lambda ra, a, rb, b: merge.merge_try(a, b)),
    "item_attempts": Rule(
        load=rows.item_attempt_from_row,
        dump=lambda a, v: rows.item_attempt_to_row(a, v["partition"], v["instance_id"],
                                                   v["counter"], v["updated_at"]),
        join=lambda ra, a, rb, b: merge.merge_item_attempt(a, b)),
    "enrolments": Rule(
        load=rows.enrolment_from_row,
        dump=lambda e, v: rows.enrolment_to_row(e, v["partition"], v["instance_id"],
                                                v["counter"], v["updated_at"]),
        join=lambda ra, a, rb, b: merge.merge_enrolment(ra["updated_at"], a,
                                                        rb["updated_at"], b)),
}


def rule(table: str) -> Rule:
    """The join rule of a table (records any instance may rewrite: the last written)."""
    return RULES.get(table, RECORD)


def version_of(row: Row) -> tuple[int, str]:
    """A total order of versions, to pick one of two equal values the same way everywhere."""
    return (row["counter"], row["instance_id"])


def join_rows(table: str, stored: Row, incoming: Row,
              fresh: Callable[[], int], instance_id: str) -> Row | None:
    """The row to keep when `incoming` meets `stored` (same key), or None to keep `stored`.

    The join of the two values decides: if it is the incoming value, the incoming row
    (with its version) replaces the stored one; if it is the stored value, nothing
    changes; equal values keep the greater version, so every holder ends with the same
    row. A value that is neither (a true merge) is written with a new version: this
    instance's next counter, or the creator's higher counter for single-writer facts.
    """
    r = rule(table)
    a, b = r.load(stored), r.load(incoming)
    try:
        joined = r.join(stored, a, incoming, b)
    except ValueError as error:  # one id, two different things: refuse the chunk
        raise Conflict(f"A {table} fact has the id of a stored one but is another: "
                       f"{error}", code="CONFLICT", field=f"facts.{table}") from error
    if joined == b and (joined != a or version_of(incoming) > version_of(stored)):
        return incoming
    if joined == a:
        return None
    at = max(stored["updated_at"], incoming["updated_at"])
    if r.creator_keeps:
        version = {"partition": stored["partition"], "instance_id": stored["instance_id"],
                   "counter": max(stored["counter"], incoming["counter"]), "updated_at": at}
    else:
        version = {"partition": stored["partition"], "instance_id": instance_id,
                   "counter": fresh(), "updated_at": at}
    return r.dump(joined, version)


# -- checking rows that arrive ------------------------------------------------------------

def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", code="INVALID_FACT", field=field)


def _is_bool(value: Any) -> bool:
    return value is True or value is False


def _is_int(value: Any) -> bool:
    return type(value) is int and -2**63 <= value < 2**63


def _is_float(value: Any) -> bool:
    return (type(value) is float and value == value and abs(value) != INF) or (
        type(value) is int)


def _is_text(limit: int | None) -> Callable[[Any], bool]:
    if limit is None:
        return lambda value: type(value) is str
    return lambda value: type(value) is str and len(value) <= limit


INF = float("inf")


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    check: Callable[[Any], bool]
    nullable: bool
    json: bool
    label: str
    types: frozenset[type]  # what a value may be (besides None): the column-wise check
    limit: int | None  # a text column's length limit


@cache
def _columns(table_name: str) -> tuple[_Column, ...]:
    """How each column of a synced table is checked (built once per table)."""
    out = []
    for column in tables()[table_name].columns:
        kind = column.type
        check: Callable[[Any], bool]
        types: frozenset[type]
        limit = None
        if isinstance(kind, Boolean):
            check, types = _is_bool, frozenset[type]({bool})
        elif isinstance(kind, Integer):  # BigInteger too
            check, types = _is_int, frozenset({int})
        elif isinstance(kind, Float):
            # An int in a float column is fine, but the column-wise check leaves it (and
            # its size) to the row-by-row one.
            check, types = _is_float, frozenset({float})
        else:  # String and Text: every other synced column
            limit = getattr(kind, "length", None)
            check, types = _is_text(limit), frozenset({str})
        json = isinstance(kind, Text) and (table_name, column.name) not in PLAIN_TEXT
        out.append(_Column(column.name, check, bool(column.nullable), json, str(kind),
                           types, limit))
    return tuple(out)


def _check_columns(table_name: str, row: Row, where: str) -> None:
    for c in _columns(table_name):
        value = row[c.name]
        if value is None:
            if not c.nullable:
                raise _bad(f"{where}.{c.name}", "must not be null")
            continue
        if not c.check(value):
            raise _bad(f"{where}.{c.name}", f"is not a valid {c.label}")
        if c.json:
            try:
                orjson.loads(value)
            except orjson.JSONDecodeError:
                raise _bad(f"{where}.{c.name}", "must be JSON text") from None


NEVER_NEGATIVE = ("time_spent", "counter", "updated_at", "started_at", "ended_at")


@cache
def _id_columns(table_name: str) -> tuple[str, ...]:
    return tuple(c.name for c in tables()[table_name].primary_key.columns
                 if c.name not in ("partition", "record_id"))


def _check_values(table_name: str, row: Row, where: str) -> None:
    """The value rules the write routes keep, kept by pushed facts too: ids of 1 to 256
    printable characters, times and counters never negative, a session's progress 0..1,
    tombstones of a known kind in the partition that kind lives in."""
    for name in _id_columns(table_name):
        value = row[name]
        if isinstance(value, str) and not is_valid_id(value, max_length=None):
            raise _bad(f"{where}.{name}", "must be 1 to 256 printable characters")
    for name in NEVER_NEGATIVE:
        if name in row and row[name] is not None and row[name] < 0:
            raise _bad(f"{where}.{name}", "must not be negative")
    if row["counter"] < 1:
        raise _bad(f"{where}.counter", "must be at least 1")
    if table_name in ("sessions", "visitor_sessions") and not 0 <= row["progress"] <= 1:
        raise _bad(f"{where}.progress", "must be a fraction from 0 to 1")
    if table_name == "tombstones":
        kind, partition = row["kind"], row["partition"]
        if kind == "erasure":
            if learner_of(row["dataset"], partition) is None:
                raise _bad(f"{where}.partition", "an erasure must be in a learner's "
                           "partition ({dataset}:user:{user})")
        elif kind not in tables() or kind == "tombstones":
            raise _bad(f"{where}.kind", "must be 'erasure' or the name of a synced table")


def expected_partition(table: str, row: Row) -> str | None:
    """The partition a row must be in, from its own columns (None: any of the dataset's;
    tombstones name theirs)."""
    if "user_id" in row and table != "tombstones":
        return partition_of(row["dataset"], row["user_id"])
    if table == "visitor_sessions":
        return anonymous_partition(row["dataset"])
    if table == "tombstones":
        return None
    return shared_partition(row["dataset"])


NONE = type(None)
ROW_BY_ROW = frozenset({"tombstones", "collections"})  # rare, with rules of their own


def _column_wise(table_name: str, columns: Sequence[str], raw_rows: Sequence[Any],
                 dataset: str) -> tuple[list[Row], list[Any]] | None:
    """The rows and their domain values if every rule of `check_rows` holds, checked a
    column at a time (builtins over a whole column, not Python code per value); None when
    any rule might not hold: the row-by-row check then names the first bad field. It never
    accepts what the row-by-row check refuses."""
    if table_name in ROW_BY_ROW:
        return None
    width = len(columns)
    if not all(type(raw) is list and len(raw) == width for raw in raw_rows):
        return None
    if not raw_rows:
        return [], []
    cols: dict[str, tuple[Any, ...]] = dict(
        zip(columns, zip(*raw_rows, strict=True), strict=True))
    for c in _columns(table_name):
        values: Sequence[Any] = cols[c.name]
        kinds = set(map(type, values))
        if NONE in kinds:
            if not c.nullable:
                return None
            kinds.discard(NONE)
            values = [v for v in values if v is not None]
        if not kinds <= c.types:
            return None
        if not values:
            continue
        if int in kinds and not (min(values) >= -2**63 and max(values) < 2**63):
            return None
        if float in kinds and not all(map(isfinite, values)):
            return None
        if c.limit is not None and max(map(len, values)) > c.limit:
            return None
        if c.json:
            try:
                for v in values:
                    orjson.loads(v)
            except orjson.JSONDecodeError:
                return None
    if set(cols["dataset"]) != {dataset}:
        return None
    if "user_id" in cols:
        if not all(p == partition_of(dataset, u)
                   for p, u in set(zip(cols["partition"], cols["user_id"], strict=True))):
            return None
    elif set(cols["partition"]) != {expected_partition(table_name, {"dataset": dataset})}:
        return None
    for name in _id_columns(table_name):
        texts = {v for v in cols[name] if type(v) is str}
        if not are_valid_ids(texts, max_length=None):
            return None
    for name in NEVER_NEGATIVE:
        present = [v for v in cols.get(name, ()) if v is not None]
        if present and min(present) < 0:
            return None
    if min(cols["counter"]) < 1:
        return None
    if table_name in ("sessions", "visitor_sessions") and not (
            min(cols["progress"]) >= 0 and max(cols["progress"]) <= 1):
        return None
    out = [dict(zip(columns, raw, strict=True)) for raw in raw_rows]
    load = rule(table_name).load
    try:
        return out, [load(row) for row in out]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None


def check_rows(table_name: str, columns: Sequence[Any], raw_rows: Sequence[Any],
               dataset: str, field: str) -> tuple[list[Row], list[Any]]:
    """Rows of one table as sent by a peer, checked: every column present and typed, the
    dataset the caller's, the partition the one the row belongs to, JSON columns JSON, and
    domain values readable. Returns the rows and their domain values (`rule(table).load`);
    raises InvalidInput naming the first bad field."""
    known = tables()
    if table_name not in known:
        raise _bad(f"{field}.table", f"{table_name!r} is not a synced table")
    table = known[table_name]
    names = [c.name for c in table.columns]
    if not isinstance(columns, list) or sorted(map(str, columns)) != sorted(names) or len(
            columns) != len(names):
        raise _bad(f"{field}.columns", f"must name the columns of {table_name}: "
                   f"{', '.join(names)}")
    fast = _column_wise(table_name, columns, raw_rows, dataset)
    return fast if fast is not None else _row_by_row(table_name, columns, raw_rows,
                                                     dataset, field)


def _row_by_row(table_name: str, columns: Sequence[Any], raw_rows: Sequence[Any],
                dataset: str, field: str) -> tuple[list[Row], list[Any]]:
    """`check_rows` one row at a time, raising at the first bad field."""
    out: list[Row] = []
    loaded: list[Any] = []
    r = rule(table_name)
    for i, raw in enumerate(raw_rows):
        where = f"{field}.rows[{i}]"
        if not isinstance(raw, list) or len(raw) != len(columns):
            raise _bad(where, f"must be a list of {len(columns)} values")
        row = dict(zip(columns, raw, strict=True))
        _check_columns(table_name, row, where)
        if row["dataset"] != dataset:
            raise _bad(f"{where}.dataset", f"must be {dataset!r}, the caller's dataset")
        want = expected_partition(table_name, row)
        if want is not None and row["partition"] != want:
            raise _bad(f"{where}.partition", f"must be {want!r}")
        if want is None and not row["partition"].startswith(f"{dataset}:"):
            raise _bad(f"{where}.partition", f"must be a partition of {dataset!r}")
        _check_values(table_name, row, where)
        try:
            loaded.append(r.load(row))
            if table_name == "collections":
                rows.collection_from_row(row)
            if table_name == "tombstones" and row["kind"] == "erasure":
                parse_erasure(row["record_id"])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise _bad(where, f"is not a readable {table_name} fact ({error})") from error
        out.append(row)
    return out, loaded


# -- reading what a peer lacks ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Chunk:
    """Facts in (partition, instance, counter) order, grouped by table for the wire."""

    facts: dict[str, list[Row]]
    cursor: tuple[str, str, int] | None  # the last fact's position, None when empty
    done: bool

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.facts.values())

    def wire(self) -> dict[str, Any]:
        """The chunk as JSON: per table its columns once, then rows as lists."""
        out = []
        for name, found in self.facts.items():
            if found:
                columns = list(found[0])
                out.append({"table": name, "columns": columns,
                            "rows": [[r[c] for c in columns] for r in found]})
        return {"facts": out, "cursor": None if self.cursor is None else list(self.cursor),
                "done": self.done, "count": self.count}


Plan = list[tuple[str, str, int, int]]  # (partition, instance, held by the peer, top)


def plan(target: VersionVectors, peer: VersionVectors) -> Plan:
    """Which counters of which (partition, instance) the peer lacks, in stream order."""
    out = []
    for partition in sorted(target):
        theirs = peer.get(partition, {})
        for instance, top in sorted(target[partition].items()):
            if top > theirs.get(instance, 0):
                out.append((partition, instance, theirs.get(instance, 0), top))
    return out


@cache
def _range_sql(dialect: str, table: Table) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """A table's facts of one partition and instance in a counter range, in counter
    order: its column names, the SQL (for the driver's paramstyle), its boolean columns."""
    names = tuple(c.name for c in table.columns)
    mark = param_mark(dialect)
    sql = (f"SELECT {', '.join(names)} FROM {table.name} WHERE partition = {mark} "
           f"AND instance_id = {mark} AND counter > {mark} AND counter <= {mark} "
           f"ORDER BY counter LIMIT {mark}")
    flags = tuple(c.name for c in table.columns if isinstance(c.type, Boolean))
    return names, sql, flags if dialect == "sqlite" else ()


def read_chunk(conn: Connection, steps: Plan, cursor: tuple[str, str, int] | None,
               limit: int) -> Chunk:
    """At most `limit` facts of the plan after `cursor`, in stream order."""
    found: dict[str, list[Row]] = {}
    taken = 0
    last = cursor
    for partition, instance, low, top in steps:
        if cursor is not None and (partition, instance) < cursor[:2]:
            continue
        if cursor is not None and (partition, instance) == cursor[:2]:
            low = max(low, cursor[2])
        want = limit - taken
        if want <= 0:
            return Chunk(found, last, False)
        batch: list[tuple[int, str, Row]] = []
        raw: Any = conn.connection.driver_connection
        for table in synced_tables():
            names, sql, flags = _range_sql(conn.dialect.name, table)
            cur = raw.cursor()  # the driver directly: Core's per-row cost doubled the read
            # One more than wanted: whether the stream goes on after this chunk (with
            # exactly `want` read, a chunk could not tell and ended the sync early).
            cur.execute(sql, (partition, instance, low, top, want + 1))
            for values in cur.fetchall():
                fact = dict(zip(names, values, strict=True))
                for name in flags:  # SQLite keeps booleans as 0/1
                    if fact[name] is not None:
                        fact[name] = bool(fact[name])
                batch.append((fact["counter"], table.name, fact))
            cur.close()
        batch.sort(key=lambda x: x[0])
        for counter, name, fact in batch[:want]:
            found.setdefault(name, []).append(fact)
            last = (partition, instance, counter)
        taken += min(len(batch), want)
        if len(batch) > want:
            return Chunk(found, last, False)
    return Chunk(found, last, True)


def parse_cursor(raw: Any, field: str) -> tuple[str, str, int] | None:
    """A cursor as sent back by a peer: null or [partition, instance, counter]."""
    if raw is None:
        return None
    if (isinstance(raw, list) and len(raw) == 3 and isinstance(raw[0], str)
            and isinstance(raw[1], str) and isinstance(raw[2], int)
            and not isinstance(raw[2], bool)):
        return (raw[0], raw[1], raw[2])
    raise _bad(field, "must be null or [partition, instance, counter]")


def parse_vectors(raw: Any, field: str) -> VersionVectors:
    """Version vectors as sent by a peer: {partition: {instance: counter}}."""
    if not isinstance(raw, Mapping):
        raise _bad(field, "must be an object of partition → {instance → counter}")
    out: VersionVectors = {}
    for partition, vector in raw.items():
        if not isinstance(vector, Mapping) or not all(
                isinstance(i, str) and isinstance(c, int) and not isinstance(c, bool)
                and c >= 0 for i, c in vector.items()):
            raise _bad(f"{field}.{partition}", "must map instance ids to counters")
        out[str(partition)] = dict(vector)
    return out


def partitions_of(facts: Mapping[str, Iterable[Row]]) -> set[str]:
    """Every partition the facts are in."""
    return {r["partition"] for found in facts.values() for r in found}


TOMBSTONES = tombstones.name
SUMMARY_FACTS = (sessions.name, attempts.name)  # what a summary folds
ERASABLE = (sessions.name, attempts.name, tries.name, item_attempts.name, enrolments.name)
