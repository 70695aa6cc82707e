"""tracking logs: files read, batches of parsed events, course units, the statistics
(SPEC §6)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = 256


def _ids(*names: str) -> list[sa.Column[str]]:
    return [sa.Column(n, sa.String(ID), nullable=False) for n in names]


def upgrade() -> None:
    op.create_table(
        "log_files",
        *_ids("dataset"),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("ingested_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "path"),
    )
    op.create_table(
        "log_batches",
        *_ids("dataset"),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("courses", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "batch_id"),
    )
    op.create_table(
        "stats_videos",
        *_ids("dataset", "course_id", "video_id"),
        sa.Column("duration", sa.Float()),
        sa.Column("viewers", sa.Integer(), nullable=False),
        sa.Column("watch_time", sa.Float(), nullable=False),
        sa.Column("completed_viewers", sa.Integer(), nullable=False),
        sa.Column("avg_coverage", sa.Float(), nullable=False),
        sa.Column("users_at_start", sa.Integer(), nullable=False),
        sa.Column("users_at_end", sa.Integer(), nullable=False),
        sa.Column("total_viewed_seconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "course_id", "video_id"),
    )
    op.create_table(
        "stats_video_users",
        *_ids("dataset", "course_id", "video_id", "username"),
        sa.Column("viewings", sa.Integer(), nullable=False),
        sa.Column("watch_time", sa.Float(), nullable=False),
        sa.Column("covered", sa.Float(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "course_id", "video_id", "username"),
    )
    op.create_table(
        "stats_timeline",
        *_ids("dataset", "course_id", "video_id"),
        sa.Column("segment", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("num_users", sa.Integer(), nullable=False),
        sa.Column("num_views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "course_id", "video_id", "segment"),
    )


    op.create_table(
        "stats_times",
        *_ids("dataset", "course_id", "username", "unit_id"),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "course_id", "username", "unit_id", "day"),
    )
    op.create_table(
        "stats_visits",
        *_ids("dataset", "course_id", "username", "unit_id"),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "course_id", "username", "unit_id", "day"),
    )
    op.create_table(
        "stats_problems",
        *_ids("dataset", "course_id", "username"),
        sa.Column("problem_id", sa.String(512), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("grade", sa.Float()),
        sa.Column("max_grade", sa.Float()),
        sa.PrimaryKeyConstraint("dataset", "course_id", "username", "problem_id", "day"),
    )
    op.create_table(
        "stats_activity",
        *_ids("dataset", "course_id"),
        sa.Column("week_start", sa.String(10), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "course_id", "week_start", "label"),
    )
    op.create_table(
        "course_units",
        *_ids("dataset", "course_id"),
        sa.Column("unit_id", sa.String(512), nullable=False),
        *_ids("chapter", "sequential"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "course_id", "unit_id"),
    )


def downgrade() -> None:
    for table in ("course_units", "stats_activity", "stats_problems", "stats_visits", "stats_times",
                  "stats_timeline", "stats_video_users", "stats_videos", "log_batches",
                  "log_files"):
        op.drop_table(table)
