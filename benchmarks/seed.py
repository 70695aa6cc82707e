"""Seed a learnlog database with N summary rows for the read benchmarks (SPEC §8).

    .venv/bin/python benchmarks/seed.py --url sqlite:////tmp/bench.db --rows 10000000
    .venv/bin/python benchmarks/seed.py --url postgresql://postgres@127.0.0.1:5432/bench \
        --rows 10000000

Layout (strict context mode, dataset "default"): `rows / contents` learners, each enrolled in
one collection (of `--collections`, round robin) under that collection's context, with one
summary row per content of the collection (`--contents`, default 20). So every learner the
read benchmark picks has exactly 20 summaries in one collection/context: `view/read` of
those 20 contents and `summary/list` of that learner touch the same 20 rows, whatever the
table size. Learner i has completed the first k = (i·7919) mod (contents+1) contents and
started the rest; the enrolment figures (completed count, percent, status, completion time)
are the ones the app's fold would give for those statuses. No sessions are written: seeded
databases serve the read benchmarks only, `learnlog verify` runs on unseeded ones.

SQLite: one transaction, `executemany` of multi-row INSERTs on the stdlib driver,
`synchronous=OFF` and an in-memory journal on the seeding connection only; WAL mode is
restored afterwards (the app's own connections keep `synchronous=FULL`).
PostgreSQL: one transaction of TRUNCATE, drop the summaries primary key, `COPY … FREEZE`
through psycopg 3 `cursor.copy` (rows in primary-key order), add the same primary key back
(one sorted build), then `VACUUM ANALYZE`.

Also importable: `run.py` uses `seed()` and the id helpers (`user_id`, `collection_of`, …).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

DATASET = "default"
INSTANCE = "bench-seed"  # an instance id of its own: never collides with a server's counters
SHARED_PARTITION = f"{DATASET}:shared"
CONTENTS = 20
COLLECTIONS = 100
SQLITE_ROWS_PER_STATEMENT = 50  # 50 rows x 17 columns = 850 bound parameters per INSERT

err = Console(stderr=True)


# -- the layout ---------------------------------------------------------------------------

def user_id(i: int) -> str:
    """Zero-padded so that string order is numeric order (rows go in primary-key order)."""
    return f"bu{i:08d}"


def collection_id(c: int) -> str:
    return f"bcol{c:04d}"


def context_id(c: int) -> str:
    return f"bctx{c:04d}"


def content_id(c: int, j: int) -> str:
    return f"bcol{c:04d}-c{j:03d}"


def collection_of(i: int, collections: int = COLLECTIONS) -> int:
    return i % collections


def completed_of(i: int, contents: int = CONTENTS) -> int:
    """How many of learner i's contents are completed (the first k)."""
    return (i * 7919) % (contents + 1)


def users_for(rows: int, contents: int = CONTENTS) -> int:
    if rows % contents:
        raise SystemExit(f"--rows {rows} is not a multiple of --contents {contents}")
    return rows // contents


@dataclass
class SeedResult:
    url: str
    engine: str
    rows: int
    users: int
    enrolments: int
    collections: int
    contents: int
    seconds: float
    rows_per_second: float


# Summary columns written by the seed; the others stay NULL.
SUMMARY_COLUMNS = (
    "dataset", "user_id", "collection_key", "context_key", "content_id", "status", "progress",
    "time_spent", "first_access", "last_access", "view_count", "completed_at",
    "last_completed_at", "progress_details", "attempts_count", "rev", "updated_at",
)
ENROLMENT_COLUMNS = (
    "dataset", "user_id", "collection_id", "context_id", "enrolled_at", "active", "status",
    "completed_count", "progress", "completed_on", "certificates", "partition",
    "instance_id", "counter", "updated_at",
)
COLLECTION_COLUMNS = (
    "dataset", "collection_id", "version", "name", "description", "logo", "structure",
    "certificates", "leaf_count", "required_count", "partition", "instance_id", "counter",
    "updated_at",
)
CONTEXT_COLUMNS = (
    "dataset", "context_id", "collection_id", "name", "start_date", "end_date", "partition",
    "instance_id", "counter", "updated_at",
)


def _percent(done: int, required: int) -> int:
    """The app's one formula (domain.collection.progress_percent)."""
    if done == 0:
        return 0
    if done >= required:
        return 100
    return (100 * done) // required


class Layout:
    """Precomputed per-(collection, k) row tails so each learner costs a few operations."""

    def __init__(self, contents: int, collections: int, now_ms: int) -> None:
        self.contents, self.collections, self.now = contents, collections, now_ms
        base = now_ms - 30 * 86_400_000
        self.first = base
        details = json.dumps({"current": 5}, separators=(",", ":"))
        # tails[c][k] = list of per-content tuples (everything after user_id)
        self.tails: list[list[list[tuple[Any, ...]]]] = []
        self.enrol: list[tuple[Any, ...]] = []  # per k: status, count, percent, completed_on
        for k in range(contents + 1):
            completed_on = base + (k - 1) * 60_000 + 3_600_000 if k == contents else None
            self.enrol.append((2 if k == contents else 1, k, _percent(k, contents),
                               completed_on))
        for c in range(collections):
            per_k = []
            for k in range(contents + 1):
                rows = []
                for j in range(contents):
                    done = j < k
                    completed = base + j * 60_000 + 3_600_000 if done else None
                    rows.append((
                        collection_id(c), context_id(c), content_id(c, j),
                        2 if done else 1, 1.0 if done else 0.25, 60.0 * (j + 1),
                        base + j * 60_000, (completed or base + j * 60_000 + 600_000),
                        1, completed, completed, details, 0, 1, now_ms,
                    ))
                per_k.append(rows)
            self.tails.append(per_k)

    def structure(self, c: int) -> str:
        half = self.contents // 2
        units = [(f"{collection_id(c)}-u1", range(half)),
                 (f"{collection_id(c)}-u2", range(half, self.contents))]
        return json.dumps([
            {"identifier": uid, "type": "unit", "name": f"Unit {n + 1}",
             "children": [{"identifier": content_id(c, j), "type": "content",
                           "name": f"Content {j + 1}", "kind": "video"} for j in js]}
            for n, (uid, js) in enumerate(units) if js], separators=(",", ":"))

    def collection_rows(self) -> list[tuple[Any, ...]]:
        return [(DATASET, collection_id(c), 1, f"Benchmark collection {c}",
                 "Seeded by benchmarks/seed.py", None, self.structure(c), "[]", self.contents,
                 self.contents, SHARED_PARTITION, INSTANCE, c + 1, self.now)
                for c in range(self.collections)]

    def context_rows(self) -> list[tuple[Any, ...]]:
        return [(DATASET, context_id(c), collection_id(c), f"Benchmark batch {c}",
                 "2026-01-01", None, SHARED_PARTITION, INSTANCE,
                 self.collections + c + 1, self.now)
                for c in range(self.collections)]

    def enrolment_row(self, i: int, counter: int, active: Any) -> tuple[Any, ...]:
        uid = user_id(i)
        c = collection_of(i, self.collections)
        status, count, percent, completed_on = self.enrol[completed_of(i, self.contents)]
        return (DATASET, uid, collection_id(c), context_id(c), self.first, active, status,
                count, percent, completed_on, "[]", f"{DATASET}:user:{uid}", INSTANCE,
                counter, self.now)

    def summary_rows(self, i: int) -> list[tuple[Any, ...]]:
        head = (DATASET, user_id(i))
        tails = self.tails[collection_of(i, self.collections)][completed_of(i, self.contents)]
        return [head + t for t in tails]


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=err, transient=False)


# -- SQLite --------------------------------------------------------------------------------

def _sqlite_path(url: str) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise SystemExit(f"not a sqlite URL: {url}")
    return url[len(prefix):]


def _multi_insert(table: str, columns: tuple[str, ...], per: int) -> str:
    one = "(" + ",".join("?" * len(columns)) + ")"
    return f"INSERT INTO {table} ({','.join(columns)}) VALUES " + ",".join([one] * per)


def _sqlite_insert(cur: sqlite3.Cursor, table: str, columns: tuple[str, ...],
                   rows: Iterator[tuple[Any, ...]], per: int = SQLITE_ROWS_PER_STATEMENT,
                   advance: Callable[[int], None] | None = None, chunk: int = 100_000) -> int:
    """executemany of `per`-row INSERTs; a remainder goes in with single-row INSERTs."""
    many = _multi_insert(table, columns, per)
    single = _multi_insert(table, columns, 1)
    total = 0
    batch: list[tuple[Any, ...]] = []
    flat: list[Any] = []

    def flush(final: bool) -> None:
        nonlocal batch, total
        full = len(batch) - len(batch) % per
        params = []
        for s in range(0, full, per):
            flat.clear()
            for row in batch[s:s + per]:
                flat.extend(row)
            params.append(tuple(flat))
        cur.executemany(many, params)
        rest = batch[full:]
        if final and rest:
            cur.executemany(single, rest)
            rest = []
        done = len(batch) - len(rest)
        total += done
        if advance is not None:
            advance(done)
        batch = list(rest)

    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            flush(False)
    flush(True)
    return total


def seed_sqlite(url: str, rows: int, contents: int, collections: int,
                migrate_first: bool) -> SeedResult:
    path = _sqlite_path(url)
    if migrate_first:
        _migrate(url)
    users = users_for(rows, contents)
    layout = Layout(contents, collections, int(time.time() * 1000))
    start = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        cur = con.cursor()
        _sqlite_refuse_nonempty(cur)
        # Seeding only: no fsync, journal in memory. Per connection / until set back.
        cur.execute("PRAGMA journal_mode=MEMORY")
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA cache_size=-1048576")  # 1 GiB page cache for this connection
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("BEGIN")
        _sqlite_insert(cur, "collections", COLLECTION_COLUMNS, iter(layout.collection_rows()),
                       per=1)
        _sqlite_insert(cur, "contexts", CONTEXT_COLUMNS, iter(layout.context_rows()), per=1)
        with _progress() as bar:
            t_enr = bar.add_task("enrolments", total=users, rate="")
            _sqlite_insert(cur, "enrolments", ENROLMENT_COLUMNS,
                           (layout.enrolment_row(i, 2 * collections + i + 1, 1)
                            for i in range(users)),
                           advance=lambda n: bar.advance(t_enr, n))
            t_sum = bar.add_task("summaries", total=rows, rate="")
            t0 = time.perf_counter()

            def advance(n: int) -> None:
                bar.advance(t_sum, n)
                done = bar.tasks[t_sum].completed
                bar.update(t_sum, rate=f"{done / max(time.perf_counter() - t0, 1e-9):,.0f} rows/s")

            _sqlite_insert(cur, "summaries", SUMMARY_COLUMNS,
                           (r for i in range(users) for r in layout.summary_rows(i)),
                           advance=advance)
        cur.execute("COMMIT")
        err.print("analyze …")
        cur.execute("PRAGMA analysis_limit=2000")
        cur.execute("ANALYZE")
        cur.execute("PRAGMA synchronous=FULL")
        mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise SystemExit(f"could not restore WAL mode (got {mode})")
    finally:
        con.close()
    seconds = time.perf_counter() - start
    return SeedResult(url, "sqlite", rows, users, users, collections, contents,
                      round(seconds, 2), round(rows / seconds, 1))


def _sqlite_refuse_nonempty(cur: sqlite3.Cursor) -> None:
    (n,) = cur.execute("SELECT count(*) FROM (SELECT 1 FROM summaries LIMIT 1)").fetchone()
    if n:
        raise SystemExit("summaries is not empty: seed a fresh database")


# -- PostgreSQL ------------------------------------------------------------------------------

def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1).replace(
        "postgres://", "postgresql://", 1)


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return text


def _line(row: tuple[Any, ...]) -> str:
    return "\t".join(map(_copy_text, row)) + "\n"


def seed_postgres(url: str, rows: int, contents: int, collections: int,
                  migrate_first: bool) -> SeedResult:
    import psycopg

    if migrate_first:
        _migrate(url)
    users = users_for(rows, contents)
    layout = Layout(contents, collections, int(time.time() * 1000))
    # Per (collection, k): the 20 lines of a learner with the user id left as a hole, so a
    # learner's block is one str.join.
    hole = "\x00"
    blocks = [["".join(_line((DATASET, hole, *t)) for t in per_k).split(hole)
               for per_k in per_c] for per_c in layout.tails]
    start = time.perf_counter()
    with psycopg.connect(_pg_conninfo(url), autocommit=False) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM summaries)")
            if cur.fetchone()[0]:  # type: ignore[index]
                raise SystemExit("summaries is not empty: seed a fresh database")
            # Seeding only: this session does not wait for the WAL flush at commit.
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '1GB'")
            # TRUNCATE in the same transaction lets COPY … FREEZE write frozen, all-visible
            # rows: no hint-bit rewrites on the first reads.
            cur.execute("TRUNCATE summaries, enrolments, collections, contexts")
            # Loading a heap and building its primary key once afterwards (a sort) is ~3x
            # faster than maintaining the B-tree row by row. Same name, same columns.
            cur.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE conrelid = 'summaries'::regclass AND contype = 'p'")
            pk_name, pk_def = cur.fetchone()  # type: ignore[misc]
            cur.execute(f'ALTER TABLE summaries DROP CONSTRAINT "{pk_name}"')
            with cur.copy(f"COPY collections ({','.join(COLLECTION_COLUMNS)}) "
                          "FROM STDIN (FREEZE)") as cp:
                for r in layout.collection_rows():
                    cp.write(_line(r))
            with cur.copy(f"COPY contexts ({','.join(CONTEXT_COLUMNS)}) "
                          "FROM STDIN (FREEZE)") as cp:
                for r in layout.context_rows():
                    cp.write(_line(r))
            with _progress() as bar:
                t_enr = bar.add_task("enrolments", total=users, rate="")
                with cur.copy(f"COPY enrolments ({','.join(ENROLMENT_COLUMNS)}) "
                              "FROM STDIN (FREEZE)") as cp:
                    buf: list[str] = []
                    for i in range(users):
                        buf.append(_line(layout.enrolment_row(i, 2 * collections + i + 1,
                                                              True)))
                        if len(buf) == 20_000:
                            cp.write("".join(buf))
                            bar.advance(t_enr, len(buf))
                            buf.clear()
                    cp.write("".join(buf))
                    bar.advance(t_enr, len(buf))
                t_sum = bar.add_task("summaries", total=rows, rate="")
                t0 = time.perf_counter()
                with cur.copy(f"COPY summaries ({','.join(SUMMARY_COLUMNS)}) "
                              "FROM STDIN (FREEZE)") as cp:
                    step = 5_000  # learners per write (~100k rows, ~15 MB)
                    for s in range(0, users, step):
                        cp.write("".join(
                            user_id(i).join(blocks[collection_of(i, collections)]
                                            [completed_of(i, contents)])
                            for i in range(s, min(s + step, users))))
                        bar.advance(t_sum, (min(s + step, users) - s) * contents)
                        done = bar.tasks[t_sum].completed
                        bar.update(t_sum, rate=f"{done / (time.perf_counter() - t0):,.0f} rows/s")
            err.print("primary key …")
            cur.execute(f'ALTER TABLE summaries ADD CONSTRAINT "{pk_name}" {pk_def}')
        conn.commit()
        err.print("vacuum analyze …")
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) summaries")
        conn.execute("VACUUM (ANALYZE) enrolments")
        conn.execute("ANALYZE collections")
        conn.execute("ANALYZE contexts")
    seconds = time.perf_counter() - start
    return SeedResult(url, "postgresql", rows, users, users, collections, contents,
                      round(seconds, 2), round(rows / seconds, 1))


# -- entry points ------------------------------------------------------------------------------

def _migrate(url: str) -> None:
    """Create the schema with the app's own migrations."""
    from learnlog.store import migrate
    from learnlog.store.db import make_engine

    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def seed(url: str, rows: int, *, contents: int = CONTENTS, collections: int = COLLECTIONS,
         migrate_first: bool = True) -> SeedResult:
    """Seed `rows` summaries (and their enrolments, collections, contexts) into `url`."""
    if url.startswith("sqlite"):
        return seed_sqlite(url, rows, contents, collections, migrate_first)
    if url.startswith(("postgresql", "postgres")):
        return seed_postgres(url, rows, contents, collections, migrate_first)
    raise SystemExit(f"unsupported database URL: {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True,
                        help="sqlite:////abs/path.db or postgresql://user@host:port/db")
    parser.add_argument("--rows", type=int, default=10_000, help="summary rows (default 10000)")
    parser.add_argument("--contents", type=int, default=CONTENTS,
                        help="contents per collection = summaries per learner (default 20)")
    parser.add_argument("--collections", type=int, default=COLLECTIONS,
                        help="distinct collections (default 100)")
    parser.add_argument("--no-migrate", action="store_true",
                        help="the schema exists already")
    args = parser.parse_args(argv)
    result = seed(args.url, args.rows, contents=args.contents, collections=args.collections,
                  migrate_first=not args.no_migrate)
    err.print(f"[green]seeded[/green] {result.rows:,} summaries for {result.users:,} learners "
              f"in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)")
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
