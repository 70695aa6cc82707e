"""PostgreSQL: a server process writes batches on two connections at once (writer lanes).

Two lanes may hold batches of the same learner at once; the learner locks must order
them so that no update is lost or counted twice."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from sqlalchemy import select

from learnlog.bootstrap import Runtime
from learnlog.service.viewer import Keys, StartView, UpdateView
from learnlog.service.writer import Writer
from learnlog.store.schema import summaries


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_lanes_lose_no_update_of_one_learner(runtime: Runtime, engine: str) -> None:
    writer = runtime.writer
    assert isinstance(writer, Writer)
    assert writer.lanes == (2 if engine == "postgresql" else 1)  # SQLite: one writer
    assert len(writer._lanes) == writer.lanes
    keys = [Keys("default", user, "video-1", None, None) for user in ("same", "other")]
    for k in keys:
        writer.run_sync(StartView(k))
    futures: list[Future[object]] = []
    for _ in range(300):
        futures += writer.run_many([UpdateView(keys[0], 0.5), UpdateView(keys[1], 0.25)])
    assert all(f.result(timeout=60) == {"video-1": "SUCCESS"} for f in futures)
    with runtime.read_engine.connect() as conn:
        stored = dict(conn.execute(select(summaries.c.user_id, summaries.c.time_spent)).all())
    assert stored == {"same": 150.0, "other": 75.0}
