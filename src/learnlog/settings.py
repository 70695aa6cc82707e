"""Settings: environment variables with the LEARNLOG_ prefix (SPEC §11), or a .env file.

Nothing reads settings at import time; `Settings()` is built by the CLI or a test and
passed to `bootstrap`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domain.keys import ContextMode


class Settings(BaseSettings):
    """Every knob of a learnlog instance."""

    model_config = SettingsConfigDict(env_prefix="LEARNLOG_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./learnlog.db"
    redis_url: str = ""
    redis_prefix: str = "learnlog:"
    redis_retry_seconds: float = Field(default=2.0, ge=0,
                                       description="how long the cache stays off after an error")
    jwt_secret: str = ""
    jwt_public_keys: str = ""
    context_mode: ContextMode = ContextMode.STRICT
    allow_anonymous_logs: bool = True
    instance_id: str = ""
    implicit_enrolment: bool = True
    max_time_spent_delta: float = Field(default=6 * 3600, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    offline_grace: int = Field(default=0, ge=0, description="seconds an expired token may write")
    writer_max_batch: int = Field(default=512, gt=0)
    writer_process: bool = Field(
        default=True, description="`learnlog serve --workers N` (N > 1) on an SQLite file: "
        "one writer host process owns the file's writes and the workers hand it their "
        "commands (decision 0019); off: each worker writes, taking turns on the file")
    writer_lanes: int = Field(
        default=2, gt=0, description="PostgreSQL: write batches a server process applies at "
        "once, each on its own connection (one is folded while another commits)")
    writer_socket: str = Field(
        default="", description="set by `learnlog serve` for its workers: the writer "
        "host's Unix socket; empty: this process writes itself")
    db_pool_size: int = Field(default=8, gt=0)
    read_cache_mb: int = Field(
        default=256, ge=0, description="memory per worker for the hot reads' answers, kept "
        "true by LISTEN/NOTIFY on PostgreSQL and a notice table on SQLite "
        "(store/readcache.py); 0 turns it off")
    outbox_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often to look for work queued by other processes")
    process_outbox: bool = Field(
        default=True, description="handle the outbox in the server process too (turn off "
        "when `learnlog worker` processes do it)")
    outbox_lease_seconds: float = Field(
        default=60.0, gt=0, description="how long a claimed outbox row stays with the "
        "process that claimed it; after that (the process died) another one takes it")
    exports_dir: str = Field(
        default="", description="where CSV exports are written; empty: an `exports` folder "
        "next to the SQLite database file, else `./exports`")
    # Tracking-log analytics (SPEC §6).
    analytics_dir: str = Field(
        default="", description="where parsed tracking-log events are kept; empty: an "
        "`analytics` folder next to the SQLite database file, else `./analytics`")
    analytics_engine: str = Field(default="duckdb", pattern="^(duckdb|spark)$",
                                  description="duckdb (embedded) or spark")
    analytics_memory_limit: str = Field(
        default="1GB", description="DuckDB's memory limit (it spills to disk beyond it)")
    analytics_threads: int = Field(default=0, ge=0, description="DuckDB threads; 0: all cores")
    spark_master: str = Field(default="local[2]",
                              description="Spark master URL for --engine spark")
    staff_users: str = Field(
        default="", description="comma-separated usernames left out of the statistics "
        "(course staff are also found by their instructor-dashboard events)")
    video_completed_coverage: float = Field(
        default=0.9, gt=0, le=1, description="coverage at which a video counts as completed")

    # Time on page (SPEC §6): every threshold is a setting (seconds).
    session_gap_seconds: float = Field(default=12_600, gt=0, description="a longer gap "
                                       "between two events ends a session (3 h 30 min)")
    login_gap_seconds: float = Field(default=600, gt=0, description="… or this, when the "
                                     "next event comes from the login page")
    dashboard_gap_seconds: float = Field(default=900, gt=0, description="… or this, when "
                                         "the next event comes from the dashboard")
    outlier_gap_seconds: float = Field(default=1800, gt=0, description="a longer gap inside "
                                       "a session counts as outlier_credit_seconds")
    outlier_credit_seconds: float = Field(default=600, ge=0)
    last_event_seconds: float = Field(default=600, ge=0, description="what the last event "
                                      "of a session gets (0 after page_close)")
    min_run_seconds: float = Field(default=15, ge=0, description="shorter runs on a unit "
                                   "are navigation passing by and are dropped")

    @property
    def staff(self) -> list[str]:
        return [u.strip() for u in self.staff_users.split(",") if u.strip()]

