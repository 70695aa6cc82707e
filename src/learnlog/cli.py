"""`learnlog …`: the commands of SPEC §11 over the same service layer the API uses."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .api.auth import ROLES, mint
from .bootstrap import bootstrap
from .settings import Settings
from .store.db import sqlite_file

app = typer.Typer(help="learnlog: trustworthy learning progress.", no_args_is_help=True,
                  add_completion=False)
err = Console(stderr=True)


def _settings() -> Settings:
    return Settings()


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    rt = bootstrap(_settings())
    rt.close()
    err.print("[green]migrations applied[/green]")


@app.command()
def demo() -> None:
    """Load demo data (idempotent: running it twice changes nothing)."""
    from sqlalchemy import select

    from .service.demo import commands
    from .store.schema import collections

    rt = bootstrap(_settings())
    try:
        with rt.engine.connect() as conn:
            present = conn.execute(select(collections.c.collection_id).where(
                collections.c.collection_id == "class-1-maths")).first()
        if present is not None:
            err.print("demo data already loaded")
            return
        todo = commands()
        with _bar() as bar:
            task = bar.add_task("demo data", total=len(todo))
            for command in todo:
                rt.writer.run_sync(command)
                bar.advance(task)
        err.print("[green]demo data loaded[/green]: collections class-1-maths and "
                  "class-1-science, context batch-1, learners rahul, asha, meena")
    finally:
        rt.close()


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="user id (the token's subject)")],
    role: Annotated[list[str] | None, typer.Option(help="admin|coach|learner|device|service")
                    ] = None,
    dataset: Annotated[str, typer.Option(help="the dataset (tenant)")] = "default",
    ttl: Annotated[int, typer.Option(help="seconds until it expires")] = 24 * 3600,
    partition: Annotated[list[str] | None, typer.Option(
        help="a sync partition a device token is granted (repeat the option for more), "
             "e.g. default:user:alice")] = None,
) -> None:
    """Print a signed token and nothing else on stdout."""
    roles = role or ["learner"]
    bad = [r for r in roles if r not in ROLES]
    if bad:
        err.print(f"[red]unknown role {bad[0]!r}[/red]: use one of {', '.join(ROLES)}")
        raise typer.Exit(2)
    rt = bootstrap(_settings())
    try:
        typer.echo(mint(rt.secret, sub, roles, dataset, ttl, partitions=partition or ()))
    finally:
        rt.close()


@app.command()
def verify() -> None:
    """Recompute every summary, enrolment and group figure from the facts; exit 1 on any
    difference."""
    from sqlalchemy import func, select

    from .service.group_aggregates import check_aggregates, learner_count
    from .service.verify import verify as run
    from .service.writer import now_ms
    from .store.schema import summaries
    from .store.uow import BatchUnitOfWork

    rt = bootstrap(_settings())
    try:
        with rt.read_engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(summaries)).scalar_one())
            with _bar() as bar:
                task = bar.add_task("summaries", total=total)
                report = run(conn, rt.ctx.mode, lambda n: bar.advance(task, n))
                task = bar.add_task("group members", total=learner_count(conn))
                groups = check_aggregates(BatchUnitOfWork(conn, rt.ctx.instance_id, now_ms()),
                                          rt.ctx, progress=lambda n: bar.advance(task, n))
    finally:
        rt.close()
    problems = report.problems + groups.problems
    for problem in problems[:50]:
        err.print(f"[red]difference[/red] {problem}")
    err.print(f"checked {report.summaries} summaries, {report.enrolments} enrolments, "
              f"{groups.learners} group members and {groups.activities} group activities: "
              f"{len(problems)} differences")
    raise typer.Exit(1 if problems else 0)


@app.command()
def recompute() -> None:
    """Rebuild every group figure from the facts (members' contributions and the groups'
    totals), in one transaction; prints what it corrected."""
    from .service.group_aggregates import RebuildAggregates

    rt = bootstrap(_settings())
    try:
        with err.status("rebuilding group figures from the facts"):
            report = rt.writer.run_sync(RebuildAggregates())
    finally:
        rt.close()
    for problem in report.problems[:50]:
        err.print(f"[yellow]corrected[/yellow] {problem}")
    err.print(f"rebuilt the figures of {report.learners} group members and "
              f"{report.activities} group activities: {len(report.problems)} corrected")


@app.command()
def export(
    log_type: Annotated[str, typer.Option("--type", help="session or summary")],
    out: Annotated[Path, typer.Option(help="the CSV file to write (replaced whole)")],
    start: Annotated[str | None, typer.Option(
        help="ISO 8601 date or date-time: rows started from then on")] = None,
    end: Annotated[str | None, typer.Option(
        help="ISO 8601 date (its whole day is in) or date-time: rows started until then")
    ] = None,
    dataset: Annotated[str, typer.Option(help="the dataset (tenant)")] = "default",
) -> None:
    """Export session or summary logs to CSV, as the export API does (streamed)."""
    from .domain.errors import InvalidInput
    from .jobs.exports import ExportSpec, count, write_file
    from .service.exports import window

    if log_type not in ("session", "summary"):
        err.print(f"[red]unknown --type {log_type!r}[/red]: use session or summary")
        raise typer.Exit(2)
    try:
        since, until = window(start, end)
    except InvalidInput as error:
        err.print(f"[red]--{error.field}[/red]: {error.message}")
        raise typer.Exit(2) from None
    spec = ExportSpec(dataset, log_type, since, until)
    rt = bootstrap(_settings())
    try:
        with rt.read_engine.connect() as conn:
            total = count(conn, spec)
        with _bar() as bar:
            task = bar.add_task(f"{log_type} logs", total=total)
            written = write_file(rt.read_engine, spec, out, lambda n: bar.advance(task, n))
    finally:
        rt.close()
    err.print(f"[green]wrote {written:,} rows[/green] to {out}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    demo_data: Annotated[bool, typer.Option("--demo/--no-demo", help="load demo data")] = False,
) -> None:
    """Migrate if needed and serve the API."""
    import uvicorn

    settings = _settings()
    rt = bootstrap(settings)  # migrates, creates the instance id and the secret once
    admin = mint(rt.secret, "admin", ["admin"], "default", 24 * 3600)
    rt.close()
    if demo_data:
        demo()
    base = f"http://{host}:{port}"
    err.print(f"learnlog on [bold]{base}[/bold]  (database {settings.database_url})")
    err.print(f"API docs: {base}/docs")
    err.print(f"admin token (24 h): {admin}", soft_wrap=True)
    sys.stderr.flush()
    keeper = None
    if workers > 1 and settings.writer_process and sqlite_file(settings.database_url):
        from .service.writer_link import Supervisor

        # One writer for the file (decision 0019): the workers hand it their commands.
        keeper = Supervisor([sys.executable, "-m", "learnlog.writer_host"])
        keeper.start()
        os.environ["LEARNLOG_WRITER_SOCKET"] = keeper.path  # the workers inherit it
    try:
        uvicorn.run("learnlog.api.app:factory", factory=True, host=host, port=port,
                    workers=workers, loop="uvloop", http="httptools", log_level="warning",
                    access_log=False, proxy_headers=False, server_header=False)
    finally:
        if keeper is not None:
            os.environ.pop("LEARNLOG_WRITER_SOCKET", None)
            keeper.stop()



@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="handle what is queued, then exit")] = False,
    poll: Annotated[float, typer.Option(help="seconds between looks at an empty queue")] = 0.2,
    batch: Annotated[int, typer.Option(min=1, help="rows claimed at a time")] = 200,
) -> None:
    """Process the outbox: group figures, structure changes, exports. Run as many as you
    like beside the servers (on PostgreSQL they share the work with SKIP LOCKED); stop
    with Ctrl-C or SIGTERM, which finishes the batch in hand."""
    import signal
    import time

    from .jobs.outbox import Stats, pending, process_once

    rt = bootstrap(_settings().model_copy(update={"process_outbox": False}))
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stats, reported = Stats(), time.monotonic()
    rt.writer.start()
    err.print(f"learnlog worker {os.getpid()} on {rt.engine.url.render_as_string()}: "
              f"{pending(rt.engine):,} queued")
    try:
        while not stopping:
            claimed = process_once(rt.engine, rt.jobs, stats, batch)
            if time.monotonic() - reported >= 5 or (once and not claimed):
                err.print(f"handled {stats.handled:,}, failed {stats.failed:,}, "
                          f"queued {pending(rt.engine):,}, lag of the last batch "
                          f"{max(stats.lag_ms, default=0):,} ms")
                reported = time.monotonic()
            if not claimed:
                if once:
                    break
                time.sleep(poll)
    finally:
        rt.close()
    raise typer.Exit(1 if stats.failed else 0)


@app.command("sync")
def sync_command(
    server: Annotated[str, typer.Option(help="the other instance, e.g. http://school:8000")],
    token: Annotated[str, typer.Option(help="a token of the other instance: admin, or a "
                                            "device token granted the partitions")],
    partition: Annotated[list[str] | None, typer.Option(
        help="sync only this partition (repeat for more); default: every partition the "
             "token is granted")] = None,
    dataset: Annotated[str, typer.Option(help="the dataset (tenant)")] = "default",
    chunk: Annotated[int, typer.Option(help="facts per chunk", min=1, max=5000)] = 2000,
) -> None:
    """Sync this instance's database with another instance: pull what this one lacks,
    then push what the other lacks. Safe to interrupt and run again."""
    from rich.progress import SpinnerColumn

    from .sync.client import HttpPeer, SyncError, sync

    rt = bootstrap(_settings())
    peer = HttpPeer(server, token)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                      TextColumn("{task.completed:,} facts"), TimeElapsedColumn(),
                      console=err) as bar:
            tasks = {"pull": bar.add_task("pulled from the server", total=None),
                     "push": bar.add_task("pushed to the server", total=None)}
            report = sync(rt, peer, partition, dataset=dataset, limit=chunk,
                          progress=lambda phase, n: bar.advance(tasks[phase], n))
    except SyncError as error:
        err.print(f"[red]sync failed[/red]: {error}")
        raise typer.Exit(1) from error
    finally:
        peer.close()
        rt.close()
    err.print(f"[green]synced[/green] {report.partitions} partitions with "
              f"{report.peer.get('instanceId')}: pulled {report.pulled:,} facts "
              f"({report.written:,} stored, {report.dropped:,} erased or deleted here), "
              f"pushed {report.pushed:,} ({report.peer_written:,} stored there) "
              f"in {report.chunks:,} chunks")


logs = typer.Typer(help="Open edX tracking-log analytics (SPEC §6).", no_args_is_help=True)
app.add_typer(logs, name="logs")
EngineOption = Annotated[str | None, typer.Option(
    help="duckdb (embedded) or spark; default: LEARNLOG_ANALYTICS_ENGINE")]
MasterOption = Annotated[str | None, typer.Option(
    help="Spark master URL (local[2], spark://host:7077); default: LEARNLOG_SPARK_MASTER")]


def _runner(settings: Settings, name: str, master: str | None) -> Any:
    """The analytics engine of that name, or an exit that says what is missing."""
    from .bootstrap import analytics_engine

    try:
        return analytics_engine(settings, name, master)
    except ImportError as error:
        err.print(f"[red]the {name} engine is not installed[/red] ({error}): pip install "
                  "'learnlog[spark]'")
        raise typer.Exit(1) from error
    except Exception as error:  # pyspark raises its own errors when the JVM cannot start
        if name != "spark":
            raise
        err.print(f"[red]Spark did not start[/red]: {str(error).splitlines()[0]} — it needs "
                  "Java 17 or newer (java on PATH or JAVA_HOME) and a reachable --master")
        raise typer.Exit(1) from error


def _ingest_once(settings: Settings, paths: list[Path], engine: str | None,
                 master: str | None, dataset: str) -> None:
    from .analytics.ingest import ingest, time_rules
    from .bootstrap import analytics_dir

    name = engine or settings.analytics_engine
    if name not in ("duckdb", "spark"):
        err.print(f"[red]--engine must be duckdb or spark[/red], not {name!r}")
        raise typer.Exit(2)
    store = analytics_dir(settings)
    rt = bootstrap(settings)
    try:
        runner = _runner(settings, name, master)
    except BaseException:
        rt.close()
        raise
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                      console=err) as bar:
            tasks: dict[str, Any] = {}

            def show(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    label = "reading logs" if step == "read" else "computing statistics"
                    tasks[step] = bar.add_task(label, total=max(total, 1))
                bar.update(tasks[step], completed=done, total=max(total, 1))
            report = ingest(rt.engine, runner, store, paths, dataset=dataset,
                            staff=settings.staff,
                            completed_at=settings.video_completed_coverage,
                            rules=time_rules(settings), progress=show)
    except FileNotFoundError as error:
        err.print(f"[red]cannot read the logs[/red]: {error}")
        raise typer.Exit(1) from error
    finally:
        runner.close()
        rt.close()
    c = report.counts
    err.print(f"[green]ingested[/green] {report.files} files ({report.skipped} unchanged, "
              f"{report.grown} grown) with {name}: {c.lines:,} lines read, "
              f"{c.comments:,} comments, {report.accepted:,} events accepted, "
              f"{report.rejected:,} rejected ({c.malformed:,} malformed, "
              f"{c.events - report.accepted:,} without a user or a course); "
              f"{len(report.courses)} courses recomputed in {report.seconds:.1f} s")


@logs.command("ingest")
def logs_ingest(
    paths: Annotated[list[Path], typer.Argument(help="log files (plain or .gz) or folders")],
    engine: EngineOption = None,
    master: MasterOption = None,
    dataset: Annotated[str, typer.Option(help="the dataset (tenant)")] = "default",
) -> None:
    """Read what is new in tracking logs and recompute the statistics of the courses it
    touches. Files already read are skipped; a grown file is read from where it stopped."""
    _ingest_once(_settings(), paths, engine, master, dataset)


@logs.command("structure")
def logs_structure(
    document: Annotated[Path, typer.Argument(help="an Open edX Blocks API answer (JSON)")],
    course_id: Annotated[str | None, typer.Option(
        help="the course (default: from the document's root block)")] = None,
    engine: EngineOption = None,
    master: MasterOption = None,
    dataset: Annotated[str, typer.Option(help="the dataset (tenant)")] = "default",
) -> None:
    """Register a course's units from a Blocks API document (GET /api/courses/v1/blocks/
    ?all_blocks=true&depth=all&requested_fields=children,display_name,type). Units an
    earlier document had and this one lacks become inactive. The course's statistics are
    recomputed from the events already ingested."""
    import json

    from .analytics.ingest import import_structure
    from .domain.tracking import course_id as normalise_course

    settings = _settings()
    try:
        doc = json.loads(document.read_text())
    except (OSError, ValueError) as error:
        err.print(f"[red]cannot read {document}[/red]: {error}")
        raise typer.Exit(1) from error
    rt = bootstrap(settings)
    try:
        with rt.engine.begin() as conn:
            course, stored, gone = import_structure(conn, dataset, doc,
                                                    normalise_course(course_id))
        recomputed = rt.recompute_courses(
            dataset, [course], engine=engine,
            start=lambda name: _runner(settings, name, master))
    except ValueError as error:
        err.print(f"[red]not imported[/red]: {error}")
        raise typer.Exit(1) from error
    finally:
        rt.close()
    err.print(f"[green]structure of {course}[/green]: {stored} units, {gone} made inactive; "
              + ("statistics recomputed" if recomputed else "no logs of it ingested yet"))


def _seconds(text: str) -> float:
    """`1h`, `15m`, `30s`, `1h30m` or a number of seconds."""
    import re

    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or parts is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 1h, 15m, 30s or 1h30m")
    h, m, s = (int(p or 0) for p in parts.groups())
    return float(h * 3600 + m * 60 + s)


@logs.command("watch")
def logs_watch(
    paths: Annotated[list[Path], typer.Argument(help="log files (plain or .gz) or folders")],
    every: Annotated[str, typer.Option(help="how often: 1h, 15m, 30s, 1h30m")] = "1h",
    engine: EngineOption = None,
    master: MasterOption = None,
    dataset: Annotated[str, typer.Option(help="the dataset (tenant)")] = "default",
    runs: Annotated[int, typer.Option(help="stop after this many runs (0: never)",
                                      min=0)] = 0,
) -> None:
    """Ingest the logs now and then again on a schedule (new files and grown ones)."""
    import time

    pause = _seconds(every)
    if pause <= 0:
        raise typer.BadParameter("--every must be longer than 0 s")
    done = 0
    while True:
        _ingest_once(_settings(), paths, engine, master, dataset)
        done += 1
        if runs and done >= runs:
            return
        err.print(f"next run in {every}")
        time.sleep(pause)


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err)


def main() -> None:
    """Entry point of the `learnlog` script."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
