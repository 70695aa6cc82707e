"""Request bodies of the viewer family, validated at the edge only (pydantic v2, strict).

Unknown fields are refused (`extra="forbid"`), strings and arrays are bounded, numbers
must be finite. ASSESS telemetry events keep their other fields (they are telemetry).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256,
                                      pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, StringConstraints(strict=True, max_length=4096)]
MAX_ITEMS = 1000
Count = Annotated[int, Field(strict=True, ge=0)]
Flag = Annotated[bool, Field(strict=True)]
Percent = Annotated[float, Field(strict=True, ge=0, le=100)]
Seconds = Annotated[float, Field(strict=True, ge=0)]
Details = Annotated[dict[str, Any], Field(max_length=256)]


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
    maxscore: Annotated[float, Field(strict=True, ge=0)]
    type: Text | None = None
    title: Text | None = None
    desc: Text | None = None
    params: list[Any] | None = None


class AssessData(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    item: AssessItem
    score: Annotated[float, Field(strict=True, ge=0)]
    # `pass` is a Python keyword; the field is kept through extra="allow".
    resvalues: list[Any] | None = None
    duration: Seconds | None = None


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
    name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1024)]
    description: Text | None = None
    logo: Annotated[str, StringConstraints(strict=True, max_length=2048)] | None = None
    certificates: Annotated[list[CertificateTemplate], Field(max_length=32)] | None = None
    children: Annotated[list[Node], Field(max_length=MAX_ITEMS)]


Date = Annotated[str, StringConstraints(strict=True, pattern=r"^\d{4}-\d{2}-\d{2}$")]


class ContextBody(Strict):
    collectionId: Id
    name: Text | None = None
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
