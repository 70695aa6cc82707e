"""The viewer write commands (service/viewer.py) on the in-memory unit of work: the fold
of a view into its summary, enrolment upkeep, certificates, group queueing, refusals and
rollback. The figures are those of tests/integration/test_viewer_rules.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from learnlog.domain.assessment import ItemResponse
from learnlog.domain.certificates import Template
from learnlog.domain.collection import EnrolmentProgress, Node
from learnlog.domain.enrolment import ContextRecord, Enrolment
from learnlog.domain.errors import InvalidInput, NotFound
from learnlog.domain.keys import ContextMode, SummaryKey
from learnlog.domain.progress import COMPLETED, IN_PROGRESS, NOT_STARTED
from learnlog.domain.summary import Summary
from learnlog.service.ports import ServiceContext
from learnlog.service.topics import GROUP_MEMBER, STRUCTURE_CHANGED
from learnlog.service.viewer import (
    AttemptInput,
    EndView,
    Enrol,
    EraseSummaries,
    EventFailed,
    Keys,
    Many,
    PutCollection,
    PutContext,
    StartView,
    SubmitAssessment,
    Unenrol,
    UpdateView,
)
from learnlog.store.schema import group_activities, memberships
from tests.unit.fakes import FakeUnitOfWork, Stored

pytestmark = pytest.mark.unit

DS = "ds"
USER = "learner-1"
CONTENT = "do_video_1"
COURSE = "course-1"
VIDEO, QUIZ, EXTRA = "do_cert_video", "do_cert_quiz", "do_cert_extra"
MAX_DELTA = 6 * 3600
ETS = 1_700_000_000_000
T0 = 1_800_000_000_000


def sign(claims: Mapping[str, Any]) -> str:
    return "signed:" + json.dumps(claims, sort_keys=True)


def context(mode: ContextMode = ContextMode.STRICT, *, implicit: bool = True
            ) -> ServiceContext:
    return ServiceContext(mode=mode, instance_id="inst-1", implicit_enrolment=implicit,
                          max_time_spent_delta=MAX_DELTA, sign=sign)


CTX = context()


def keys(content: str = CONTENT, collection: str | None = None) -> Keys:
    return Keys(DS, USER, content, collection)


def key(content: str = CONTENT, collection: str | None = None) -> SummaryKey:
    return keys(content, collection).resolve(CTX)


def summary(uow: FakeUnitOfWork, content: str = CONTENT, collection: str | None = None
            ) -> Summary:
    found = uow.summaries.get(key(content, collection))
    assert found is not None
    return found


def leaf(identifier: str, *, optional: bool = False) -> Node:
    return Node(identifier, "content", kind="video", optional=optional)


def collection(*leaves: str, templates: tuple[Template, ...] = ()) -> PutCollection:
    return PutCollection(DS, COURSE, "Course", None, None,
                         (Node("u1", "unit", children=tuple(leaf(c) for c in leaves)),),
                         templates)


def watch(uow: FakeUnitOfWork, content: str, coll: str | None = None) -> None:
    uow.run(StartView(keys(content, coll)), CTX)
    uow.run(EndView(keys(content, coll)), CTX)


def responses(*scores: float, ets: int = ETS) -> tuple[ItemResponse, ...]:
    return tuple(ItemResponse(f"q{i}", ets + 1000 * i, s, 1.0, {"id": f"q{i}"}, {})
                 for i, s in enumerate(scores, 1))


def enrolment(uow: FakeUnitOfWork, coll: str = COURSE) -> Enrolment:
    found = uow.enrolments.get(DS, USER, coll, coll)
    assert found is not None
    return found


# --- the fold -------------------------------------------------------------------------------

def test_start_update_end_fold_into_the_summary() -> None:
    uow = FakeUnitOfWork(now=T0)
    uow.run(StartView(keys()), CTX)
    started = summary(uow)
    assert (started.status, started.progress, started.view_count) == (IN_PROGRESS, 0.0, 1)
    assert started.first_access == T0

    uow.now = T0 + 1000
    uow.run(UpdateView(keys(), timespent=20, progress=40), CTX)
    mid = summary(uow)
    assert (mid.status, mid.progress, mid.time_spent) == (IN_PROGRESS, 0.4, 20)
    assert mid.completed_at is None

    uow.now = T0 + 2000
    assert uow.run(EndView(keys()), CTX) == {CONTENT: "Progress ended"}
    done = summary(uow)
    assert (done.status, done.progress, done.time_spent) == (COMPLETED, 1.0, 20)
    assert done.completed_at == T0 + 2000
    assert done.view_count == 1
    # What a flush would write: the summary with its session closed, and one session.
    [(written, open_id)] = uow.committed.summaries.values()
    assert written == done and open_id is None
    [session] = uow.committed.sessions.values()
    assert session.closed


def test_progress_never_goes_down() -> None:
    uow = FakeUnitOfWork()
    uow.run(StartView(keys()), CTX)
    uow.run(UpdateView(keys(), timespent=5, progress=60), CTX)
    uow.run(UpdateView(keys(), timespent=5, progress=30), CTX)
    row = summary(uow)
    assert (row.progress, row.status, row.completed_at) == (0.6, IN_PROGRESS, None)
    assert row.time_spent == pytest.approx(10)


def test_completion_is_kept_and_stamped_once() -> None:
    uow = FakeUnitOfWork(now=T0)
    uow.run(StartView(keys()), CTX)
    uow.run(UpdateView(keys(), timespent=30, progress=100), CTX)
    assert summary(uow).completed_at == T0
    uow.now = T0 + 5000
    uow.run(StartView(keys()), CTX)  # a revisit
    uow.run(UpdateView(keys(), timespent=5, progress=10), CTX)
    uow.run(EndView(keys()), CTX)
    row = summary(uow)
    assert (row.status, row.progress, row.completed_at) == (COMPLETED, 1.0, T0)
    assert row.view_count == 2
    assert row.last_access == T0 + 5000
    assert row.time_spent == pytest.approx(35)


def test_time_is_summed_over_sessions() -> None:
    uow = FakeUnitOfWork()
    uow.run(StartView(keys()), CTX)
    uow.run(UpdateView(keys(), timespent=30), CTX)
    uow.run(EndView(keys()), CTX)
    uow.run(StartView(keys()), CTX)
    uow.run(UpdateView(keys(), timespent=40.5), CTX)
    row = summary(uow)
    assert row.time_spent == pytest.approx(70.5)
    assert row.view_count == 2
    assert len(uow.committed.sessions) == 2


def test_progress_details_give_progress() -> None:
    uow = FakeUnitOfWork()
    uow.run(StartView(keys()), CTX)
    uow.run(UpdateView(keys(), timespent=1,
                       progress_details={"visitedLength": 50, "totalLength": 200}), CTX)
    assert (summary(uow).progress, summary(uow).status) == (0.25, IN_PROGRESS)


def test_a_stored_summary_is_continued() -> None:
    """What was stored is read through the repository: the fold continues from it."""
    stored = Stored()
    stored.summary(Summary(key(), IN_PROGRESS, 0.5, 100.0, ETS, ETS, 1))
    uow = FakeUnitOfWork(stored)
    uow.run(StartView(keys()), CTX)
    uow.run(UpdateView(keys(), timespent=10, progress=20), CTX)
    row = summary(uow)
    assert (row.progress, row.view_count) == (0.5, 2)
    assert row.time_spent == pytest.approx(110)


def test_assessment_keeps_the_best_attempt_and_completes() -> None:
    uow = FakeUnitOfWork()
    uow.run(StartView(keys("do_quiz_1")), CTX)
    uow.run(SubmitAssessment(keys("do_quiz_1"), (
        AttemptInput("attempt-2", ETS, responses(1, 1, 0)),)), CTX)
    uow.run(SubmitAssessment(keys("do_quiz_1"), (
        AttemptInput("attempt-1", ETS + 60_000, responses(1, 0.33, 0, ets=ETS + 60_000)),)),
        CTX)
    row = summary(uow, "do_quiz_1")
    assert row.best_score == pytest.approx(2.0)
    assert row.best_max_score == pytest.approx(3.0)
    assert row.attempts_count == 2
    assert row.status == COMPLETED
    assert len(uow.committed.attempts) == 2


# --- refusals leave nothing -----------------------------------------------------------------

def test_update_before_start_is_refused_and_stages_nothing() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(InvalidInput) as refused:
        uow.run(UpdateView(keys(), timespent=10, progress=50), CTX)
    assert refused.value.code == "VIEW_NOT_STARTED"
    assert refused.value.field == "request.contentId"
    assert uow.committed.empty()
    assert uow.summaries.get(key()) is None


def test_end_before_start_is_refused() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(InvalidInput) as refused:
        uow.run(EndView(keys()), CTX)
    assert refused.value.code == "VIEW_NOT_STARTED"


def test_timespent_above_the_limit_is_refused_and_adds_nothing() -> None:
    uow = FakeUnitOfWork()
    uow.run(StartView(keys()), CTX)
    uow.run(UpdateView(keys(), timespent=MAX_DELTA), CTX)  # exactly the limit is allowed
    before = uow.committed
    with pytest.raises(InvalidInput) as refused:
        uow.run(UpdateView(keys(), timespent=MAX_DELTA + 1, progress=90), CTX)
    assert refused.value.code == "TIMESPENT_TOO_LARGE"
    assert refused.value.field == "request.timespent"
    assert uow.committed == before
    assert (summary(uow).time_spent, summary(uow).progress) == (MAX_DELTA, 0.0)


def test_a_failing_part_of_many_rolls_the_whole_back() -> None:
    uow = FakeUnitOfWork()
    uow.begin_command()
    with pytest.raises(EventFailed) as failed:
        Many((StartView(keys()), UpdateView(keys(), progress=50),
              UpdateView(keys("never-started"), progress=10))).apply(uow, CTX)
    assert (failed.value.index, failed.value.code) == (2, "VIEW_NOT_STARTED")
    assert uow.staged_anything()  # the first two parts staged, until the writer rolls back
    uow.rollback_command()
    assert not uow.staged_anything()
    assert uow.committed.empty()
    assert uow.summaries.get(key()) is None


def test_a_failed_command_leaves_the_batch_earlier_work() -> None:
    uow = FakeUnitOfWork()
    uow.run(StartView(keys()), CTX)
    uow.run(UpdateView(keys(), timespent=5, progress=40), CTX)
    with pytest.raises(EventFailed):
        uow.run(Many((UpdateView(keys(), timespent=5, progress=90),
                      EndView(keys("other")))), CTX)
    row = summary(uow)
    assert (row.progress, row.time_spent) == (0.4, 5)


def test_many_applies_every_part() -> None:
    uow = FakeUnitOfWork()
    assert uow.run(Many((StartView(keys()), UpdateView(keys(), progress=70))), CTX) == {
        "applied": 2}
    assert summary(uow).progress == 0.7


def test_unenrol_without_an_enrolment_is_not_found() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(NotFound) as refused:
        uow.run(Unenrol(DS, USER, COURSE, None), CTX)
    assert (refused.value.code, refused.value.field) == ("ENROLMENT_NOT_FOUND",
                                                         "request.collectionId")
    assert uow.committed.empty()


# --- enrolments -----------------------------------------------------------------------------

def test_completing_the_contents_completes_the_enrolment() -> None:
    uow = FakeUnitOfWork(now=T0)
    uow.run(collection(VIDEO, QUIZ), CTX)
    uow.run(Enrol(DS, USER, COURSE, None), CTX)
    e = enrolment(uow)
    assert e.active and e.enrolled_at == T0
    assert e.figures == EnrolmentProgress(0, 0, NOT_STARTED, None)

    uow.now = T0 + 1000
    watch(uow, VIDEO, COURSE)
    assert enrolment(uow).figures == EnrolmentProgress(1, 50, IN_PROGRESS, None)

    uow.now = T0 + 2000
    watch(uow, QUIZ, COURSE)
    assert enrolment(uow).figures == EnrolmentProgress(2, 100, COMPLETED, T0 + 2000)
    assert uow.committed.enrolments[(DS, USER, COURSE, COURSE)] == enrolment(uow)


def test_content_outside_the_collection_moves_no_enrolment() -> None:
    uow = FakeUnitOfWork()
    uow.run(collection(VIDEO, QUIZ), CTX)
    uow.run(Enrol(DS, USER, COURSE, None), CTX)
    watch(uow, EXTRA)  # organic: no collection
    assert enrolment(uow).figures == EnrolmentProgress(0, 0, NOT_STARTED, None)


def test_a_first_view_in_a_collection_enrols_implicitly() -> None:
    uow = FakeUnitOfWork()
    uow.run(collection(VIDEO, QUIZ), CTX)
    uow.run(StartView(keys(VIDEO, COURSE)), CTX)
    assert enrolment(uow).figures.status == IN_PROGRESS

    none = FakeUnitOfWork()
    none.run(collection(VIDEO, QUIZ), CTX)
    none.run(StartView(keys(VIDEO, COURSE)), context(implicit=False))
    assert none.enrolments.get(DS, USER, COURSE, COURSE) is None


def test_unenrol_deactivates_and_enrol_again_reactivates() -> None:
    stored = Stored()
    stored.enrolment(Enrolment(DS, USER, COURSE, COURSE, enrolled_at=ETS))
    uow = FakeUnitOfWork(stored)
    uow.run(Unenrol(DS, USER, COURSE, None), CTX)
    assert enrolment(uow).active is False
    uow.run(Enrol(DS, USER, COURSE, None), CTX)
    assert enrolment(uow).active is True
    assert enrolment(uow).enrolled_at == ETS  # the first enrolment's time stays


def test_enrolment_progress_never_goes_back_when_the_structure_grows() -> None:
    uow = FakeUnitOfWork(now=T0)
    uow.run(collection(VIDEO), CTX)
    uow.run(Enrol(DS, USER, COURSE, None), CTX)
    watch(uow, VIDEO, COURSE)
    assert enrolment(uow).figures.status == COMPLETED
    result = uow.run(collection(VIDEO, EXTRA), CTX)
    assert result["version"] == 2
    uow.run(Enrol(DS, USER, COURSE, None), CTX)  # active already: nothing recomputed
    watch(uow, EXTRA, COURSE)
    assert enrolment(uow).figures.status == COMPLETED
    assert enrolment(uow).figures.progress == 100


# --- certificates ---------------------------------------------------------------------------

TEMPLATES = (Template("Completion"), Template("Merit", COMPLETED, ">=", 60))


def test_completion_issues_the_certificates_it_meets_once() -> None:
    uow = FakeUnitOfWork(now=T0)
    uow.run(collection(VIDEO, QUIZ, templates=TEMPLATES), CTX)
    uow.run(Enrol(DS, USER, COURSE, None), CTX)
    uow.run(SubmitAssessment(keys(QUIZ, COURSE), (
        AttemptInput("low", ETS, responses(1, 0, 0)),)), CTX)  # 33 %
    assert enrolment(uow).certificates == ()  # not completed yet

    uow.now = T0 + 1000
    watch(uow, VIDEO, COURSE)
    [cert] = enrolment(uow).certificates
    assert (cert.name, cert.issued_on) == ("Completion", T0 + 1000)
    claims = json.loads(cert.token.removeprefix("signed:"))
    assert claims == {"typ": "certificate", "id": cert.id, "name": "Completion",
                      "dataset": DS, "userId": USER, "collectionId": COURSE,
                      "contextId": COURSE, "issuedOn": T0 + 1000}

    uow.now = T0 + 2000
    uow.run(SubmitAssessment(keys(QUIZ, COURSE), (
        AttemptInput("high", ETS + 60_000, responses(1, 1, 0, ets=ETS + 60_000)),)), CTX)
    names = [c.name for c in enrolment(uow).certificates]
    assert names == ["Completion", "Merit"]  # Merit now; Completion not issued again
    assert enrolment(uow).certificates[0] == cert


def test_no_template_no_certificate() -> None:
    uow = FakeUnitOfWork()
    uow.run(collection(VIDEO), CTX)
    uow.run(Enrol(DS, USER, COURSE, None), CTX)
    watch(uow, VIDEO, COURSE)
    assert enrolment(uow).figures.status == COMPLETED
    assert enrolment(uow).certificates == ()


# --- structures, contexts, erasure ----------------------------------------------------------

def test_put_collection_versions_the_structure_and_queues_its_refresh() -> None:
    uow = FakeUnitOfWork()
    first = uow.run(collection(VIDEO, QUIZ), CTX)
    assert first == {"collectionId": COURSE, "version": 1, "leafNodesCount": 2,
                     "requiredCount": 2}
    assert uow.run(collection(VIDEO), CTX)["version"] == 2
    assert uow.committed.outbox == [(DS, STRUCTURE_CHANGED, {"collectionId": COURSE})] * 2
    record = uow.committed.collections[(DS, COURSE)]
    assert record.structure.leaves == (VIDEO,)


def test_put_context_stages_the_record() -> None:
    record = ContextRecord(DS, "ctx-1", COURSE, "Spring", "2026-01-01", None)
    uow = FakeUnitOfWork()
    assert uow.run(PutContext(record), CTX) == {"contextId": "ctx-1"}
    assert uow.committed.contexts == {(DS, "ctx-1"): record}


@pytest.mark.parametrize(("mode", "scope"), [
    (ContextMode.STRICT, (COURSE, "ctx-1")),
    (ContextMode.COLLECTION, (COURSE, COURSE)),
    (ContextMode.CONTENT, None),
])
def test_erasure_of_an_enrolment_is_scoped_by_mode(mode: ContextMode,
                                                  scope: tuple[str, str] | None) -> None:
    uow = FakeUnitOfWork()
    uow.run(EraseSummaries(DS, USER, COURSE, "ctx-1"), context(mode))
    assert uow.committed.erasures == [(DS, USER, scope, (COURSE, "ctx-1"))]


def test_erasure_of_everything() -> None:
    uow = FakeUnitOfWork()
    uow.run(EraseSummaries(DS, USER, None, None), CTX)
    assert uow.committed.erasures == [(DS, USER, None, None)]


# --- group queueing -------------------------------------------------------------------------

def in_a_group_with_activities(user: str = USER) -> Stored:
    stored = Stored()
    stored.record(memberships, {"dataset": DS, "group_id": "g1", "user_id": user,
                                "role": "learner"})
    stored.record(group_activities, {"dataset": DS, "group_id": "g1",
                                     "activity_type": "Collection", "activity_id": COURSE})
    return stored


REFRESH = (DS, GROUP_MEMBER, {"userId": USER})


def test_a_completion_queues_the_learner_group_refresh_once() -> None:
    uow = FakeUnitOfWork(in_a_group_with_activities())
    uow.run(collection(VIDEO, QUIZ), CTX)
    watch(uow, VIDEO, COURSE)  # first view (implicit enrolment), then completion
    watch(uow, QUIZ, COURSE)
    assert uow.committed.outbox.count(REFRESH) == 1  # `once` within the batch
    assert REFRESH in uow.committed.outbox


def test_progress_below_completion_queues_nothing_after_the_first_view() -> None:
    uow = FakeUnitOfWork(in_a_group_with_activities())
    uow.run(StartView(keys()), CTX)
    assert uow.committed.outbox == [REFRESH]  # a first consumption
    fresh = FakeUnitOfWork(in_a_group_with_activities())
    fresh.stored.summary(Summary(key(), IN_PROGRESS, 0.1, 1.0, ETS, ETS, 1))
    fresh.run(StartView(keys()), CTX)
    fresh.run(UpdateView(keys(), progress=50), CTX)
    assert fresh.committed.outbox == []


def test_a_learner_outside_groups_queues_nothing() -> None:
    stored = in_a_group_with_activities("someone-else")
    uow = FakeUnitOfWork(stored)
    uow.run(collection(VIDEO), CTX)
    watch(uow, VIDEO, COURSE)
    uow.run(Unenrol(DS, USER, COURSE, None), CTX)
    assert [w for w in uow.committed.outbox if w[1] == GROUP_MEMBER] == []


def test_a_coach_membership_queues_nothing() -> None:
    stored = in_a_group_with_activities()
    stored.records[("memberships", (DS, "g1", USER))]["role"] = "coach"
    uow = FakeUnitOfWork(stored)
    watch(uow, CONTENT)
    assert uow.committed.outbox == []


def test_unenrol_and_erasure_queue_the_refresh() -> None:
    stored = in_a_group_with_activities()
    stored.enrolment(Enrolment(DS, USER, COURSE, COURSE, enrolled_at=ETS))
    uow = FakeUnitOfWork(stored)
    uow.run(Unenrol(DS, USER, COURSE, None), CTX)
    assert uow.committed.outbox == [REFRESH]
    again = FakeUnitOfWork(in_a_group_with_activities())
    again.run(EraseSummaries(DS, USER, None, None), CTX)
    assert again.committed.outbox == [REFRESH]


def test_a_rolled_back_command_queues_nothing() -> None:
    uow = FakeUnitOfWork(in_a_group_with_activities())
    with pytest.raises(EventFailed):
        uow.run(Many((StartView(keys()), EndView(keys("other")))), CTX)
    assert uow.emitted == []
    assert uow.committed.empty()
