"""What every outbox handler is given (`Jobs`): the processor (`outbox.py`) builds it and
the handlers (`course_structure.py`, `exports.py`) take it, so neither imports the other's
module for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from ..service.writer import CommandBus

LEASE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Jobs:
    """What handlers work with: the writer, an engine for long reads (it never takes the
    write lock), where export files go, how long a claim lasts, and what recomputes
    courses' tracking-log statistics (dataset, course ids)."""

    writer: CommandBus
    read_engine: Engine
    exports_dir: Path
    lease_ms: int = LEASE_MS
    recompute: Callable[[str, Sequence[str]], object] | None = None
