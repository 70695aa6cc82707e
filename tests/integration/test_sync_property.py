"""The sync guarantee, property-tested (SPEC §5): 2 to 5 instances make random edits —
views, updates, completions, assessments, erasures — and sync in random orders, with
chunks applied twice and transfers cut off half-way. After everyone has synced with
everyone, every instance holds the same facts and the same summaries, and each summary is
the fold of the facts."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from learnlog.bootstrap import Runtime, bootstrap
from learnlog.domain.assessment import ItemResponse
from learnlog.domain.collection import Node
from learnlog.domain.errors import LearnlogError
from learnlog.service.verify import verify
from learnlog.service.viewer import (
    AttemptInput,
    EndView,
    EraseSummaries,
    Keys,
    PutCollection,
    StartView,
    SubmitAssessment,
    UpdateView,
)
from learnlog.settings import Settings
from learnlog.store.schema import sessions, summaries
from learnlog.store.sync import synced_tables
from learnlog.sync.client import LocalPeer, SyncError, sync
from tests.support import Unreliable

USERS = ("ana", "ben")
CONTENTS = ("c1", "c2")
LOCAL = {"open_session_id", "rev", "updated_at"}  # a summary's columns of this instance


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """One migrated database file; each instance starts from a copy (fast examples)."""
    folder = Path(tempfile.mkdtemp(prefix="learnlog-sync-prop-"))
    rt = bootstrap(_settings(folder / "template.db", "template"))
    rt.close()
    yield folder / "template.db"
    shutil.rmtree(folder, ignore_errors=True)


def _settings(path: Path, instance: str) -> Settings:
    return Settings(database_url=f"sqlite:///{path}", instance_id=instance,
                    jwt_secret="p" * 40, process_outbox=False,
                    _env_file=None)  # type: ignore[call-arg]


@contextmanager
def instances(template: Path, n: int) -> Iterator[list[Runtime]]:
    folder = Path(tempfile.mkdtemp(prefix="learnlog-sync-inst-"))
    made = []
    try:
        for i in range(n):
            shutil.copy(template, folder / f"i{i}.db")
            made.append(bootstrap(_settings(folder / f"i{i}.db", f"inst{i}"),
                                  run_migrations=False))
        yield made
    finally:
        for rt in made:
            rt.close()
        shutil.rmtree(folder, ignore_errors=True)


def _keys(user: str, content: str, in_collection: bool) -> Keys:
    return Keys("default", user, content, "k1" if in_collection else None, None)


edits = st.one_of(
    st.tuples(st.just("view"), st.sampled_from(USERS), st.sampled_from(CONTENTS),
              st.booleans(), st.integers(0, 100), st.integers(0, 50)),
    st.tuples(st.just("end"), st.sampled_from(USERS), st.sampled_from(CONTENTS),
              st.booleans()),
    st.tuples(st.just("assess"), st.sampled_from(USERS), st.sampled_from(CONTENTS),
              st.booleans(), st.integers(0, 3), st.sampled_from(["t1", "t2"])),
    st.tuples(st.just("erase"), st.sampled_from(USERS), st.booleans()),
)


def apply_edit(rt: Runtime, edit: tuple[Any, ...]) -> None:
    kind = edit[0]
    try:
        if kind == "view":
            _, user, content, in_col, percent, seconds = edit
            keys = _keys(user, content, in_col)
            rt.writer.run_sync(StartView(keys))
            rt.writer.run_sync(UpdateView(keys, float(seconds), float(percent)))
        elif kind == "end":
            _, user, content, in_col = edit
            rt.writer.run_sync(EndView(_keys(user, content, in_col)))
        elif kind == "assess":
            _, user, content, in_col, score, attempt = edit
            response = ItemResponse("q1", 1_700_000_000_000, float(score), 3.0,
                                    {"id": "q1"}, {})
            rt.writer.run_sync(SubmitAssessment(_keys(user, content, in_col), (
                AttemptInput(attempt, 1_700_000_000_000, (response,)),)))
        else:
            _, user, everything = edit
            rt.writer.run_sync(EraseSummaries("default", user, None if everything else "k1",
                                              None))
    except LearnlogError:
        pass  # e.g. ending a view never started here: refused, nothing written


def snapshot(rt: Runtime) -> tuple[dict[str, set[tuple[Any, ...]]], set[tuple[Any, ...]]]:
    """Every fact row (versions included) and every summary (without local columns)."""
    with rt.read_engine.connect() as conn:
        facts = {t.name: {tuple(r) for r in conn.execute(select(t))} for t in synced_tables()}
        cols = [c for c in summaries.c if c.name not in LOCAL]
        folded = {tuple(r) for r in conn.execute(select(*cols))}
    return facts, folded


def _difference(a: Any, b: Any) -> str:
    """Where two snapshots differ (table by table), for the failure message."""
    out = []
    for name in a[0]:
        if a[0][name] != b[0][name]:
            out.append(f"{name}: only first {sorted(a[0][name] - b[0][name])[:3]}, "
                       f"only other {sorted(b[0][name] - a[0][name])[:3]}")
    if a[1] != b[1]:
        out.append(f"summaries: only first {sorted(a[1] - b[1])[:3]}, "
                   f"only other {sorted(b[1] - a[1])[:3]}")
    return "\n".join(out)


def check_folds(rt: Runtime) -> None:
    """Each summary is the fold of its sessions, and every key with sessions has one."""
    with rt.read_engine.connect() as conn:
        assert not verify(conn, rt.ctx.mode).problems
        keyed = set(conn.execute(select(sessions.c.user_id, sessions.c.collection_key,
                                        sessions.c.context_key, sessions.c.content_id)))
        summed = set(conn.execute(select(summaries.c.user_id, summaries.c.collection_key,
                                         summaries.c.context_key, summaries.c.content_id)))
    assert keyed == summed


steps = st.lists(st.one_of(
    st.tuples(st.just("edit"), st.integers(0, 4), edits),
    st.tuples(st.just("sync"), st.integers(0, 4), st.integers(0, 4), st.booleans(),
              st.none() | st.integers(1, 4)),
), min_size=1, max_size=14)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 5), plan=steps, limit=st.sampled_from([1, 3, 50]))
def test_everyone_ends_with_the_same_facts_and_the_fold_of_them(
        template: Path, n: int, plan: list[tuple[Any, ...]], limit: int) -> None:
    with instances(template, n) as rts:
        children = (Node("c1", "content", None, "video"), Node("c2", "content", None, "video"))
        for rt in rts:  # each instance registers the collection on its own
            rt.writer.run_sync(PutCollection("default", "k1", "K1", None, None, children, ()))
        for step in plan:
            if step[0] == "edit":
                apply_edit(rts[step[1] % n], step[2])
                continue
            _, a, b, twice, drop = step
            a, b = a % n, b % n
            if a == b:
                continue
            with suppress(SyncError):  # cut off: what arrived stays, the rest comes later
                sync(rts[a], Unreliable(LocalPeer(rts[b]), twice, drop), limit=limit)
        for _ in range(2):  # everyone syncs with everyone
            for a in range(n):
                for b in range(a + 1, n):
                    sync(rts[a], LocalPeer(rts[b]), limit=limit)
        first = snapshot(rts[0])
        for rt in rts[1:]:
            other = snapshot(rt)
            assert other == first, _difference(first, other)
        for rt in rts:
            check_folds(rt)
