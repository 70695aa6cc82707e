"""Fixtures for the tracking-log tests that need one database and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from learnlog.bootstrap import bootstrap
from learnlog.settings import Settings


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database of the test's own (the statistics' rules do not depend
    on the engine; test_tracking_ingest.py runs on both)."""
    rt = bootstrap(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}",
                            _env_file=None))  # type: ignore[call-arg]
    yield rt.engine
    rt.close()
