"""Request bodies of the hot routes as msgspec structs, decoded straight from the bytes.

The same contract as `models.py` (unknown fields refused, strings and arrays bounded,
strict JSON types, numbers finite), checked by msgspec while it parses. Their JSON
Schema goes into the one OpenAPI document (`lean.openapi_paths`). Two rules msgspec does
not check while parsing are applied right after (`storable`, the shape of each
assessment): they keep the field names of the pydantic models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import Meta

from ..domain.errors import InvalidInput
from ..domain.ids import ID_PATTERN, MAX_ID_LENGTH

_PRINTABLE = ID_PATTERN  # the id rule of `domain.ids`, checked by msgspec while it parses
Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH, pattern=_PRINTABLE)]
Text = Annotated[str, Meta(max_length=4096, pattern=r"^[^\x00]*$")]
MAX_ITEMS = 1000
Count = Annotated[int, Meta(ge=0, le=2**53 - 1)]
Score = Annotated[float, Meta(ge=0, le=1e9)]
Percent = Annotated[float, Meta(ge=0, le=100)]
Seconds = Annotated[float, Meta(ge=0)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
ItemSeconds = Annotated[float, Meta(ge=0, le=10_000_000)]
Details = Annotated[dict[str, Any], Meta(max_length=256)]


def storable(value: Any, field: str) -> None:
    """Free-form JSON must be storable as JSON text (numbers within 64 bits, nesting
    under 255 levels); else a 400 naming `field`."""
    try:
        orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as error:
        raise InvalidInput(f"Invalid value of {field}: cannot be stored as JSON: numbers "
                           "must fit 64 bits and nesting must stay under 255 levels.",
                           code="INVALID_PARAMETER_VALUE", field=field) from error


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Unknown fields refused; keyword-only so subclasses may add required fields."""


class RequestParams(Strict, kw_only=True):
    msgid: Annotated[str, Meta(max_length=128)] | None = None


class Wrapper(Strict, kw_only=True):
    """The outer shape Sunbird clients send: {id?, ver?, ts?, params?, request}."""

    id: Text | None = None
    ver: Text | None = None
    ts: Text | None = None
    params: RequestParams | None = None

    @property
    def msgid(self) -> str | None:
        return None if self.params is None else self.params.msgid


class ViewKeys(Strict, kw_only=True):
    userId: Id
    contentId: Id
    collectionId: Id | None = None
    contextId: Id | None = None


class ViewUpdate(ViewKeys, kw_only=True):
    progressDetails: Details | None = None
    timespent: Seconds = 0.0
    progress: Percent | None = None


class AssessItem(msgspec.Struct, kw_only=True):
    """The item of an ASSESS event; its other fields are kept (telemetry)."""

    id: Id
    maxscore: Score
    type: Text | None = None
    title: Text | None = None
    desc: Text | None = None
    params: list[Any] | None = None


class AssessData(msgspec.Struct, kw_only=True):
    item: AssessItem
    score: Score
    resvalues: list[Any] | None = None
    duration: Seconds | None = None


class AssessEvent(msgspec.Struct, kw_only=True):
    """An ASSESS telemetry event; fields beyond these are kept, not refused."""

    eid: Literal["ASSESS"]
    ets: Count
    edata: AssessData


class AttemptGroup(Strict, kw_only=True):
    """The lms-service shape: one attempt with its events."""

    assessmentTs: Count | None = None
    attemptId: Id | None = None
    events: Annotated[list[dict[str, Any]], Meta(max_length=MAX_ITEMS)]


class AssessmentSubmit(ViewKeys, kw_only=True):
    attemptId: Id | None = None
    assessmentTs: Count | None = None
    # ASSESS events or attempt groups (those with `events`): told apart by `assessment`.
    assessments: Annotated[list[dict[str, Any]], Meta(min_length=1, max_length=MAX_ITEMS)]


class ViewRead(Strict, kw_only=True):
    userId: Id
    contentId: Annotated[list[Id], Meta(min_length=1, max_length=MAX_ITEMS)]
    collectionId: Id | None = None
    contextId: Id | None = None


class EnrolmentRef(Strict, kw_only=True):
    userId: Id
    collectionId: Id
    contextId: Id | None = None


class StartEvent(ViewKeys, kw_only=True, tag_field="type", tag="view.start"):
    pass


class UpdateEvent(ViewUpdate, kw_only=True, tag_field="type", tag="view.update"):
    pass


class EndEvent(ViewKeys, kw_only=True, tag_field="type", tag="view.end"):
    pass


class SubmitEvent(AssessmentSubmit, kw_only=True, tag_field="type", tag="assessment.submit"):
    pass


Event = StartEvent | UpdateEvent | EndEvent | SubmitEvent


class EventsBody(Strict, kw_only=True):
    events: Annotated[list[Event], Meta(min_length=1, max_length=MAX_ITEMS)]


class StartRequest(Wrapper, kw_only=True):
    request: ViewKeys


class UpdateRequest(Wrapper, kw_only=True):
    request: ViewUpdate


class EndRequest(Wrapper, kw_only=True):
    request: ViewKeys


class SubmitRequest(Wrapper, kw_only=True):
    request: AssessmentSubmit


class ReadRequest(Wrapper, kw_only=True):
    request: ViewRead


class SummaryReadRequest(Wrapper, kw_only=True):
    request: EnrolmentRef


class EventsRequest(Wrapper, kw_only=True):
    request: EventsBody


class InteractionIn(Strict, kw_only=True):
    """One interaction with a question (Kolibri's interaction fields)."""

    id: Annotated[str, Meta(min_length=1, max_length=64, pattern=_PRINTABLE)] | None = None
    item: Id
    correct: Fraction
    time_spent: ItemSeconds
    complete: bool = False
    answer: Details | None = None
    simple_answer: Text | None = None
    error: bool = False
    hinted: bool = False
    replace: bool = False


class TrackUpdate(Strict, kw_only=True):
    """`PUT /api/logger/trackprogress/{session_id}/`: every field optional."""

    progress_delta: Fraction | None = None
    progress: Fraction | None = None
    time_spent_delta: Seconds = 0.0
    extra_fields: Details | None = None
    interactions: Annotated[list[InteractionIn], Meta(max_length=100)] | None = None


Checked = tuple[dict[str, Any], AssessEvent]  # an ASSESS event: as sent, and checked


def assessments(items: list[dict[str, Any]], field: str
                ) -> tuple[list[Checked], list[tuple[AttemptGroup, list[Checked]]]]:
    """The items of `assessments`, checked: loose ASSESS events, and attempt groups (the
    items with `events`) with theirs. Each event is kept as sent too: its free fields are
    telemetry and are stored (checked storable)."""
    loose: list[Checked] = []
    groups: list[tuple[AttemptGroup, list[Checked]]] = []
    for i, raw in enumerate(items):
        where = f"{field}[{i}]"
        if "events" in raw:
            group = _convert(raw, AttemptGroup, where)
            groups.append((group, [assessment_event(e, f"{where}.events[{j}]")
                                   for j, e in enumerate(group.events)]))
        else:
            loose.append(assessment_event(raw, where))
    return loose, groups


def assessment_event(raw: dict[str, Any], field: str) -> Checked:
    """One ASSESS event, checked (fields beyond the known ones kept, if storable)."""
    event = _convert(raw, AssessEvent, field)
    storable(raw, field)
    return raw, event


def _convert(raw: Any, kind: type[Any], field: str) -> Any:
    try:
        return msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as error:
        raise _relocated(error, field) from error


class Relocated(msgspec.ValidationError):
    """A validation error of a part of the body, its path made absolute."""


def _relocated(error: msgspec.ValidationError, field: str) -> Relocated:
    """msgspec says `$.edata.score` for a part converted on its own: prefix the part."""
    text = str(error)
    head, sep, where = text.rpartition(" - at `$")
    if sep:
        return Relocated(f"{head} - at `$.{field}{where}")
    return Relocated(f"{text} - at `$.{field}`")
