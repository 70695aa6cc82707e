"""The tables, defined once with SQLAlchemy Core for SQLite and PostgreSQL.

Every table that grows with learners leads its primary key with (dataset, user_id), and no
foreign key crosses two learners, so the schema can be distributed by user (SPEC §7).
Facts (sessions, attempts, enrolments, structures, contexts, tombstones) carry the sync
columns of SPEC §5 from the first migration: partition, instance_id, counter, updated_at.
Times are epoch milliseconds (BIGINT): exact, portable and cheap to compare.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

ID = 256  # ids are 1 to 256 printable characters (SPEC §1)


def _id(name: str, *, primary_key: bool = False, nullable: bool = False) -> Column[str]:
    return Column(name, String(ID), primary_key=primary_key, nullable=nullable)


def _summary_key() -> list[Column[str]]:
    """(dataset, user, collection key, context key, content): the key of a summary."""
    return [_id(name, primary_key=True) for name in
            ("dataset", "user_id", "collection_key", "context_key", "content_id")]


def _sync_columns() -> list[Column[object]]:
    return [
        Column("partition", String(600), nullable=False),
        Column("instance_id", String(64), nullable=False),
        Column("counter", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
    ]


meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    _id("dataset", primary_key=True),
    _id("user_id", primary_key=True),
    Column("session_id", String(64), primary_key=True),
    _id("collection_key"),
    _id("context_key"),
    _id("content_id"),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=False),
    Column("progress", Float, nullable=False),
    Column("time_spent", Float, nullable=False),
    Column("completed_at", BigInteger),
    Column("repeat", Boolean, nullable=False),
    Column("closed", Boolean, nullable=False),
    Column("progress_details", Text),
    Column("extra_fields", Text),
    *_sync_columns(),
    # Logger family (migration 0003): the content kind, and the exercise try it works on.
    Column("kind", String(32)),
    Column("mastery_level", Integer),
    Index("ix_sessions_key", "dataset", "user_id", "collection_key", "context_key", "content_id"),
)

summaries = Table(
    "summaries",
    metadata,
    *_summary_key(),
    Column("status", Integer, nullable=False),
    Column("progress", Float, nullable=False),
    Column("time_spent", Float, nullable=False),
    Column("first_access", BigInteger),
    Column("last_access", BigInteger),
    Column("view_count", Integer, nullable=False),
    Column("completed_at", BigInteger),
    Column("last_completed_at", BigInteger),
    Column("progress_details", Text),
    Column("extra_fields", Text),
    Column("details_at", BigInteger),
    Column("details_session", String(64)),
    Column("repeat_at", BigInteger),
    Column("repeat_session", String(64)),
    Column("frontier", Text),
    Column("best_score", Float),
    Column("best_max_score", Float),
    Column("attempts_count", Integer, nullable=False),
    # This instance's latest open session for the key (local state, never synced).
    Column("open_session_id", String(64)),
    # Bumped on every write; the cache keeps only the newest revision of a row.
    Column("rev", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    *_summary_key(),
    Column("attempt_id", String(ID), primary_key=True),
    Column("total_score", Float, nullable=False),
    Column("total_max_score", Float, nullable=False),
    Column("grand_total", String(64), nullable=False),
    Column("last_attempted_on", BigInteger, nullable=False),
    Column("created_on", BigInteger, nullable=False),
    Column("responses", Text, nullable=False),
    *_sync_columns(),
)

# Exercise tries (Kolibri's MasteryLog) and the item attempts within them (AttemptLog).
tries = Table(
    "tries",
    metadata,
    *_summary_key(),
    Column("mastery_level", Integer, primary_key=True),
    Column("criterion", Text, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=False),
    Column("time_spent", Float, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("completed_at", BigInteger),
    Column("attempt_count", Integer, nullable=False, server_default="0"),  # migration 0008
    *_sync_columns(),
)

item_attempts = Table(
    "item_attempts",
    metadata,
    _id("dataset", primary_key=True),
    _id("user_id", primary_key=True),
    Column("attempt_id", String(64), primary_key=True),
    _id("collection_key"),
    _id("context_key"),
    _id("content_id"),
    Column("mastery_level", Integer, nullable=False),
    Column("session_id", String(64), nullable=False),
    _id("item"),
    Column("correct", Float, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=False),
    Column("time_spent", Float, nullable=False),
    Column("answer", Text, nullable=False),
    Column("simple_answer", Text),
    Column("complete", Boolean, nullable=False),
    Column("completed_at", BigInteger),
    Column("hinted", Boolean, nullable=False),
    Column("error", Boolean, nullable=False),
    Column("history", Text, nullable=False),
    Column("ordinal", Integer, nullable=False),
    *_sync_columns(),
    # A try's attempts, newest last (migration 0008): its latest n are n index entries.
    Index("ix_item_attempts_latest", "dataset", "user_id", "collection_key", "context_key",
          "content_id", "mastery_level", "started_at", "ordinal", "attempt_id"),
)

# Identity (migration 0004): the users registry, groups and memberships with roles.
users = Table(
    "users",
    metadata,
    _id("dataset", primary_key=True),
    _id("user_id", primary_key=True),
    Column("username", String(ID)),
    Column("full_name", String(1024)),
    Column("kind", String(32), nullable=False),
    *_sync_columns(),
)

groups = Table(
    "groups",
    metadata,
    _id("dataset", primary_key=True),
    _id("group_id", primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(1024), nullable=False),
    _id("parent_id", nullable=True),
    *_sync_columns(),
    Index("ix_groups_parent", "dataset", "parent_id"),  # migration 0007
)

memberships = Table(
    "memberships",
    metadata,
    _id("dataset", primary_key=True),
    _id("group_id", primary_key=True),
    _id("user_id", primary_key=True),
    Column("role", String(32), nullable=False),
    *_sync_columns(),
    Index("ix_memberships_user", "dataset", "user_id"),
)

# What a group works on (migration 0009): collections, contents and quizzes (SPEC §2.7).
group_activities = Table(
    "group_activities",
    metadata,
    _id("dataset", primary_key=True),
    _id("group_id", primary_key=True),
    Column("activity_type", String(32), primary_key=True),
    _id("activity_id", primary_key=True),
    *_sync_columns(),
)

# Group activity aggregates (migration 0010, SPEC §2.7): what each learner adds to a
# group's totals for an activity, and the totals, kept by the `group.member` outbox job.
member_activity_agg = Table(
    "member_activity_agg",
    metadata,
    _id("dataset", primary_key=True),
    _id("user_id", primary_key=True),
    _id("group_id", primary_key=True),
    Column("activity_type", String(32), primary_key=True),
    _id("activity_id", primary_key=True),
    Column("enrolled", Boolean, nullable=False),
    Column("started", Boolean, nullable=False),
    Column("completed", Boolean, nullable=False),
    Column("progress", Integer, nullable=False),
    Column("score_micro", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_member_activity_agg_activity", "dataset", "group_id", "activity_type",
          "activity_id"),
)

AGG_TIMES = ("member_count_at", "enrolled_count_at", "started_count_at", "completed_count_at",
             "completion_percentage_at", "avg_progress_at", "avg_score_percent_at")
group_activity_agg = Table(
    "group_activity_agg",
    metadata,
    _id("dataset", primary_key=True),
    _id("group_id", primary_key=True),
    Column("activity_type", String(32), primary_key=True),
    _id("activity_id", primary_key=True),
    Column("member_count", Integer, nullable=False),
    Column("enrolled_count", Integer, nullable=False),
    Column("started_count", Integer, nullable=False),
    Column("completed_count", Integer, nullable=False),
    Column("progress_sum", BigInteger, nullable=False),
    Column("scored_count", Integer, nullable=False),
    Column("score_micro_sum", BigInteger, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in AGG_TIMES),
)

# Coach quizzes (Kolibri's Exam, migration 0007): assigned to groups, open while active.
# A learner's work on a quiz is a try (negative level) with item attempts, as for exercises.
quizzes = Table(
    "quizzes",
    metadata,
    _id("dataset", primary_key=True),
    _id("quiz_id", primary_key=True),
    Column("title", String(1024), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("group_ids", Text, nullable=False),  # JSON list of the groups it is assigned to
    *_sync_columns(),
)

# Anonymous visitors' content sessions (migration 0007): no learner, no summary; the
# visitor id comes from a cookie. Nobody reads them through the API.
visitor_sessions = Table(
    "visitor_sessions",
    metadata,
    _id("dataset", primary_key=True),
    Column("session_id", String(64), primary_key=True),
    Column("visitor_id", String(64), nullable=False),
    _id("content_id"),
    Column("kind", String(32), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=False),
    Column("progress", Float, nullable=False),
    Column("time_spent", Float, nullable=False),
    Column("completed_at", BigInteger),
    Column("extra_fields", Text),
    *_sync_columns(),
)

# Logged-in visits to the app (Kolibri's UserSessionLog, migration 0005).
user_sessions = Table(
    "user_sessions",
    metadata,
    _id("dataset", primary_key=True),
    _id("user_id", primary_key=True),
    Column("session_id", String(64), primary_key=True),
    Column("started_at", BigInteger, nullable=False),
    Column("last_interaction_at", BigInteger, nullable=False),
    Column("device_info", String(256)),
    Column("pages", Text, nullable=False),
    Column("channels", Text, nullable=False),
    *_sync_columns(),
    Index("ix_user_sessions_latest", "dataset", "user_id", "last_interaction_at"),
)

enrolments = Table(
    "enrolments",
    metadata,
    _id("dataset", primary_key=True),
    _id("user_id", primary_key=True),
    _id("collection_id", primary_key=True),
    _id("context_id", primary_key=True),
    Column("enrolled_at", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("status", Integer, nullable=False),
    Column("completed_count", Integer, nullable=False),
    Column("progress", Integer, nullable=False),
    Column("completed_on", BigInteger),
    Column("certificates", Text, nullable=False),
    *_sync_columns(),
    Index("ix_enrolments_collection", "dataset", "collection_id"),
)

collections = Table(
    "collections",
    metadata,
    _id("dataset", primary_key=True),
    _id("collection_id", primary_key=True),
    Column("version", Integer, nullable=False),
    Column("name", String(1024), nullable=False),
    Column("description", Text),
    Column("logo", String(2048)),
    Column("structure", Text, nullable=False),
    Column("certificates", Text, nullable=False),
    Column("leaf_count", Integer, nullable=False),
    Column("required_count", Integer, nullable=False),
    *_sync_columns(),
)

contexts = Table(
    "contexts",
    metadata,
    _id("dataset", primary_key=True),
    _id("context_id", primary_key=True),
    _id("collection_id"),
    Column("name", String(1024)),
    Column("start_date", String(10)),
    Column("end_date", String(10)),
    *_sync_columns(),
)

tombstones = Table(
    "tombstones",
    metadata,
    _id("dataset", primary_key=True),
    Column("partition", String(600), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("record_id", String(1400), primary_key=True),
    Column("instance_id", String(64), nullable=False),
    Column("counter", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Sync order (migration 0011): a peer reads each partition's facts per instance, in counter
# order (SPEC §5), one range scan each.
for _table in list(metadata.sorted_tables):
    if {"partition", "instance_id", "counter"} <= set(_table.c.keys()):
        Index(f"ix_{_table.name}_sync", _table.c.partition, _table.c.instance_id,
              _table.c.counter)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    _id("dataset"),
    Column("topic", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("available_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Index("ix_outbox_available", "available_at"),
)

# CSV exports of the logger family (Kolibri's GenerateCSVLogRequest, migration 0006). Local
# to this instance (never synced): the file they name lives on this machine.
exports = Table(
    "exports",
    metadata,
    _id("dataset", primary_key=True),
    Column("export_id", String(64), primary_key=True),
    Column("log_type", String(16), nullable=False),  # session | summary
    Column("since", BigInteger),  # inclusive, on the start time
    Column("until", BigInteger),  # exclusive
    Column("state", String(16), nullable=False),  # queued | running | done | failed
    Column("rows", BigInteger),
    Column("path", Text),
    Column("error", Text),
    Column("requested_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    _id("requested_by"),
)

# Tracking-log analytics (SPEC §6, migration 0012). Local to this instance (never synced):
# they are computed from log files on this machine. `log_files` says how much of each file
# was read; `log_batches` names the Parquet files of parsed events the statistics are
# computed from (a batch not listed here was never committed and is ignored).
log_files = Table(
    "log_files",
    metadata,
    _id("dataset", primary_key=True),
    Column("path", String(2048), primary_key=True),
    Column("size", BigInteger, nullable=False),  # bytes read (plain) or the file's size (gzip)
    Column("fingerprint", String(64), nullable=False),  # of the first `size` bytes
    Column("lines", BigInteger, nullable=False),
    Column("ingested_at", BigInteger, nullable=False),
)

log_batches = Table(
    "log_batches",
    metadata,
    _id("dataset", primary_key=True),
    Column("batch_id", String(64), primary_key=True),
    Column("engine", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("courses", Text, nullable=False),  # JSON list of the course ids it holds
    Column("created_at", BigInteger, nullable=False),
)

# Statistics tables: found and written by their keys only, clustered by them on SQLite
# (WITHOUT ROWID: one B-tree per insert instead of two; migration 0013).
CLUSTERED: dict[str, Any] = {"sqlite_with_rowid": False}

stats_videos = Table(
    "stats_videos",
    metadata,
    _id("dataset", primary_key=True),
    _id("course_id", primary_key=True),
    _id("video_id", primary_key=True),
    Column("duration", Float),
    Column("viewers", Integer, nullable=False),
    Column("watch_time", Float, nullable=False),
    Column("completed_viewers", Integer, nullable=False),
    Column("avg_coverage", Float, nullable=False),
    Column("users_at_start", Integer, nullable=False),
    Column("users_at_end", Integer, nullable=False),
    Column("total_viewed_seconds", BigInteger, nullable=False),
    **CLUSTERED,
)

stats_video_users = Table(
    "stats_video_users",
    metadata,
    _id("dataset", primary_key=True),
    _id("course_id", primary_key=True),
    _id("video_id", primary_key=True),
    _id("username", primary_key=True),
    Column("viewings", Integer, nullable=False),
    Column("watch_time", Float, nullable=False),
    Column("covered", Float, nullable=False),
    Column("coverage", Float, nullable=False),
    Column("completed", Boolean, nullable=False),
    **CLUSTERED,
)

stats_timeline = Table(
    "stats_timeline",
    metadata,
    _id("dataset", primary_key=True),
    _id("course_id", primary_key=True),
    _id("video_id", primary_key=True),
    Column("segment", Integer, primary_key=True, autoincrement=False),
    Column("num_users", Integer, nullable=False),
    Column("num_views", Integer, nullable=False),
    **CLUSTERED,
)

stats_times = Table(
    "stats_times",
    metadata,
    _id("dataset", primary_key=True),
    _id("course_id", primary_key=True),
    _id("username", primary_key=True),
    _id("unit_id", primary_key=True),  # `<sequential>#<n>`, a unit's block, `page:<kind>`
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD (UTC)
    Column("seconds", Float, nullable=False),
    Column("sessions", Integer, nullable=False),
    **CLUSTERED,
)

stats_visits = Table(
    "stats_visits",
    metadata,
    _id("dataset", primary_key=True),
    _id("course_id", primary_key=True),
    _id("username", primary_key=True),
    _id("unit_id", primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("visits", Integer, nullable=False),
    **CLUSTERED,
)

stats_problems = Table(
    "stats_problems",
    metadata,
    _id("dataset", primary_key=True),
    _id("course_id", primary_key=True),
    _id("username", primary_key=True),
    Column("problem_id", String(512), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("grade", Float),
    Column("max_grade", Float),
    **CLUSTERED,
)

stats_activity = Table(
    "stats_activity",
    metadata,
    _id("dataset", primary_key=True),
    _id("course_id", primary_key=True),
    Column("week_start", String(10), primary_key=True),  # a Monday, YYYY-MM-DD
    Column("label", String(32), primary_key=True),
    Column("users", Integer, nullable=False),
    **CLUSTERED,
)

# A course's units from an Open edX Blocks API document (`learnlog logs structure`): the
# places the log names (`<sequential>#<n>`, a unit's block) become unit ids; units a newer
# document no longer has stay, inactive, and drop out of the statistics served.
course_units = Table(
    "course_units",
    metadata,
    _id("dataset", primary_key=True),
    _id("course_id", primary_key=True),
    Column("unit_id", String(512), primary_key=True),
    _id("chapter"),
    _id("sequential"),
    Column("position", Integer, nullable=False),
    Column("ordinal", Integer, nullable=False),  # the unit's place in course order
    Column("name", String(1024), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# SQLite: which learners' summaries or enrolments a commit changed, in commit order, for
# the workers' read answers (store/readcache.py; written by the triggers of migration
# 0016, which also keep only the newest notices). PostgreSQL notifies instead (0015) and
# leaves this table empty.
read_notices = Table(
    "read_notices",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("token", Text, nullable=False),
)
