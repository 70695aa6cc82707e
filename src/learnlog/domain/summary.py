"""Sessions are facts; a summary is their fold (SPEC §2.3).

`apply_session` maintains a summary incrementally from one session's old and new value;
`fold` computes it from scratch. The two must always agree: `learnlog verify` and the
property tests compare them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .keys import SummaryKey
from .progress import COMPLETED, IN_PROGRESS, NOT_STARTED, advance

JSONMap = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Session:
    """One visit of a learner to a content, written by exactly one instance."""

    session_id: str
    key: SummaryKey
    instance_id: str
    started_at: int  # epoch ms
    ended_at: int  # epoch ms of the last write
    progress: float = 0.0
    time_spent: float = 0.0
    completed_at: int | None = None
    repeat: bool = False
    closed: bool = False
    progress_details: JSONMap | None = None
    extra_fields: JSONMap | None = None
    kind: str | None = None  # the content kind a logger-family client named
    level: int | None = None  # the exercise try (mastery level) the session works on

    @property
    def order(self) -> tuple[int, str]:
        """Sessions are ordered by start time, ties broken by id."""
        return (self.started_at, self.session_id)

    @property
    def written(self) -> tuple[int, str]:
        """The order in which sessions were last written, ties broken by id."""
        return (self.ended_at, self.session_id)


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything a learner did with one content under one key; a fold of its sessions."""

    key: SummaryKey
    status: int = NOT_STARTED
    progress: float = 0.0
    time_spent: float = 0.0
    first_access: int | None = None
    last_access: int | None = None
    view_count: int = 0
    completed_at: int | None = None
    last_completed_at: int | None = None
    progress_details: JSONMap | None = None
    extra_fields: JSONMap | None = None
    details_from: tuple[int, str] | None = None  # `written` of the session the details came from
    repeat_from: tuple[int, str] | None = None  # `order` of the latest repeat session
    # (order, progress) of the sessions since `repeat_from` that no later-started session
    # matches or beats: ascending order, strictly descending progress (usually 1-2 entries).
    frontier: tuple[tuple[tuple[int, str], float], ...] = ()
    # Assessment figures (SPEC §2.4), maintained by the assessment rules.
    best_score: float | None = None
    best_max_score: float | None = None
    attempts_count: int = 0


def new_session(
    session_id: str,
    key: SummaryKey,
    instance_id: str,
    now: int,
    summary: Summary | None,
    *,
    repeat: bool = False,
) -> Session:
    """Open a session where the learner left off (progress, details), or from 0 on a repeat."""
    if repeat or summary is None:
        return Session(session_id, key, instance_id, now, now, 0.0, repeat=repeat)
    return Session(session_id, key, instance_id, now, now, summary.progress,
                   progress_details=summary.progress_details,
                   extra_fields=summary.extra_fields)


def record_progress(
    session: Session,
    now: int,
    *,
    progress: float | None = None,
    time_delta: float = 0.0,
    progress_details: JSONMap | None = None,
    extra_fields: JSONMap | None = None,
    complete: bool = False,
) -> Session:
    """Add time and raise progress on a session; progress never goes down.

    Reaching 1.0 in this session (or `complete`) stamps its completion time once; a
    revisit that starts at 1.0 is not a new completion until it is ended.
    """
    new_progress = advance(session.progress, progress)
    if complete:
        new_progress = 1.0
    completed_at = session.completed_at
    if completed_at is None and new_progress >= 1.0 and (complete or session.progress < 1.0):
        completed_at = now
    return replace(
        session,
        ended_at=max(session.ended_at, now),
        progress=new_progress,
        time_spent=session.time_spent + time_delta,
        completed_at=completed_at,
        progress_details=progress_details if progress_details is not None
        else session.progress_details,
        extra_fields=extra_fields if extra_fields is not None else session.extra_fields,
    )


def close_session(session: Session, now: int) -> Session:
    """End a view: the content is completed (completion stamped once) and the session closed."""
    return replace(record_progress(session, now, complete=True), closed=True)


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _raise(frontier: tuple[tuple[tuple[int, str], float], ...], order: tuple[int, str],
           progress: float) -> tuple[tuple[tuple[int, str], float], ...]:
    """The frontier (sessions in order, progress strictly falling: each one's progress is
    above every later session's) after a session at `order` reached `progress`."""
    if frontier and order >= frontier[-1][0]:
        # The common case, the latest session moving: it stays last, and the sessions
        # before it that it reaches drop out (they are a tail, progress falling).
        head = frontier
        if order == frontier[-1][0]:
            if progress <= frontier[-1][1]:
                return frontier
            head = frontier[:-1]
        end = len(head)
        while end and head[end - 1][1] <= progress:
            end -= 1
        return (*head[:end], (order, progress))
    entries = dict(frontier)
    entries[order] = max(progress, entries.get(order, progress))
    kept: list[tuple[tuple[int, str], float]] = []
    for o in sorted(entries, reverse=True):
        if not kept or entries[o] > kept[-1][1]:
            kept.append((o, entries[o]))
    return tuple(reversed(kept))


def apply_session(summary: Summary, old: Session | None, new: Session) -> Summary:
    """Fold one session's change (old value → new value) into its summary.

    Sessions only grow (time, progress, end, completion), so the fold of the changed
    session set is the old summary combined with the new session value.
    """
    repeat_from = summary.repeat_from
    if new.repeat and (repeat_from is None or new.order > repeat_from):
        repeat_from = new.order
    frontier = summary.frontier
    if repeat_from is None or new.order >= repeat_from:
        frontier = _raise(frontier, new.order, new.progress)
    if repeat_from is not None:
        frontier = tuple(e for e in frontier if e[0] >= repeat_from)
    progress = frontier[0][1] if frontier else summary.progress
    details_from = summary.details_from
    progress_details = summary.progress_details
    extra_fields = summary.extra_fields
    if details_from is None or new.written >= details_from:
        details_from = new.written
        progress_details = new.progress_details
        extra_fields = new.extra_fields
    completed = summary.status == COMPLETED or new.completed_at is not None
    return replace(
        summary,
        status=COMPLETED if completed else IN_PROGRESS,
        progress=progress,
        time_spent=summary.time_spent + new.time_spent - (old.time_spent if old else 0.0),
        first_access=_min(summary.first_access, new.started_at),
        last_access=_max(summary.last_access, max(new.ended_at, new.started_at)),
        view_count=summary.view_count + (0 if old else 1),
        completed_at=_min(summary.completed_at, new.completed_at),
        last_completed_at=_max(summary.last_completed_at, new.completed_at),
        progress_details=progress_details,
        extra_fields=extra_fields,
        details_from=details_from,
        repeat_from=repeat_from,
        frontier=frontier,
    )


def fold(key: SummaryKey, sessions: Iterable[Session], base: Summary | None = None) -> Summary:
    """The summary of a key computed from scratch from all its sessions, in any order.

    `base` carries the assessment figures, which are not a fold of sessions. The result is
    exactly `apply_session` of each session in start order from an empty summary (a test
    holds the two equal), with the running figures kept in locals instead of one summary
    per session: sync folds a million sessions at a time.
    """
    ordered = sorted(sessions, key=lambda s: (s.started_at, s.session_id))
    if not ordered:
        return Summary(key) if base is None else Summary(
            key, best_score=base.best_score, best_max_score=base.best_max_score,
            attempts_count=base.attempts_count)
    progress, time_spent, completed = 0.0, 0.0, False
    first_access: int | None = None
    last_access: int | None = None
    completed_at: int | None = None
    last_completed_at: int | None = None
    details: JSONMap | None = None
    extra: JSONMap | None = None
    details_from: tuple[int, str] | None = None
    repeat_from: tuple[int, str] | None = None
    frontier: tuple[tuple[tuple[int, str], float], ...] = ()
    for s in ordered:
        order = (s.started_at, s.session_id)
        if s.repeat and (repeat_from is None or order > repeat_from):
            repeat_from = order
        # In start order no session comes before the latest repeat: each one raises.
        frontier = _raise(frontier, order, s.progress)
        if repeat_from is not None:
            frontier = tuple(e for e in frontier if e[0] >= repeat_from)
        progress = frontier[0][1] if frontier else progress
        written = (s.ended_at, s.session_id)
        if details_from is None or written >= details_from:
            details_from, details, extra = written, s.progress_details, s.extra_fields
        completed = completed or s.completed_at is not None
        time_spent = time_spent + s.time_spent
        first_access = _min(first_access, s.started_at)
        last_access = _max(last_access, max(s.ended_at, s.started_at))
        completed_at = _min(completed_at, s.completed_at)
        last_completed_at = _max(last_completed_at, s.completed_at)
    return Summary(
        key, COMPLETED if completed else IN_PROGRESS, progress, time_spent, first_access,
        last_access, len(ordered), completed_at, last_completed_at, details, extra,
        details_from, repeat_from, frontier,
        *((base.best_score, base.best_max_score, base.attempts_count) if base else ()))


SESSION_FIELDS = (
    "status",
    "progress",
    "time_spent",
    "first_access",
    "last_access",
    "view_count",
    "completed_at",
    "last_completed_at",
    "progress_details",
    "extra_fields",
)


def differences(stored: Summary, expected: Summary) -> dict[str, tuple[Any, Any]]:
    """The fields where a stored summary differs from the fold (time compared to 1 ms)."""
    diff: dict[str, tuple[Any, Any]] = {}
    for name in SESSION_FIELDS:
        a, b = getattr(stored, name), getattr(expected, name)
        if name == "time_spent":
            if abs(a - b) > 1e-3:
                diff[name] = (a, b)
        elif a != b:
            diff[name] = (a, b)
    return diff
