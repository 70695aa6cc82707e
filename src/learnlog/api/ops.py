"""Operations routes: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from ..jobs.outbox import pending
from ..store import migrate

router = APIRouter()


class Metrics:
    """Per-app metrics (a registry of its own, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("learnlog_requests", "HTTP requests", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram(
            "learnlog_request_seconds", "HTTP request latency", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry)
        self.batch = Gauge("learnlog_write_batch_size_total", "write batches by size bucket",
                           ["size"], registry=self.registry)
        self.writer_cpu = Gauge("learnlog_writer_cpu_seconds", "CPU time of the writer thread",
                                registry=self.registry)
        self.writer_commands = Gauge("learnlog_writer_commands", "commands the writer applied",
                                     registry=self.registry)
        self.queue = Gauge("learnlog_outbox_depth", "rows waiting in the outbox",
                           registry=self.registry)
        self.cache = Gauge("learnlog_cache_events", "cache hits, misses and errors", ["kind"],
                           registry=self.registry)


@router.get("/health", include_in_schema=True)
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers and its migrations are current."""
    rt = request.app.state.runtime

    def check() -> tuple[bool, str]:
        try:
            with rt.read_engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return (True, "ok") if migrate.is_current(rt.engine) else (False, "migrations pending")
        except Exception as error:
            return False, f"database unreachable: {type(error).__name__}"

    good, detail = await run_in_threadpool(check)
    return JSONResponse({"status": "ok" if good else "unavailable", "detail": detail},
                        status_code=200 if good else 503)


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text: requests and latency per route, batch sizes, queue depth, cache."""
    rt = request.app.state.runtime
    m: Metrics = request.app.state.metrics
    for size, count in rt.writer.batch_sizes.items():
        m.batch.labels(size=str(size)).set(count)
    m.writer_cpu.set(rt.writer.cpu_seconds)
    m.writer_commands.set(rt.writer.commands)
    m.queue.set(await run_in_threadpool(pending, rt.engine))
    if rt.cache is not None:
        m.cache.labels(kind="hit").set(rt.cache.hits)
        m.cache.labels(kind="miss").set(rt.cache.misses)
        m.cache.labels(kind="error").set(rt.cache.errors)
    return PlainTextResponse(generate_latest(m.registry).decode(),
                             media_type="text/plain; version=0.0.4")
