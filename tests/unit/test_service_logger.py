"""The logger write commands (service/logger.py) on the in-memory unit of work: sessions
by id, progress never lowered, exercises mastered on the server, refusals. The figures are
those of tests/integration/test_logger.py."""

from __future__ import annotations

from typing import Any

import pytest

from learnlog.domain import mastery
from learnlog.domain.errors import Forbidden, InvalidInput, NotFound
from learnlog.domain.keys import ContextMode
from learnlog.domain.progress import COMPLETED, IN_PROGRESS
from learnlog.domain.summary import Summary
from learnlog.service.logger import StartTracking, TrackProgress
from learnlog.service.ports import ServiceContext
from learnlog.service.topics import GROUP_MEMBER
from learnlog.service.viewer import Keys
from learnlog.store.schema import group_activities, groups, memberships, quizzes
from tests.unit.fakes import FakeUnitOfWork, Stored

pytestmark = pytest.mark.unit

DS = "ds"
ALICE, BOB = "alice", "bob"
CONTENT, EXERCISE = "video1", "ex1"
T0 = 1_800_000_000_000
CTX = ServiceContext(mode=ContextMode.CONTENT, instance_id="inst-1",
                     implicit_enrolment=True, max_time_spent_delta=6 * 3600,
                     sign=lambda claims: "signed")
M_OF_N = mastery.Criterion("m_of_n", 3, 5)


def start(uow: FakeUnitOfWork, content: str = CONTENT, user: str = ALICE, **fields: Any
          ) -> dict[str, Any]:
    result: dict[str, Any] = uow.run(StartTracking(Keys(DS, user, content), **fields), CTX)
    return result


def put(uow: FakeUnitOfWork, sid: str, user: str = ALICE, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = uow.run(TrackProgress(DS, user, sid, **fields), CTX)
    return result


def answer(item: str, correct: float, **fields: Any) -> mastery.Interaction:
    return mastery.Interaction(item, correct, 5, answer={"response": "x"}, **fields)


def state(uow: FakeUnitOfWork, content: str = CONTENT, user: str = ALICE) -> Summary:
    found = uow.summaries.get(Keys(DS, user, content).resolve(CTX))
    assert found is not None
    return found


# --- sessions -------------------------------------------------------------------------------

def test_start_opens_a_session_and_creates_the_summary() -> None:
    uow = FakeUnitOfWork(now=T0)
    started = start(uow, kind="video")
    assert started == {"session_id": "id-1", "progress": 0.0, "time_spent": 0.0,
                       "extra_fields": {}, "complete": False}
    session = uow.summaries.session(DS, ALICE, "id-1")
    assert session is not None and session.kind == "video" and not session.closed
    assert state(uow).view_count == 1


def test_progress_deltas_add_and_absolute_progress_never_lowers() -> None:
    uow = FakeUnitOfWork()
    sid = start(uow)["session_id"]
    put(uow, sid, progress_delta=0.25, time_spent_delta=10)
    put(uow, sid, progress_delta=0.25, time_spent_delta=10)
    assert (state(uow).progress, state(uow).time_spent) == (0.5, 20)
    put(uow, sid, progress=0.3)
    assert state(uow).progress == 0.5
    assert put(uow, sid, progress=1.0)["complete"] is True
    assert (state(uow).status, state(uow).progress) == (COMPLETED, 1.0)


def test_extra_fields_replace_the_previous_ones() -> None:
    uow = FakeUnitOfWork()
    sid = start(uow)["session_id"]
    put(uow, sid, extra_fields={"page": 1, "zoom": 2})
    put(uow, sid, extra_fields={"page": 3})
    assert state(uow).extra_fields == {"page": 3}


def test_a_stored_session_is_continued_in_a_later_batch() -> None:
    first = FakeUnitOfWork(now=T0)
    sid = start(first)["session_id"]
    put(first, sid, progress=0.4, time_spent_delta=7)
    # What the first batch committed is what the second one finds stored.
    stored = Stored()
    for (summary, open_id) in first.committed.summaries.values():
        stored.summaries[summary.key] = (summary, open_id)
    stored.sessions.update(first.committed.sessions)
    second = FakeUnitOfWork(stored, now=T0 + 1000)
    put(second, sid, progress_delta=0.1, time_spent_delta=3)
    assert state(second).progress == 0.5
    assert state(second).time_spent == pytest.approx(10)
    assert state(second).status == IN_PROGRESS


# --- refusals -------------------------------------------------------------------------------

def test_another_learners_session_is_not_found_and_stages_nothing() -> None:
    uow = FakeUnitOfWork()
    sid = start(uow)["session_id"]
    before = uow.committed
    with pytest.raises(NotFound) as refused:
        put(uow, sid, user=BOB, progress=1.0)
    assert (refused.value.code, refused.value.field) == ("SESSION_NOT_FOUND", "session_id")
    assert uow.committed == before
    assert not uow.staged_anything()


def test_too_much_time_in_one_update_is_refused() -> None:
    uow = FakeUnitOfWork()
    sid = start(uow)["session_id"]
    with pytest.raises(InvalidInput) as refused:
        put(uow, sid, time_spent_delta=6 * 3600 + 1, progress=0.9)
    assert (refused.value.code, refused.value.field) == ("TIMESPENT_TOO_LARGE",
                                                         "time_spent_delta")
    assert state(uow).progress == 0.0


def test_interactions_need_an_exercise_session() -> None:
    uow = FakeUnitOfWork()
    sid = start(uow)["session_id"]
    with pytest.raises(InvalidInput) as refused:
        put(uow, sid, progress=0.5, interactions=(answer("q1", 1),))
    assert (refused.value.code, refused.value.field) == ("INVALID_PARAMETER_VALUE",
                                                         "interactions")
    assert state(uow).progress == 0.0  # the progress that came with it is not applied


def test_a_coach_quiz_not_assigned_is_forbidden() -> None:
    stored = Stored()
    stored.record(quizzes, {"dataset": DS, "quiz_id": "quiz1", "title": "Q",
                            "active": False, "group_ids": "[]"})
    uow = FakeUnitOfWork(stored)
    with pytest.raises(Forbidden) as closed:
        start(uow, "quiz1", criterion=mastery.COACH_QUIZ)
    assert closed.value.code == "QUIZ_CLOSED"
    with pytest.raises(Forbidden) as unknown:
        start(uow, "quiz2", criterion=mastery.COACH_QUIZ)
    assert unknown.value.code == "QUIZ_NOT_ASSIGNED"
    assert uow.committed.empty()


def test_a_coach_quiz_of_the_learners_group_opens() -> None:
    stored = Stored()
    stored.record(quizzes, {"dataset": DS, "quiz_id": "quiz1", "title": "Q",
                            "active": True, "group_ids": '["g1"]'})
    stored.record(memberships, {"dataset": DS, "group_id": "g1", "user_id": ALICE,
                                "role": "learner"})
    uow = FakeUnitOfWork(stored)
    started = start(uow, "quiz1", criterion=mastery.COACH_QUIZ)
    assert started["mastery_criterion"] == {"type": "quiz", "coach_assigned": True}
    [t] = uow.committed.tries.values()
    assert t.level < 0  # a quiz's try takes a negative level


def test_a_coach_quiz_of_the_classroom_opens_to_its_learner_groups_members() -> None:
    stored = Stored()
    stored.record(quizzes, {"dataset": DS, "quiz_id": "quiz1", "title": "Q",
                            "active": True, "group_ids": '["class1"]'})
    stored.record(groups, {"dataset": DS, "group_id": "lg1", "kind": "learnergroup",
                           "name": "LG", "parent_id": "class1"})
    stored.record(memberships, {"dataset": DS, "group_id": "lg1", "user_id": ALICE,
                                "role": "learner"})
    assert start(FakeUnitOfWork(stored), "quiz1", criterion=mastery.COACH_QUIZ)
    # Moved to another classroom (staged earlier in the batch): no longer assigned.
    uow = FakeUnitOfWork(stored)
    uow.records.put(groups, DS, {"dataset": DS, "group_id": "lg1", "kind": "learnergroup",
                                 "name": "LG", "parent_id": "class2"})
    uow.commit_command()
    with pytest.raises(Forbidden) as refused:
        start(uow, "quiz1", criterion=mastery.COACH_QUIZ)
    assert refused.value.code == "QUIZ_NOT_ASSIGNED"


# --- exercises ------------------------------------------------------------------------------

def test_an_exercise_start_opens_a_try_with_its_criterion() -> None:
    uow = FakeUnitOfWork()
    started = start(uow, EXERCISE, kind="exercise", criterion=M_OF_N)
    assert started["mastery_criterion"] == {"type": "m_of_n", "m": 3, "n": 5}
    assert (started["pastattempts"], started["totalattempts"], started["complete"]) == (
        [], 0, False)
    [t] = uow.committed.tries.values()
    assert (t.level, t.criterion) == (1, M_OF_N)


def test_m_of_n_is_mastered_on_the_server() -> None:
    uow = FakeUnitOfWork()
    sid = start(uow, EXERCISE, kind="exercise", criterion=M_OF_N)["session_id"]
    assert put(uow, sid, interactions=(answer("q1", 1),))["complete"] is False
    assert put(uow, sid, interactions=(answer("q2", 0),))["complete"] is False
    assert state(uow, EXERCISE).progress == 0.334  # 1 of the 3 needed, rounded up
    put(uow, sid, interactions=(answer("q3", 1),))
    done = put(uow, sid, interactions=(answer("q4", 1),))
    assert done["complete"] is True
    assert (state(uow, EXERCISE).status, state(uow, EXERCISE).progress) == (COMPLETED, 1.0)
    assert len(uow.committed.item_attempts) == 4
    [t] = uow.committed.tries.values()
    assert t.complete and t.attempt_count == 4


def test_client_progress_on_an_exercise_is_not_used() -> None:
    uow = FakeUnitOfWork()
    sid = start(uow, EXERCISE, kind="exercise", criterion=M_OF_N)["session_id"]
    assert put(uow, sid, progress=1.0, interactions=(answer("q1", 1),))["complete"] is False
    assert state(uow, EXERCISE).progress == 0.334


def test_a_resumed_exercise_shows_its_past_attempts() -> None:
    uow = FakeUnitOfWork()
    sid = start(uow, EXERCISE, kind="exercise", criterion=M_OF_N)["session_id"]
    put(uow, sid, interactions=(answer("q1", 1),))
    put(uow, sid, interactions=(answer("q2", 0),))
    again = start(uow, EXERCISE, kind="exercise", criterion=M_OF_N)
    assert again["totalattempts"] == 2
    assert [a["correct"] for a in again["pastattempts"]] == [0, 1]  # latest first
    assert len(uow.committed.tries) == 1  # the same try continues


def test_a_failed_interaction_batch_stages_no_attempt() -> None:
    uow = FakeUnitOfWork()
    sid = start(uow, EXERCISE, kind="exercise", criterion=M_OF_N)["session_id"]
    with pytest.raises(InvalidInput) as refused:
        put(uow, sid, interactions=(answer("q0", 1), answer("q1", 1, attempt_id="nope")))
    assert refused.value.field == "interactions[1].id"
    assert uow.committed.item_attempts == {}
    assert not uow.staged_anything()


# --- group queueing -------------------------------------------------------------------------

def test_a_completion_queues_the_group_refresh() -> None:
    stored = Stored()
    stored.record(memberships, {"dataset": DS, "group_id": "g1", "user_id": ALICE,
                                "role": "learner"})
    stored.record(group_activities, {"dataset": DS, "group_id": "g1",
                                     "activity_type": "Content", "activity_id": CONTENT})
    stored.summary(Summary(Keys(DS, ALICE, CONTENT).resolve(CTX), IN_PROGRESS, 0.2))
    uow = FakeUnitOfWork(stored)
    sid = start(uow)["session_id"]
    put(uow, sid, progress=0.5)
    assert uow.committed.outbox == []  # not a first consumption, not a completion
    put(uow, sid, progress=1.0)
    assert uow.committed.outbox == [(DS, GROUP_MEMBER, {"userId": ALICE})]
