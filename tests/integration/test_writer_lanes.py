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
from learnlog.store.schema import sessions, summaries


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


@pytest.mark.parametrize("engine", ["postgresql"])
def test_a_batch_whose_pipelined_writes_fail_at_commit_leaves_nothing(
        runtime: Runtime, engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL sends a plain batch's upserts with its COMMIT in one pipeline: a
    statement refused there fails the batch at the COMMIT, nothing of it stays (not even
    the statements before the refused one), and the other commands are applied alone."""
    import psycopg

    from learnlog.store import rows

    writer = runtime.writer
    assert isinstance(writer, Writer)
    bad, good = (Keys("default", user, "video-1", None, None) for user in ("bad", "good"))
    writer.run_sync(StartView(bad))
    writer.run_sync(StartView(good))
    pipelines = []
    opened = psycopg.Connection.pipeline

    def pipeline(self: psycopg.Connection[object]) -> object:
        pipelines.append(self)
        return opened(self)

    monkeypatch.setattr(psycopg.Connection, "pipeline", pipeline)
    to_row = rows.summary_to_row

    def refused(summary: object, *args: object) -> dict[str, object]:
        row = to_row(summary, *args)  # type: ignore[arg-type]
        return {**row, "status": None} if row["user_id"] == "bad" else row

    monkeypatch.setattr(rows, "summary_to_row", refused)
    futures = writer.run_many([UpdateView(bad, 5.0), UpdateView(good, 7.0)])
    with pytest.raises(Exception, match="status"):
        futures[0].result(timeout=30)
    assert futures[1].result(timeout=30) == {"video-1": "SUCCESS"}
    assert pipelines, "the batch was not pipelined"
    with runtime.read_engine.connect() as conn:
        spent = dict(conn.execute(select(summaries.c.user_id, summaries.c.time_spent)).all())
        opened_sessions = dict(conn.execute(select(sessions.c.user_id, sessions.c.time_spent)
                                            ).all())
    assert spent == {"bad": 0.0, "good": 7.0}
    assert opened_sessions == {"bad": 0.0, "good": 7.0}  # the session upsert went back too
    monkeypatch.setattr(rows, "summary_to_row", to_row)
    assert writer.run_sync(UpdateView(bad, 1.0)) == {"video-1": "SUCCESS"}  # the lane works
