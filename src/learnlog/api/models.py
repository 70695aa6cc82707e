"""The pydantic v2 models of the framework's routes, at the edge only: the request bodies
of the viewer, identity, logger, export and group-aggregate routes, and the answers of the
logger and export routes (their OpenAPI schemas). The hot routes' bodies are msgspec
structs (`structs.py`) with the same rules; the Sunbird envelope is `envelope.py`'s.

Request bodies (`Strict`) refuse unknown fields (`extra="forbid"`), bound strings and
arrays and take finite numbers only; the answer models validate nothing (the routes send
JSON they built).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from ..domain.ids import ID_PATTERN, MAX_ID_LENGTH
from .structs import MAX_ITEMS

# The id rule of `domain.ids` (`is_valid_id`), checked by pydantic while it parses.
Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_ID_LENGTH,
                                      pattern=ID_PATTERN)]
# Free text: no NUL (PostgreSQL refuses it), bounded.
Text = Annotated[str, StringConstraints(strict=True, max_length=4096, pattern=r"^[^\x00]*$")]
Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1024,
                                        pattern=r"^[^\x00]+$")]
Flag = Annotated[bool, Field(strict=True)]


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


class EnrolRequest(Wrapper):
    request: EnrolmentRef


class CollectionRequest(Wrapper):
    request: CollectionBody


class ContextRequest(Wrapper):
    request: ContextBody


class DeleteScope(Strict):
    userId: Id
    collectionId: Id
    contextId: Id | None = None


class DeleteRequest(Wrapper):
    request: DeleteScope


# --- the logger family (SPEC §4.3): Kolibri's field names, no wrapper ----------------------

TrackedKind = Literal["video", "audio", "document", "html5", "slideshow", "h5p", "zim",
                      "bloompub", "topic", "exercise", "quiz"]
ItemCount = Annotated[int, Field(strict=True, ge=1, le=1000)]


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
