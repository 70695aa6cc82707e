"""Realistic synthetic Open edX tracking logs, for tests and benchmarks (SPEC §6).

Learners open courseware pages, move with legacy (`seq_next`, `seq_prev`, `seq_goto`) and
Learning-MFE (`edx.ui.lms.sequence.*`) navigation, play, pause, seek and stop videos (with
the stale `currentTime` after a seek that real players send), check problems (server
events with grade and max_grade), post to forums, close pages and leave for the dashboard.
Days, courses and users are many; both course-id forms and both video-id forms appear; a
few lines are comments or broken, a few events have no user, and one staff member works
in the instructor dashboard. The same seed always writes the same bytes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HOST = "https://lms.example.org"
START = dt.datetime(2025, 3, 3, 7, 0, tzinfo=dt.UTC)  # a Monday


@dataclass(frozen=True)
class Course:
    org: str
    number: str
    run: str
    chapters: int = 4
    sequentials: int = 3
    units: int = 4

    @property
    def new_id(self) -> str:
        return f"course-v1:{self.org}+{self.number}+{self.run}"

    @property
    def old_id(self) -> str:
        return f"{self.org}/{self.number}/{self.run}"

    def unit_key(self, ch: int, seq: int, unit: int) -> str:
        return (f"block-v1:{self.org}+{self.number}+{self.run}+type@vertical+block@"
                f"u{ch:02d}{seq:02d}{unit:02d}{self.number[-2:]}")

    def sequential_key(self, ch: int, seq: int) -> str:
        return (f"block-v1:{self.org}+{self.number}+{self.run}+type@sequential+block@"
                f"s{ch:02d}{seq:02d}{self.number[-2:]}")

    def chapter_key(self, ch: int) -> str:
        return (f"block-v1:{self.org}+{self.number}+{self.run}+type@chapter+block@"
                f"c{ch:02d}{self.number[-2:]}")

    def courseware(self, course_id: str, ch: int, seq: int, unit: int) -> str:
        """The path of a courseware page (its chapter's and sequential's block names)."""
        return (f"/courses/{course_id}/courseware/c{ch:02d}{self.number[-2:]}/"
                f"s{ch:02d}{seq:02d}{self.number[-2:]}/{unit}/")

    def structure(self) -> dict[str, Any]:
        """The course as an Open edX Blocks API answer (`learnlog logs structure`)."""
        root = f"block-v1:{self.org}+{self.number}+{self.run}+type@course+block@course"
        blocks: dict[str, Any] = {root: {"type": "course", "display_name": self.number,
                                         "children": [self.chapter_key(ch)
                                                      for ch in range(self.chapters)]}}
        for ch in range(self.chapters):
            blocks[self.chapter_key(ch)] = {"type": "chapter", "children": [
                self.sequential_key(ch, seq) for seq in range(self.sequentials)]}
            for seq in range(self.sequentials):
                units = [self.unit_key(ch, seq, u) for u in range(self.units)]
                blocks[self.sequential_key(ch, seq)] = {"type": "sequential",
                                                        "children": units}
                for u, key in enumerate(units):
                    blocks[key] = {"type": "vertical", "display_name": f"Unit {u + 1}",
                                   "children": []}
        return {"root": root, "blocks": blocks}

    def video_hash(self, ch: int, seq: int, unit: int) -> str:
        return f"v{ch:02d}{seq:02d}{unit:02d}{self.number[-2:]}{'0' * 20}"


@dataclass
class Written:
    """What a generation wrote."""

    path: Path
    events: int
    lines: int
    bytes: int


def courses(count: int) -> list[Course]:
    return [Course("LearnX", f"C{i:02d}", "2025") for i in range(count)]


class _Writer:
    def __init__(self, out: IO[str], rng: random.Random) -> None:
        self.out, self.rng = out, rng
        self.events = self.lines = self.size = 0

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.lines += 1
        self.size += len(text) + 1  # the text is ASCII: characters are bytes

    def event(self, record: dict[str, Any]) -> None:
        self.line(json.dumps(record, separators=(", ", ": ")))
        self.events += 1


def _stamp(at: dt.datetime) -> str:
    return at.isoformat(timespec="microseconds")


def _envelope(user: str, uid: int, course_id: str, at: dt.datetime, event_type: str,
              event: Any, source: str, page: str | None, *,
              module: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"user_id": uid, "org_id": "LearnX", "course_id": course_id,
                               "path": "/event" if source == "browser" else event_type}
    if module is not None:
        context["module"] = module
    return {"username": user, "event_type": event_type, "ip": "10.0.0.1",
            "agent": "Mozilla/5.0", "host": "lms.example.org",
            "session": f"{uid:032x}", "event": event, "event_source": source,
            "context": context, "time": _stamp(at), "page": page, **extra}


def _visit(w: _Writer, course: Course, user: str, uid: int, at: dt.datetime,
           old_form: bool) -> dt.datetime:
    """One study session of one learner in one course; returns when it ended."""
    rng = w.rng
    cid = course.old_id if old_form else course.new_id
    ch, seq, unit = rng.randrange(course.chapters), rng.randrange(course.sequentials), 1
    referer = rng.choice([f"{HOST}/dashboard", f"{HOST}/courses/{cid}/course/"])
    for _ in range(rng.randint(2, 7)):
        path = course.courseware(cid, ch, seq, unit)
        w.event(_envelope(user, uid, cid, at, path, {"POST": {}, "GET": {}}, "server",
                          None, referer=referer, name=path))
        page = HOST + path
        at += dt.timedelta(seconds=rng.uniform(5, 40))
        if rng.random() < 0.6:  # a video on the unit
            vid = course.video_hash(ch, seq, unit - 1)
            shown = f"i4x-LearnX-{course.number}-video-{vid}" if old_form else vid
            duration = 300.0 + (ch * 37 + seq * 11 + unit * 5) % 400
            position = 0.0
            with_duration = rng.random() < 0.8
            for _ in range(rng.randint(1, 3)):
                payload: dict[str, Any] = {"id": shown, "code": "html5",
                                           "currentTime": round(position, 3)}
                if with_duration:
                    payload["duration"] = duration
                w.event(_envelope(user, uid, cid, at, "play_video", json.dumps(payload),
                                  "browser", page))
                watched = rng.uniform(10, 120)
                at += dt.timedelta(seconds=watched)
                end = min(position + watched, duration)
                if rng.random() < 0.3:  # seek, then the player plays on with a stale time
                    target = rng.uniform(0, duration - 1)
                    seek = {**payload, "old_time": round(end, 3),
                            "new_time": round(target, 3), "type": "onSlideSeek"}
                    seek.pop("currentTime")
                    w.event(_envelope(user, uid, cid, at, "seek_video", json.dumps(seek),
                                      "browser", page))
                    at += dt.timedelta(seconds=0.5)
                    stale = {**payload, "currentTime": round(end, 3)}
                    w.event(_envelope(user, uid, cid, at, "play_video", json.dumps(stale),
                                      "browser", page))
                    watched = rng.uniform(5, 60)
                    at += dt.timedelta(seconds=watched)
                    end = min(target + watched, duration)
                kind = "stop_video" if end >= duration else "pause_video"
                w.event(_envelope(user, uid, cid, at, kind,
                                  json.dumps({**payload, "currentTime": round(end, 3)}),
                                  "browser", page))
                position = end if end < duration else 0.0
                at += dt.timedelta(seconds=rng.uniform(1, 20))
        if rng.random() < 0.4:  # a problem
            usage = (f"block-v1:LearnX+{course.number}+2025+type@problem+block@"
                     f"p{ch:02d}{seq:02d}{unit:02d}")
            top = float(rng.choice([1, 2, 3, 5]))
            grade = float(rng.randint(0, int(top)))
            w.event(_envelope(user, uid, cid, at, "problem_check",
                              {"problem_id": usage, "attempts": rng.randint(1, 3),
                               "grade": grade, "max_grade": top,
                               "success": "correct" if grade == top else "incorrect"},
                              "server", None, name="problem_check",
                              module={"usage_key": usage}))
            at += dt.timedelta(seconds=rng.uniform(20, 200))
        if rng.random() < 0.05:
            w.event(_envelope(user, uid, cid, at, "edx.forum.thread.created",
                              {"title": "Question", "body": "..."}, "server", None))
        # Move on: legacy or MFE navigation, sometimes a long pause first.
        if rng.random() < 0.1:
            at += dt.timedelta(minutes=rng.uniform(31, 90))
        old_unit = unit
        if rng.random() < 0.5 and unit < course.units:
            unit += 1
            w.event(_envelope(user, uid, cid, at, "seq_next", json.dumps(
                {"old": old_unit, "new": unit, "id": course.sequential_key(ch, seq)}),
                "browser", page))
        elif rng.random() < 0.5:
            unit = rng.randint(1, course.units)
            w.event(_envelope(user, uid, cid, at, "seq_goto", json.dumps(
                {"old": old_unit, "new": unit, "id": course.sequential_key(ch, seq)}),
                "browser", page))
        else:
            unit = rng.randint(1, course.units)
            w.event(_envelope(user, uid, cid, at, "edx.ui.lms.sequence.tab_selected",
                              json.dumps({"current_tab": old_unit, "target_tab": unit,
                                          "tab_count": course.units,
                                          "id": course.unit_key(ch, seq, unit - 1),
                                          "widget_placement": "top"}),
                              "browser", page))
        at += dt.timedelta(seconds=rng.uniform(1, 15))
    if rng.random() < 0.5:
        w.event(_envelope(user, uid, cid, at, "page_close", "", "browser",
                          f"{HOST}/courses/{cid}/courseware/"))
    return at


def events(w: _Writer, *, users: int, course_count: int, days: int,
           budget: Callable[[], bool], noise: bool = True) -> None:
    """Sessions day after day until the budget says stop (or the days run out)."""
    rng = w.rng
    all_courses = courses(course_count)
    w.line("# learnlog synthetic tracking log")
    day = 0
    while budget():
        if days and day >= days:
            break
        base = START + dt.timedelta(days=day)
        for u in rng.sample(range(users), max(1, min(users // 3, 1000))):
            if not budget():
                return
            course = all_courses[u % course_count]
            at = base + dt.timedelta(minutes=rng.uniform(0, 14 * 60))
            _visit(w, course, f"learner{u:05d}", 1000 + u, at, old_form=u % 5 == 0)
        if day % 3 == 0:  # now and then: staff, anonymous, blank and (noise) broken lines
            staff_course = all_courses[day % course_count]
            w.event(_envelope("staff_ann", 7, staff_course.new_id, base,
                              f"/courses/{staff_course.new_id}/instructor", {}, "server",
                              None))
            w.event(_envelope("", 0, staff_course.new_id, base, "page_close", "",
                              "browser", None))
            if noise:
                w.line('{"username": "broken", "event_type": ')
            w.line("")
        day += 1


def generate(path: Path, *, size_bytes: int | None = None, event_count: int | None = None,
             users: int = 2000, course_count: int = 8, days: int = 0,
             seed: int = 7, noise: bool = True) -> Written:
    """Write a log of about `size_bytes` bytes or `event_count` events (gzip if the name
    ends in .gz)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    out: IO[str]
    with (gzip.open(path, "wt", compresslevel=1) if path.suffix == ".gz"
          else open(path, "w")) as out:
        w = _Writer(out, rng)

        def budget() -> bool:
            if event_count is not None and w.events >= event_count:
                return False
            return size_bytes is None or w.size < size_bytes
        events(w, users=users, course_count=course_count, days=days, budget=budget,
               noise=noise)
    return Written(path, w.events, w.lines, path.stat().st_size)
