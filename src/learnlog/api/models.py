"""Request bodies of the viewer family, validated at the edge only (pydantic v2, strict).

Unknown fields are refused (`extra="forbid"`), strings and arrays are bounded, numbers
must be finite. ASSESS telemetry events keep their other fields (they are telemetry).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)

Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256,
                                      pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
# Free text: no NUL (PostgreSQL refuses it), bounded.
Text = Annotated[str, StringConstraints(strict=True, max_length=4096, pattern=r"^[^\x00]*$")]
Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1024,
                                        pattern=r"^[^\x00]+$")]
MAX_ITEMS = 1000
# Epoch milliseconds and counts: exact in JSON numbers and in a BIGINT.
Count = Annotated[int, Field(strict=True, ge=0, le=2**53 - 1)]
Score = Annotated[float, Field(strict=True, ge=0, le=1e9)]
Flag = Annotated[bool, Field(strict=True)]
Percent = Annotated[float, Field(strict=True, ge=0, le=100)]
Seconds = Annotated[float, Field(strict=True, ge=0)]
def _storable(value: Any) -> Any:
    """Free-form JSON must be storable as JSON text (no huge integers, no deep nesting)."""
    try:
        orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as error:
        raise ValueError("cannot be stored as JSON: numbers must fit 64 bits and "
                         "nesting must stay under 255 levels") from error
    return value


Details = Annotated[dict[str, Any], Field(max_length=256), AfterValidator(_storable)]
Free = Annotated[list[Any], AfterValidator(_storable)]


class Strict(BaseModel):
    """Unknown fields refused, numbers finite; scalar fields are strict one by one (a
    model-wide strict mode would refuse plain JSON objects for nested models)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RequestParams(Strict):
    msgid: Annotated[str, StringConstraints(strict=True, max_length=128)] | None = None


class Wrapper(Strict):
    """The outer shape Sunbird clients send: {id?, ver?, ts?, params?, request}."""

    id: Text | None = None
    ver: Text | None = None
    ts: Text | None = None
    params: RequestParams | None = None


class ViewKeys(Strict):
    userId: Id
    contentId: Id
    collectionId: Id | None = None
    contextId: Id | None = None


class ViewUpdate(ViewKeys):
    progressDetails: Details | None = None
    timespent: Seconds = 0.0
    progress: Percent | None = None


class AssessItem(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    id: Id
    maxscore: Score
    type: Text | None = None
    title: Text | None = None
    desc: Text | None = None
    params: Free | None = None

    @model_validator(mode="after")
    def _extras_storable(self) -> AssessItem:
        _storable(self.model_extra)
        return self


class AssessData(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    item: AssessItem
    score: Score
    # `pass` is a Python keyword; the field is kept through extra="allow".
    resvalues: Free | None = None
    duration: Seconds | None = None

    @model_validator(mode="after")
    def _extras_storable(self) -> AssessData:
        _storable(self.model_extra)
        return self


class AssessEvent(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    eid: Literal["ASSESS"]
    ets: Count
    edata: AssessData


class AttemptGroup(Strict):
    """The lms-service shape: one attempt with its events."""

    assessmentTs: Count | None = None
    attemptId: Id | None = None
    events: Annotated[list[AssessEvent], Field(max_length=MAX_ITEMS)]


def _assessment_tag(value: Any) -> str:
    return "attempt" if isinstance(value, dict) and "events" in value else "event"


Assessment = Annotated[
    Annotated[AssessEvent, Tag("event")] | Annotated[AttemptGroup, Tag("attempt")],
    Discriminator(_assessment_tag),
]


class AssessmentSubmit(ViewKeys):
    attemptId: Id | None = None
    assessmentTs: Count | None = None
    assessments: Annotated[list[Assessment], Field(min_length=1, max_length=MAX_ITEMS)]


class ViewRead(Strict):
    userId: Id
    contentId: Annotated[list[Id], Field(min_length=1, max_length=MAX_ITEMS)]
    collectionId: Id | None = None
    contextId: Id | None = None


class EnrolmentRef(Strict):
    userId: Id
    collectionId: Id
    contextId: Id | None = None


class Node(Strict):
    identifier: Id
    type: Literal["unit", "content"] = "content"
    name: Text | None = None
    kind: Annotated[str, StringConstraints(strict=True, max_length=64)] | None = None
    optional: Flag = False
    children: Annotated[list[Node], Field(max_length=MAX_ITEMS)] | None = None


class CertificateTemplate(Strict):
    name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]
    criteria: dict[str, Any] = Field(default_factory=lambda: {"status": 2})


class CollectionBody(Strict):
    name: Name
    description: Text | None = None
    logo: Annotated[str, StringConstraints(strict=True, max_length=2048)] | None = None
    certificates: Annotated[list[CertificateTemplate], Field(max_length=32)] | None = None
    children: Annotated[list[Node], Field(max_length=MAX_ITEMS)]


def _real_date(value: str) -> str:
    date.fromisoformat(value)  # 2023-02-29 and 2024-13-45 are refused
    return value


Date = Annotated[str, StringConstraints(strict=True, pattern=r"^\d{4}-\d{2}-\d{2}$"),
                 AfterValidator(_real_date)]


class ContextBody(Strict):
    collectionId: Id
    name: Name | None = None
    startDate: Date | None = None
    endDate: Date | None = None


class StartEvent(ViewKeys):
    type: Literal["view.start"]


class UpdateEvent(ViewUpdate):
    type: Literal["view.update"]


class EndEvent(ViewKeys):
    type: Literal["view.end"]


class SubmitEvent(AssessmentSubmit):
    type: Literal["assessment.submit"]


Event = Annotated[StartEvent | UpdateEvent | EndEvent | SubmitEvent, Field(discriminator="type")]


class EventsBody(Strict):
    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_ITEMS)]


class StartRequest(Wrapper):
    request: ViewKeys


class UpdateRequest(Wrapper):
    request: ViewUpdate


class EndRequest(Wrapper):
    request: ViewKeys


class SubmitRequest(Wrapper):
    request: AssessmentSubmit


class ReadRequest(Wrapper):
    request: ViewRead


class SummaryReadRequest(Wrapper):
    request: EnrolmentRef


class EnrolRequest(Wrapper):
    request: EnrolmentRef


class CollectionRequest(Wrapper):
    request: CollectionBody


class ContextRequest(Wrapper):
    request: ContextBody


class EventsRequest(Wrapper):
    request: EventsBody


class DeleteScope(Strict):
    userId: Id
    collectionId: Id
    contextId: Id | None = None


class DeleteRequest(Wrapper):
    request: DeleteScope


# --- the logger family (SPEC §4.3): Kolibri's field names, no wrapper ----------------------

Fraction = Annotated[float, Field(strict=True, ge=0, le=1)]
# Kolibri's content kinds. Quizzes (ExamLog) are not accepted by this version of the route.
TrackedKind = Literal["video", "audio", "document", "html5", "slideshow", "h5p", "zim",
                      "bloompub", "topic", "exercise", "quiz"]
ItemCount = Annotated[int, Field(strict=True, ge=1, le=1000)]
# Seconds on one question: bounded so that start = now - time never leaves the epoch.
ItemSeconds = Annotated[float, Field(strict=True, ge=0, le=10_000_000)]


class MasteryModel(Strict):
    """When an exercise is mastered: m_of_n (m, n), do_all (n = the number of items),
    num_correct_in_a_row_2/3/5/10; `quiz` makes it a practice quiz (submitted, no rule)."""

    type: Literal["m_of_n", "do_all", "num_correct_in_a_row_2", "num_correct_in_a_row_3",
                  "num_correct_in_a_row_5", "num_correct_in_a_row_10", "quiz"]
    m: ItemCount | None = None
    n: ItemCount | None = None


class TrackStart(Strict):
    """`POST /api/logger/trackprogress/`: start a session of the caller on a content
    (`content_id` and `kind`) or on a coach quiz (`quiz_id` alone)."""

    content_id: Id | None = None
    kind: TrackedKind | None = None
    quiz_id: Id | None = None
    channel_id: Id | None = None
    collection_id: Id | None = None
    context_id: Id | None = None
    mastery_model: MasteryModel | None = None
    repeat: Flag = False


class InteractionIn(Strict):
    """One interaction with a question (Kolibri's interaction fields)."""

    id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64,
                                         pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")] | None = None
    item: Id
    correct: Fraction
    time_spent: ItemSeconds
    complete: Flag = False
    answer: Details | None = None
    simple_answer: Text | None = None
    error: Flag = False
    hinted: Flag = False
    replace: Flag = False


class TrackUpdate(Strict):
    """`PUT /api/logger/trackprogress/{session_id}/`: every field optional."""

    progress_delta: Fraction | None = None
    progress: Fraction | None = None
    time_spent_delta: Seconds = 0.0
    extra_fields: Details | None = None
    interactions: Annotated[list[InteractionIn], Field(max_length=100)] | None = None


class TrackState(BaseModel):
    session_id: str
    progress: float
    time_spent: float
    extra_fields: dict[str, Any]
    complete: bool
    mastery_criterion: dict[str, Any] | None = None
    pastattempts: list[dict[str, Any]] | None = None
    totalattempts: int | None = None


class TrackResult(BaseModel):
    complete: bool
    attempts: list[dict[str, Any]] | None = None


class LogPage(BaseModel):
    """A page of a logger listing; `next` is the cursor of the following page, or null."""

    results: list[dict[str, Any]]
    next: str | None


class UserProgress(BaseModel):
    id: str
    progress: int


# --- identity (SPEC §3): users, groups, memberships -----------------------------------------

class UserBody(Strict):
    username: Id | None = None
    fullName: Name | None = None
    kind: Literal["learner", "coach", "admin"] = "learner"


class UserRequest(Wrapper):
    request: UserBody


class GroupBody(Strict):
    kind: Literal["classroom", "learnergroup", "group"]
    name: Name
    parentId: Id | None = None


class GroupRequest(Wrapper):
    request: GroupBody


class QuizBody(Strict):
    title: Name
    active: Flag = True
    groupIds: Annotated[list[Id], Field(max_length=1000)] = []


class QuizRequest(Wrapper):
    request: QuizBody


class MemberBody(Strict):
    role: Literal["admin", "coach", "learner"] = "learner"


class MemberRequest(Wrapper):
    request: MemberBody


class HeartbeatIn(Strict):
    """`PUT /api/logger/usersessionlog/heartbeat/`: the app is open (and active)."""

    active: Flag = True
    page: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=2048,
                                           pattern=r"^[^\x00-\x1f\x7f]+$")] | None = None
    channel_id: Id | None = None


class HeartbeatOut(BaseModel):
    session_id: str | None
    started: bool
    device_info: str | None


# --- CSV exports of the logger family (Kolibri's GenerateCSVLogRequest) ---------------------

Moment = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]


class ExportRequest(Strict):
    """`POST /api/logger/exports/`: which logs, and optionally the window of their start
    times (ISO 8601 dates or date-times, UTC unless they say; an `end` date includes its
    whole day)."""

    log_type: Literal["session", "summary"]
    start: Moment | None = None
    end: Moment | None = None


class ExportOut(BaseModel):
    """An export's state; `download` is set once it is done. `end` is exclusive."""

    id: str
    log_type: str
    state: Literal["queued", "running", "done", "failed"]
    start: str | None
    end: str | None
    rows: int | None
    error: str | None
    requested_at: str
    finished_at: str | None
    download: str | None


# --- group aggregates (SPEC §4.2) ----------------------------------------------------------

class ActivityRef(Strict):
    id: Id | None = None
    type: Annotated[str, StringConstraints(strict=True, max_length=32)] | None = None


# a metric name: "avgProgress", or "attempts_count:" and a content id (up to 256 chars)
Metric = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=300)]


class GroupAggBody(Strict):
    groupId: Annotated[str, StringConstraints(strict=True, max_length=1024)] | None = None
    activities: Annotated[list[ActivityRef], Field(max_length=100)] | None = None
    fields: Annotated[list[Metric], Field(max_length=500)] | None = None


class GroupAggRequest(Wrapper):
    request: GroupAggBody


class GroupActivityAggBody(Strict):
    groupId: Annotated[str, StringConstraints(strict=True, max_length=1024)] | None = None
    activityId: Annotated[str, StringConstraints(strict=True, max_length=1024)] | None = None
    activityType: Annotated[str, StringConstraints(strict=True, max_length=32)] | None = None
    fields: Annotated[list[Metric], Field(max_length=500)] | None = None


class GroupActivityAggRequest(Wrapper):
    request: GroupActivityAggBody
