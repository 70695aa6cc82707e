"""CSV exports of the logger family (SPEC §4.3, Kolibri's GenerateCSVLogRequest).

Sessions are recorded through the HTTP API by registered and unregistered learners, in a
registered collection and outside any. Two things the API cannot write are set in the
database: a quiz session (the route takes no quiz content yet) and a session started in
2020 (the server stamps start times). The export is requested over HTTP, written by the
outbox job, downloaded, and compared column by column with the rows the listing routes
show.
"""

from __future__ import annotations

import csv
import io
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from learnlog.bootstrap import Runtime
from learnlog.cli import app as cli
from learnlog.jobs.exports import export_requested
from learnlog.jobs.outbox import Jobs
from learnlog.service.exports import SetExportState
from learnlog.store.schema import sessions, summaries
from tests.support import Api

TRACK = "/api/logger/trackprogress/"
EXPORTS = "/api/logger/exports/"
COLLECTION, COLLECTION_NAME = "maths", "Mathématiques, niveau 1"
TITLES = {"c1": "Addition", "c2": 'Fractions, "halves"'}  # c3 has no name
USERS = {"alice": ("alice.w", "learner"), "u-zoe": ("Zoë 学生", "learner"),
         "carol": ("carol", "coach")}  # bob is not registered
OLD_MS = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
SESSION_HEADER = ["Dataset name", "Username", "User type", "Channel id", "Channel name",
                  "Content id", "Content title", "Time of first interaction",
                  "Time of last interaction", "Time Spent (sec)", "Progress (0-1)",
                  "Content kind"]
SUMMARY_HEADER = [*SESSION_HEADER[:9], "Time of completion", *SESSION_HEADER[9:]]


def _track(api: Api, user: str, content: str, *, kind: str = "video",
           collection: str | None = COLLECTION, progress: float | None = None,
           seconds: float = 0.0) -> None:
    learner = api.as_user(user)
    body: dict[str, Any] = {"content_id": content, "kind": kind}
    if collection is not None:
        body["collection_id"] = collection
    session_id = learner.call("POST", TRACK, body)["session_id"]
    change: dict[str, Any] = {"time_spent_delta": seconds}
    if progress is not None:
        change["progress"] = progress
    learner.call("PUT", f"{TRACK}{session_id}/", change)


@pytest.fixture
def recorded(api: Api, runtime: Runtime) -> Api:
    api.put_collection(COLLECTION, [
        {"identifier": "c1", "type": "content", "kind": "video", "name": TITLES["c1"]},
        {"identifier": "u1", "type": "unit", "name": "Unit 1", "children": [
            {"identifier": "c2", "type": "content", "kind": "document",
             "name": TITLES["c2"]},
            {"identifier": "c3", "type": "content", "kind": "audio"}]}],
        name=COLLECTION_NAME)
    for user, (username, kind) in USERS.items():
        api.call("PUT", f"/v1/users/{user}",
                 {"request": {"username": username, "kind": kind}})
    _track(api, "alice", "c1", progress=0.29, seconds=12.34)
    _track(api, "alice", "c1", progress=0.5, seconds=3)  # a second session, one summary
    _track(api, "alice", "c2", kind="document", progress=1.0, seconds=60)
    _track(api, "alice", "old", collection=None, progress=0.2, seconds=5)
    _track(api, "u-zoe", "c1", progress=0.333, seconds=0.25)
    _track(api, "u-zoe", "loose", kind="html5", collection=None, progress=1.0, seconds=7)
    _track(api, "bob", "c3", kind="audio", seconds=1)
    _track(api, "bob", "quiz-1", progress=1.0, seconds=30)
    _track(api, "carol", "c2", kind="document", progress=0.1)
    with runtime.engine.begin() as conn:
        conn.execute(update(sessions).where(sessions.c.content_id == "quiz-1").values(
            kind="quiz"))
        conn.execute(update(sessions).where(sessions.c.content_id == "old").values(
            started_at=OLD_MS, ended_at=OLD_MS + 5000))
        conn.execute(update(summaries).where(summaries.c.content_id == "old").values(
            first_access=OLD_MS, last_access=OLD_MS + 5000))
    return api


def _window() -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {"start": (today - timedelta(days=1)).isoformat(),
            "end": (today + timedelta(days=1)).isoformat()}


def _request(api: Api, log_type: str, **window: str) -> dict[str, Any]:
    started = api.call("POST", EXPORTS, {"log_type": log_type, **window}, status=202)
    assert (started["log_type"], started["download"]) == (log_type, None)
    assert started["state"] in ("queued", "running", "done")
    return started


def _wait(api: Api, export_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = api.call("GET", f"{EXPORTS}{export_id}/")
        if state["state"] in ("done", "failed"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.05)


def _download(api: Api, export: dict[str, Any]) -> tuple[bytes, str]:
    response = api.client.get(export["download"],
                              headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return response.content, response.headers["content-disposition"]


def _exported(api: Api, log_type: str, **window: str) -> list[list[str]]:
    export = _wait(api, _request(api, log_type, **window)["id"])
    assert export["state"] == "done", export
    content, _ = _download(api, export)
    assert content.startswith("\ufeff".encode())  # a BOM, for spreadsheet programs
    table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert export["rows"] == len(table) - 1
    return table


def _listing(api: Api, kind: str) -> list[dict[str, Any]]:
    return list(api.call("GET", f"/api/logger/{kind}/?limit=1000")["results"])


def _expected(row: dict[str, Any], content_kind: str | None, summary: bool) -> list[str]:
    """The CSV row of a stored row, worked out here from the listing and the fixture."""
    collection = "" if row["collection_id"] == row["content_id"] else row["collection_id"]
    registered = collection == COLLECTION
    username, user_kind = USERS.get(row["user_id"], (row["user_id"], "learner"))
    completion = [row["completion_timestamp"] or ""] if summary else []
    return ["default", username, user_kind, collection,
            COLLECTION_NAME if registered else "", row["content_id"],
            TITLES.get(row["content_id"], "") if registered else "",
            row["start_timestamp"], row["end_timestamp"], *completion,
            f"{row['time_spent']:.1f}", f"{math.floor(row['progress'] * 10000 + 1e-9) / 10000:.4f}",
            content_kind or ""]


def _in_window(row: dict[str, Any]) -> bool:
    return row["content_id"] != "old"


def test_the_session_export_holds_the_stored_sessions_column_by_column(recorded: Api) -> None:
    stored = _listing(recorded, "contentsessionlog")
    table = _exported(recorded, "session", **_window())
    assert table[0] == SESSION_HEADER
    expected = [_expected(r, r["kind"], summary=False) for r in stored
                if r["kind"] != "quiz" and _in_window(r)]
    assert len(expected) == len(stored) - 2 == 7
    for got, want in zip(table[1:], expected, strict=True):
        for name, cell, wanted in zip(SESSION_HEADER, got, want, strict=True):
            assert cell == wanted, (name, got, want)
    by_user: dict[tuple[str, str], list[list[str]]] = {}
    for r in table[1:]:
        by_user.setdefault((r[1], r[5]), []).append(r)
    # hand-checked cells: float noise does not floor 0.29 to 0.2899; unicode survives
    assert sorted(r[9:11] for r in by_user[("alice.w", "c1")]) == [
        ["12.3", "0.2900"], ["3.0", "0.5000"]]
    [zoe] = by_user[("Zoë 学生", "c1")]
    assert zoe[9:11] == ["0.2", "0.3330"]
    [bob] = by_user[("bob", "c3")]
    assert bob[2:7] == ["learner", "maths", COLLECTION_NAME, "c3", ""]
    [loose] = by_user[("Zoë 学生", "loose")]
    assert loose[3:7] == ["", "", "loose", ""]
    # without a window the 2020 session is in too (the quiz never is)
    everything = _exported(recorded, "session")
    assert [r[5] for r in everything[1:]].count("old") == 1
    assert "quiz-1" not in [r[5] for r in everything[1:]]


def test_the_summary_export_has_the_completion_column(recorded: Api) -> None:
    stored = _listing(recorded, "contentsummarylog")
    kinds = {(r["user_id"], r["collection_id"], r["context_id"], r["content_id"]): r["kind"]
             for r in _listing(recorded, "contentsessionlog")}
    table = _exported(recorded, "summary", **_window())
    assert table[0] == SUMMARY_HEADER
    expected = []
    for r in stored:
        kind = kinds[(r["user_id"], r["collection_id"], r["context_id"], r["content_id"])]
        if kind != "quiz" and _in_window(r):
            expected.append(_expected(r, kind, summary=True))
    assert len(expected) == 6  # alice's two c1 sessions are one summary
    for got, want in zip(table[1:], expected, strict=True):
        for name, cell, wanted in zip(SUMMARY_HEADER, got, want, strict=True):
            assert cell == wanted, (name, got, want)
    completed = {r[5]: r[9] for r in table[1:] if r[1] == "alice.w"}
    assert completed["c2"].endswith("Z") and completed["c1"] == ""


def test_the_download_is_named_like_kolibri_s(recorded: Api) -> None:
    window = _window()
    export = _wait(recorded, _request(recorded, "summary", **window)["id"])
    _, disposition = _download(recorded, export)
    assert disposition == (
        'attachment; filename="default_content_summary_logs_from_'
        f'{window["start"]}_to_{window["end"]}.csv"')
    assert export["start"] == f"{window['start']}T00:00:00.000Z"
    end = datetime.fromisoformat(window["end"]) + timedelta(days=1)  # the whole end day
    assert export["end"] == f"{end.date().isoformat()}T00:00:00.000Z"


def test_only_admins_may_export(recorded: Api, runtime: Runtime) -> None:
    export = _wait(recorded, _request(recorded, "session")["id"])
    for caller in (recorded.as_user("alice"), recorded.as_user("carol", "coach")):
        for method, path, body in [
                ("POST", EXPORTS, {"log_type": "session"}),
                ("GET", f"{EXPORTS}{export['id']}/", None),
                ("GET", f"{EXPORTS}{export['id']}/download/", None)]:
            answer = caller.call(method, path, body, status=403)
            assert answer["params"]["err"] == "FORBIDDEN"


def test_unknown_and_unfinished_exports(recorded: Api, runtime: Runtime) -> None:
    for path in (f"{EXPORTS}nope/", f"{EXPORTS}nope/download/"):
        assert recorded.call("GET", path, status=404)["params"]["err"] == "EXPORT_NOT_FOUND"
    export = _wait(recorded, _request(recorded, "session")["id"])
    runtime.writer.run_sync(SetExportState("default", export["id"], "running"))
    assert recorded.call("GET", f"{EXPORTS}{export['id']}/")["download"] is None
    answer = recorded.call("GET", f"{EXPORTS}{export['id']}/download/", status=409)
    assert (answer["params"]["err"], answer["result"]["field"]) == (
        "EXPORT_NOT_READY", "export_id")


def test_the_job_is_idempotent(recorded: Api, runtime: Runtime) -> None:
    export = _wait(recorded, _request(recorded, "summary", **_window())["id"])
    first, _ = _download(recorded, export)
    for _ in range(2):  # the same message delivered twice more
        export_requested(runtime.jobs, "default", {"exportId": export["id"]})
        again = recorded.call("GET", f"{EXPORTS}{export['id']}/")
        assert (again["state"], again["rows"]) == ("done", export["rows"])
        assert _download(recorded, again)[0] == first
    # one file, no temporary file left behind
    assert [p.name for p in runtime.exports_dir.iterdir()] == [f"{export['id']}.csv"]


def test_a_job_that_cannot_write_fails_visibly(recorded: Api, runtime: Runtime,
                                               tmp_path: Path) -> None:
    export = _wait(recorded, _request(recorded, "session")["id"])
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    export_requested(Jobs(runtime.writer, runtime.read_engine, blocker), "default",
                     {"exportId": export["id"]})
    export = recorded.call("GET", f"{EXPORTS}{export['id']}/")
    assert export["state"] == "failed" and export["download"] is None
    assert export["error"].startswith(("FileExistsError", "NotADirectoryError"))
    assert export["finished_at"] is not None


def test_the_cli_writes_the_same_bytes_as_the_job(recorded: Api, runtime: Runtime,
                                                  tmp_path: Path) -> None:
    window = _window()
    export = _wait(recorded, _request(recorded, "session", **window)["id"])
    from_job, _ = _download(recorded, export)
    out = tmp_path / "cli.csv"
    env = {"LEARNLOG_DATABASE_URL": runtime.settings.database_url,
           "LEARNLOG_JWT_SECRET": runtime.secret}
    done = CliRunner().invoke(cli, ["export", "--type", "session", "--start", window["start"],
                                    "--end", window["end"], "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    assert out.read_bytes() == from_job
    refused = CliRunner().invoke(cli, ["export", "--type", "session", "--end", "someday",
                                       "--out", str(out)], env=env)
    assert refused.exit_code == 2
