"""Where the pipelines run: DuckDB (embedded, the default) or Apache Spark (local or a
cluster URL). Each engine reads tracking-log text into the raw event columns of
`pipelines.RAW_COLUMNS` its own fastest way, keeps the normalised events as Parquet, and
runs the Ibis expressions of `pipelines` over them.

Reading (SPEC §6): one JSON event per line; lines starting with `#` and blank lines are
comments; a line that is not a JSON object with a time is malformed. Both are counted,
never fatal. `event` is a JSON string for browser events and an object for server ones:
both are read.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
from ibis.expr.types import Table

from . import pipelines

PAYLOAD_PATHS = ("$.id", "$.currentTime", "$.old_time", "$.new_time", "$.duration",
                 "$.old", "$.new", "$.problem_id", "$.grade", "$.max_grade", "$.attempts",
                 "$.target_id")


@dataclass
class Counts:
    """What reading some log text found."""

    lines: int = 0
    comments: int = 0
    malformed: int = 0
    events: int = 0  # JSON events (with and without a user or a course)

    def add(self, other: Counts) -> None:
        self.lines += other.lines
        self.comments += other.comments
        self.malformed += other.malformed
        self.events += other.events


@dataclass(frozen=True)
class Piece:
    """Log text to read: a whole file (plain or gzip), or a plain file from a byte offset
    (what a grown file added)."""

    path: Path
    offset: int = 0

    @property
    def gzip(self) -> bool:
        return self.path.suffix == ".gz"


def line_counts(path: Path, block: int = 1 << 24) -> tuple[int, int, int]:
    """(lines, blank lines, comment lines) of a plain text file, counted on its bytes a
    block at a time (constant memory; numpy compares whole blocks at once)."""
    import numpy as np

    lines = blank = comments = 0
    before = 10  # the byte before the first: the file starts a line
    last = 10
    with open(path, "rb") as f:
        while chunk := f.read(block):
            data = np.frombuffer(chunk, dtype=np.uint8)
            ends = data == 10
            lines += int(np.count_nonzero(ends))
            # The byte that starts each line: the block's first (after `before`), then the
            # one after every newline inside the block.
            starts = data[1:][ends[:-1]]
            if before == 10:
                starts = np.concatenate((data[:1], starts))
            blank += int(np.count_nonzero(starts == 10))
            comments += int(np.count_nonzero(starts == 35))
            before = last = int(data[-1])
    if last != 10:
        lines += 1  # a last line without its newline
    return lines, blank, comments


def text_of(piece: Piece, scratch: Path) -> Path:
    """The piece as a file of its own text: a grown file's new part is copied out to
    `scratch`."""
    if not piece.offset:
        return piece.path
    with open(piece.path, "rb") as f, open(scratch, "wb") as out:
        f.seek(piece.offset)
        while block := f.read(1 << 24):
            out.write(block)
    return scratch


# DuckDB: `read_json` parses the envelope fields it is asked for and nothing else (fast),
# but after a broken line it can lose the line that follows. So its rows are checked
# against the text's own counts of lines, blank lines and comment lines: text with any line
# that is neither an event nor a comment is read line by line (slower, exact).
ENVELOPE_FIELDS: dict[str, Any] = {
    "username": "VARCHAR", "event_type": "VARCHAR", "name": "VARCHAR",
    "event_source": "VARCHAR", "time": "VARCHAR", "page": "VARCHAR", "referer": "VARCHAR",
    "context": {"course_id": "VARCHAR", "module": {"usage_key": "VARCHAR"}},
    "event": "JSON"}


def _struct(fields: dict[str, Any]) -> str:
    """DuckDB's type of the envelope, as `read_json(columns=…)` takes it."""
    def kind(value: Any) -> str:
        if isinstance(value, dict):
            return "STRUCT(" + ", ".join(f"{k} {kind(v)}" for k, v in value.items()) + ")"
        return str(value)
    return "{" + ", ".join(f"'{k}': '{kind(v)}'" for k, v in fields.items()) + "}"


ENVELOPE = _struct(ENVELOPE_FIELDS)  # read_json's columns
ENVELOPE_JSON = json.dumps(ENVELOPE_FIELDS, separators=(",", ":"))  # json_transform's


def _trimmed(column: str) -> str:
    """DuckDB: whitespace off both ends (ids arrive with a leading newline in old logs)."""
    return f"trim({column}, chr(32) || chr(9) || chr(10) || chr(13) || chr(11) || chr(12))"


def _duck_select(source: str) -> str:
    """The raw columns from a relation of envelopes (`time`, `event` JSON, …), a row for
    every row of it (`shape` says which had no time, or nothing at all)."""
    paths = "[" + ", ".join(f"'{p}'" for p in PAYLOAD_PATHS) + "]"
    return f"""
    WITH env AS (SELECT *, event->>'$' AS payload FROM {source}),
    p AS (SELECT *, CASE WHEN json_valid(payload)
                         THEN json_extract_string(payload, {paths}) END AS g FROM env)
    SELECT epoch_us(try_cast(time AS TIMESTAMPTZ)) AS ts, {_trimmed("username")} AS username,
           {_trimmed("context.course_id")} AS course_raw, page, event_type, name,
           event_source, referer, context.module.usage_key AS usage_key,
           {_trimmed("g[1]")} AS raw_id,
           try_cast(g[2] AS DOUBLE) AS current_time, try_cast(g[3] AS DOUBLE) AS old_time,
           try_cast(g[4] AS DOUBLE) AS new_time, try_cast(g[5] AS DOUBLE) AS duration,
           try_cast(g[6] AS BIGINT) AS nav_old, try_cast(g[7] AS BIGINT) AS nav_new,
           g[8] AS problem_id, try_cast(g[9] AS DOUBLE) AS grade,
           try_cast(g[10] AS DOUBLE) AS max_grade, try_cast(g[11] AS BIGINT) AS attempts,
           g[12] AS target_id,
           CAST(CASE WHEN time IS NOT NULL THEN {pipelines.ACCEPTED}
                     WHEN username IS NULL AND event IS NULL THEN {pipelines.EMPTY}
                     ELSE {pipelines.UNTIMED} END AS TINYINT) AS shape
    FROM p"""


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class _Engine:
    """What both engines do the same way, through Ibis: the event store and results."""

    ibis: Any

    def events(self, files: Sequence[Path]) -> Table:
        """The accepted events of these batches (Parquet files, or directories of them),
        as one table."""
        return _stored(self.ibis.read_parquet(
            [str(f / "*.parquet") if f.is_dir() else str(f) for f in files]))

    def arrow(self, expr: Table) -> Any:
        """An expression's rows, as an Arrow table."""
        return expr.to_pyarrow()

    def execute(self, expr: Table) -> list[dict[str, Any]]:
        """An expression's rows, as dicts."""
        return list(self.arrow(expr).to_pylist())

    def count(self, files: Sequence[Path]) -> tuple[int, list[str]]:
        """How many events the batches hold, and of which courses."""
        evs = self.events(files)
        found = self.execute(evs.group_by("course_id").aggregate(n=evs.count()))
        return sum(int(r["n"]) for r in found), [str(r["course_id"]) for r in found]


class DuckDBEngine(_Engine):
    """DuckDB in this process: `threads` and `memory_limit` bound what it takes (it spills
    to `temp_directory` beyond the limit)."""

    name = "duckdb"

    def __init__(self, workdir: Path, memory_limit: str = "1GB", threads: int = 0) -> None:
        import duckdb

        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = duckdb.connect(config={
            "memory_limit": memory_limit, "temp_directory": str(workdir / "spill"),
            "preserve_insertion_order": False,
            **({"threads": threads} if threads else {})})
        # Days, weeks and times without an offset are UTC (SPEC §6), not the machine's
        # zone (DuckDB's default). Ibis sets this too when it takes the connection; the
        # rules do not rest on that. Set after connecting: time-zone support loads then.
        self.db.execute("SET TimeZone = 'UTC'")
        self.ibis = ibis.duckdb.from_connection(self.db)

    def close(self) -> None:
        self.db.close()

    # -- reading ----------------------------------------------------------------------
    def parse(self, pieces: Sequence[Piece], out: Path,
              done: Callable[[Piece], None] | None = None) -> list[Counts]:
        """Read the pieces and write their normalised rows into the directory `out`, a
        Parquet file each, in one streaming pass each (the text is never held whole);
        what each piece held. `done` hears of each piece read."""
        counts = []
        out.mkdir(parents=True, exist_ok=True)
        for i, piece in enumerate(pieces):
            part = out / f"part-{i}.parquet"
            found = self._fast(piece, part) if not piece.gzip else None
            if found is None:
                found = self._exact(piece, part)
            counts.append(found)
            if done is not None:
                done(piece)
        return counts

    def _write(self, envelopes: str, part: Path) -> tuple[int, int, int]:
        """Normalise a relation of envelopes into the Parquet file `part`; its rows, its
        rows with no field read, and its rows with a time."""
        self.db.execute(f"CREATE OR REPLACE TEMP VIEW raw_events AS {_duck_select(envelopes)}")
        self.ibis.to_parquet(pipelines.events(self.ibis.table("raw_events")), part)
        found = self.db.execute(
            f"SELECT count(*), count(*) FILTER (WHERE status = {pipelines.EMPTY}), "
            f"count(*) FILTER (WHERE status IN ({pipelines.ACCEPTED}, {pipelines.UNPLACED})) "
            f"FROM read_parquet({_quote(part)})").fetchone()
        return found or (0, 0, 0)

    def _fast(self, piece: Piece, part: Path) -> Counts | None:
        source = text_of(piece, self.workdir / f"{part.stem}.tail.log")
        # The text's own line counts, taken in a thread while DuckDB reads (both let go
        # of the GIL for their long loops).
        with ThreadPoolExecutor(1) as pool:
            counting = pool.submit(line_counts, source)
            rows, nulls, timed = self._write(
                f"read_json({_quote(source)}, format='newline_delimited', ignore_errors=true, "
                f"columns={ENVELOPE}, maximum_object_size=16777216)", part)
            lines, blank, comments = counting.result()
        if rows != lines - blank or nulls != comments:
            # A line that is not an event: it may have taken its neighbour with it (the
            # neighbour then reads as nothing too), so the text is read line by line.
            part.unlink()
            return None
        return Counts(lines=lines, comments=comments + blank,
                      malformed=rows - timed - comments, events=timed)

    def _exact(self, piece: Piece, part: Path) -> Counts:
        source = text_of(piece, self.workdir / f"{part.stem}.tail.log")
        self.db.execute(
            "CREATE OR REPLACE TEMP TABLE piece_lines AS SELECT line FROM read_csv("
            f"{_quote(source)}, columns={{'line': 'VARCHAR'}}, header=false, "
            r"delim='\x1f', quote='', escape='', auto_detect=false, strict_mode=false, "
            "max_line_size=16777216, new_line='\\n')")
        lines, comments = self.db.execute(
            "SELECT count(*), count(*) FILTER (WHERE line IS NULL OR trim(line) = '' OR "
            "starts_with(ltrim(line), '#')) FROM piece_lines").fetchone() or (0, 0)
        _, _, timed = self._write(
            f"(SELECT j.* FROM (SELECT json_transform(line, '{ENVELOPE_JSON}') AS j "
            "FROM piece_lines WHERE line IS NOT NULL AND trim(line) <> '' AND NOT "
            "starts_with(ltrim(line), '#') AND json_valid(line) AND "
            "json_type(line) = 'OBJECT'))", part)
        self.db.execute("DROP TABLE piece_lines")
        return Counts(lines=lines, comments=comments,
                      malformed=lines - comments - timed, events=timed)


class SparkEngine(_Engine):
    """Apache Spark, local (`local[2]`) or a cluster (`spark://host:7077`): it reads the
    text line by line, so its counts are exact for any input."""

    name = "spark"

    def __init__(self, workdir: Path, master: str = "local[2]") -> None:
        from pyspark.sql import SparkSession

        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.spark = (SparkSession.builder.master(master).appName("learnlog")
                      .config("spark.ui.enabled", "false")
                      .config("spark.sql.session.timeZone", "UTC")
                      .config("spark.sql.shuffle.partitions", "8")
                      .config("spark.driver.memory", "1g")
                      # nothing written into the working directory
                      .config("spark.sql.catalogImplementation", "in-memory")
                      .config("spark.sql.warehouse.dir", str(workdir / "warehouse"))
                      .getOrCreate())
        self.spark.sparkContext.setLogLevel("ERROR")
        self.ibis = ibis.pyspark.connect(self.spark)

    def close(self) -> None:
        """Stop Spark and its JVM (and close the Python side's sockets to it)."""
        from pyspark import SparkContext

        self.spark.stop()
        gateway = SparkContext._gateway
        if gateway is not None:
            jvm = getattr(gateway, "proc", None)  # the JVM pyspark started, if it did
            gateway.shutdown()
            SparkContext._gateway = None
            SparkContext._jvm = None
            if jvm is not None:
                if jvm.stdin is not None:
                    jvm.stdin.close()  # the JVM exits when its stdin closes
                try:
                    jvm.wait(timeout=30)
                except subprocess.TimeoutExpired:  # a JVM that will not stop is killed
                    jvm.kill()
                    jvm.wait()

    def arrow(self, expr: Table) -> Any:
        """An expression's rows (Ibis collects Spark results through pandas, whose 3.x
        deprecation warnings about Ibis's own calls are not the user's business)."""
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="pandas")
            warnings.filterwarnings("ignore", message=".*(copy keyword|infer_string).*")
            return super().arrow(expr)

    def events(self, files: Sequence[Path]) -> Table:
        """The stored events (Spark reads a list of batch directories at once)."""
        self.spark.read.parquet(*(str(f) for f in files)).createOrReplaceTempView("events")
        return _stored(self.ibis.table("events"))

    def parse(self, pieces: Sequence[Piece], out: Path,
              done: Callable[[Piece], None] | None = None) -> list[Counts]:
        """Read the pieces and write their normalised events to the Parquet directory
        `out`; what each piece held. Spark reads them all at once: `done` hears of each
        when all are read."""
        from pyspark.sql import functions as F

        sources = [str(text_of(p, self.workdir / f"piece_{i}.tail.log"))
                   for i, p in enumerate(pieces)]
        if not sources:
            return []
        lines = self.spark.read.text(sources).select(
            F.col("value").alias("line"), F.input_file_name().alias("file"))
        comment = (F.col("line").isNull() | (F.trim("line") == "")
                   | F.ltrim("line").startswith("#"))
        timed = F.get_json_object("line", "$.time").isNotNull() & ~comment
        per_file = {_local_path(r["file"]): r for r in lines.groupBy("file").agg(
            F.count(F.lit(1)).alias("lines"),
            F.sum(F.when(comment, 1).otherwise(0)).alias("comments"),
            F.sum(F.when(timed, 1).otherwise(0)).alias("events")).collect()}
        counts = []
        for source in sources:
            found = per_file.get(Path(source).resolve().as_posix())
            if found is None:
                counts.append(Counts())
                continue
            counts.append(Counts(lines=found["lines"], comments=found["comments"],
                                 malformed=found["lines"] - found["comments"] - found["events"],
                                 events=found["events"]))
        env = lines.where(timed).select(
            *(F.get_json_object("line", f"$.{k}").alias(k) for k in (
                "time", "username", "page", "event_type", "name", "event_source",
                "referer")),
            F.get_json_object("line", "$.context.course_id").alias("course_raw"),
            F.get_json_object("line", "$.context.module.usage_key").alias("usage_key"),
            F.get_json_object("line", "$.event").alias("payload"))
        get = {path: F.get_json_object("payload", path) for path in PAYLOAD_PATHS}

        def num(path: str, kind: str) -> Any:
            return F.expr(f"try_cast(get_json_object(payload, '{path}') AS {kind})")
        def trimmed(column: Any) -> Any:
            return F.regexp_replace(column, r"^\s+|\s+$", "")
        raw = env.select(
            F.expr("unix_micros(try_cast(time AS TIMESTAMP))").alias("ts"),
            trimmed(F.col("username")).alias("username"),
            trimmed(F.col("course_raw")).alias("course_raw"), "page", "event_type", "name",
            "event_source", "referer", "usage_key", trimmed(get["$.id"]).alias("raw_id"),
            num("$.currentTime", "DOUBLE").alias("current_time"),
            num("$.old_time", "DOUBLE").alias("old_time"),
            num("$.new_time", "DOUBLE").alias("new_time"),
            num("$.duration", "DOUBLE").alias("duration"),
            num("$.old", "BIGINT").alias("nav_old"), num("$.new", "BIGINT").alias("nav_new"),
            get["$.problem_id"].alias("problem_id"), num("$.grade", "DOUBLE").alias("grade"),
            num("$.max_grade", "DOUBLE").alias("max_grade"),
            num("$.attempts", "BIGINT").alias("attempts"),
            get["$.target_id"].alias("target_id"),
            F.lit(pipelines.ACCEPTED).cast("tinyint").alias("shape"))  # every line timed
        raw.createOrReplaceTempView("raw_events")
        normalised = pipelines.events(self.ibis.table("raw_events"))
        self.ibis.to_parquet(normalised, str(out))  # a directory of part files
        if done is not None:
            for piece in pieces:
                done(piece)
        return counts



def _stored(rows: Table) -> Table:
    """The accepted events of stored rows, with their places (batches written before
    places and statuses were kept hold accepted events only, without places)."""
    evs = pipelines.accepted(rows) if "status" in rows.columns else rows
    return evs if "place" in evs.columns else pipelines.with_places(evs)


def _local_path(uri: str) -> str:
    """A path from Spark's `input_file_name()` (`file:///a%20b/c.log` → `/a b/c.log`)."""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def open_engine(name: str, workdir: Path, *, memory_limit: str = "1GB", threads: int = 0,
                master: str = "local[2]") -> DuckDBEngine | SparkEngine:
    """The engine of that name, working in `workdir`."""
    if name == "spark":
        return SparkEngine(workdir, master)
    return DuckDBEngine(workdir, memory_limit, threads)

