"""Course structure from an Open edX Blocks API document (SPEC §6): the places the log
names become unit ids, the legacy move across subsections is placed, the statistics are
recomputed when the structure arrives after the logs, and units a newer document lacks
become inactive and drop out of what the API serves while their rows stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from learnlog.bootstrap import Runtime
from learnlog.settings import Settings
from learnlog.store.schema import course_units, outbox, stats_times
from tests.integration.test_outbox import drain
from tests.support import Api, leaf, unit
from tests.tracking import COURSE, event, write

KEY = "block-v1:LearnX+T1+2025+type@{}+block@{}".format
SEQ = "block-v1:LearnX+T1+2025+type@sequential+block@"


def document(*units_of_s2: str) -> dict[str, Any]:
    """ch1 → s1 (u1, u2), s2 (the units given)."""
    blocks: dict[str, Any] = {
        KEY("course", "course"): {"type": "course", "children": [KEY("chapter", "ch1")]},
        KEY("chapter", "ch1"): {"type": "chapter", "children": [KEY("sequential", "s1"),
                                                                KEY("sequential", "s2")]},
        KEY("sequential", "s1"): {"type": "sequential", "children": [
            KEY("vertical", "u1"), KEY("vertical", "u2")]},
        KEY("sequential", "s2"): {"type": "sequential", "children": [
            KEY("vertical", u) for u in units_of_s2]},
        **{KEY("vertical", u): {"type": "vertical", "display_name": u.upper()}
           for u in ("u1", "u2", *units_of_s2)},
    }
    return {"root": KEY("course", "course"), "blocks": blocks}


def cli(settings: Settings, tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "LEARNLOG_DATABASE_URL": settings.database_url,
           "LEARNLOG_ANALYTICS_DIR": str(tmp_path / "analytics")}
    done = subprocess.run([sys.executable, "-m", "learnlog", "logs", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return " ".join(done.stderr.split())


def times(api: Api) -> dict[str, float]:
    response = api.client.get(f"/api/stats/times?course_id={quote(COURSE)}",
                              headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200, response.text
    return {r["unit"]: r["seconds"] for r in response.json()["rows"]}


def test_places_become_units_and_removed_units_drop_out(
        api: Api, runtime: Runtime, settings: Settings, tmp_path: Path) -> None:
    page = f"/courses/{COURSE}/courseware/ch1/s1/1/"
    write(tmp_path / "logs" / "tracking.log", [
        event("ana", page, 0, {"GET": {}}, source="server"),  # s1#1 = u1
        event("ana", "seq_next", 100, {"old": 1, "new": 2, "id": SEQ + "s1"}),  # u2
        # The legacy move into the next subsection: the first unit of s2, u3.
        event("ana", "edx.ui.lms.sequence.next_selected", 200,
              {"current_tab": 2, "tab_count": 2, "id": SEQ + "s1"}),
        # The Learning MFE names the unit itself.
        event("ana", "edx.ui.lms.sequence.tab_selected", 300,
              {"current_tab": 1, "target_tab": 1, "id": KEY("vertical", "u1")}),
        event("ana", "edx.ui.lms.sequence.tab_selected", 350,
              {"current_tab": 1, "target_tab": 1, "id": KEY("vertical", "u3")}),
        event("ana", "page_close", 400),
    ])
    cli(settings, tmp_path, "ingest", str(tmp_path / "logs"))
    # No structure yet: places by name; the move across subsections cannot be placed.
    assert times(api) == {"s1#1": 100.0, "s1#2": 100.0, "unresolved": 100.0, "u1": 50.0,
                          "u3": 50.0}
    (tmp_path / "course.json").write_text(json.dumps(document("u3", "u4")))
    summary = cli(settings, tmp_path, "structure", str(tmp_path / "course.json"))
    assert f"structure of {COURSE}: 4 units, 0 made inactive" in summary
    u1, u2, u3 = (KEY("vertical", u) for u in ("u1", "u2", "u3"))
    # Recomputed from the kept events: u1 100 + 50; u3 100 (the move) + 50 (the page_close
    # that ends the session adds 0).
    assert times(api) == {u1: 150.0, u2: 100.0, u3: 150.0}
    # A newer structure without u3: it becomes inactive; the time the MFE placed on it
    # stays in its row, hidden; the move across subsections now leads to s2's first
    # unit, u4 (statistics follow the current structure).
    (tmp_path / "course.json").write_text(json.dumps(document("u4")))
    summary = cli(settings, tmp_path, "structure", str(tmp_path / "course.json"))
    assert "3 units, 1 made inactive" in summary
    assert times(api) == {u1: 150.0, u2: 100.0, KEY("vertical", "u4"): 100.0}
    with runtime.engine.connect() as conn:
        held = {r.unit_id: r.active for r in conn.execute(select(course_units))}
        rows = {r.unit_id for r in conn.execute(select(stats_times))}
    assert held[u3] is False and held[KEY("vertical", "u4")] is True
    assert u3 in rows


def test_a_document_that_is_not_a_blocks_answer_is_refused(
        settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "course.json"
    env = {**os.environ, "LEARNLOG_DATABASE_URL": settings.database_url,
           "LEARNLOG_ANALYTICS_DIR": str(tmp_path / "analytics")}
    for text, says in (("{}", "not an Open edX Blocks API document"),
                       (json.dumps({"root": "i4x://x", "blocks": {}}), "give --course-id"),
                       ("not json", "cannot read")):
        path.write_text(text)
        done = subprocess.run([sys.executable, "-m", "learnlog", "logs", "structure",
                               str(path)], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 1 and says in " ".join(done.stderr.split()), done.stderr


def collection(*units_of_s2: str) -> list[dict[str, Any]]:
    """The same course as `document`, registered as a collection tree (SPEC §2.5): ch1 →
    s1 (u1, u2), s2 (the units given), each unit holding one content."""
    def vertical(name: str) -> dict[str, Any]:
        return {**unit(KEY("vertical", name), leaf(f"{name}-video")), "name": name.upper()}
    return [unit(KEY("chapter", "ch1"),
                 unit(KEY("sequential", "s1"), vertical("u1"), vertical("u2")),
                 unit(KEY("sequential", "s2"), *(vertical(u) for u in units_of_s2)))]


def test_a_registered_course_collection_is_the_course_structure(
        held_outbox: tuple[Api, Runtime], settings: Settings, tmp_path: Path) -> None:
    """A collection whose id is the course's gives the course its units, through the
    outbox: the statistics are recomputed from the events kept, and a newer version's
    missing units become inactive — as with a Blocks API document."""
    api, rt = held_outbox
    page = f"/courses/{COURSE}/courseware/ch1/s1/1/"
    write(tmp_path / "logs" / "tracking.log", [
        event("ana", page, 0, {"GET": {}}, source="server"),  # s1#1 = u1
        event("ana", "seq_next", 100, {"old": 1, "new": 2, "id": SEQ + "s1"}),  # u2
        event("ana", "edx.ui.lms.sequence.next_selected", 200,  # into s2: its first unit
              {"current_tab": 2, "tab_count": 2, "id": SEQ + "s1"}),
        event("ana", "edx.ui.lms.sequence.tab_selected", 300,  # the MFE names u3
              {"current_tab": 1, "target_tab": 1, "id": KEY("vertical", "u3")}),
        event("ana", "page_close", 400),
    ])
    cli(settings, tmp_path, "ingest", str(tmp_path / "logs"))
    assert times(api) == {"s1#1": 100.0, "s1#2": 100.0, "unresolved": 100.0, "u3": 100.0}
    api.put_collection(COURSE, collection("u3", "u4"))
    drain(rt)
    u1, u2, u3, u4 = (KEY("vertical", u) for u in ("u1", "u2", "u3", "u4"))
    assert times(api) == {u1: 100.0, u2: 100.0, u3: 200.0}
    with rt.engine.connect() as conn:
        held = {r.unit_id: (r.sequential, r.position, r.name, r.active)
                for r in conn.execute(select(course_units))}
    assert held == {u1: ("s1", 1, "U1", True), u2: ("s1", 2, "U2", True),
                    u3: ("s2", 1, "U3", True), u4: ("s2", 2, "U4", True)}
    # A newer version without u3: the move leads to u4 now; u3's row stays, hidden.
    api.put_collection(COURSE, collection("u4"))
    drain(rt)
    assert times(api) == {u1: 100.0, u2: 100.0, u4: 100.0}
    with rt.engine.connect() as conn:
        assert conn.execute(select(course_units.c.active).where(
            course_units.c.unit_id == u3)).scalar_one() is False
        assert u3 in {r.unit_id for r in conn.execute(select(stats_times))}
    # A collection that is not a course queues no structure import.
    api.put_collection("k1", [leaf("c1")])
    with rt.engine.connect() as conn:
        topics = [r.topic for r in conn.execute(select(outbox))]
    assert "course.structure" not in topics
