"""Bad input never yields 422 or 500 (SPEC §4, §4.1): it is a 400 that names the field.

Every rejection is the Sunbird envelope with HTTP 400, `responseCode: CLIENT_ERROR`,
`params.status: failed`, an UPPER_SNAKE `params.err`, a message in `params.errmsg` and the
offending field in `result.field` ("request.userId", "request.events[3].timespent", ...).

Error codes: a missing userId is USERID_MISSING, a missing contentId CONTENT_ID_REQUIRED_ERROR,
missing events/assessments EVENTS_DATA_MISSING, anything else missing
MANDATORY_PARAMETER_MISSING; an unknown field is UNKNOWN_FIELD, a wrong JSON type
DATA_TYPE_ERROR, a value out of range INVALID_PARAMETER_VALUE, a body that is not JSON
INVALID_JSON and a body over 1 MiB REQUEST_TOO_LARGE (field "request").

A rejected request changes nothing: every rejected write is followed by a read of what it
would have written. Learners act only for themselves (403 FORBIDDEN), callers without a valid
token get 401.

The table of rejected requests runs on one app per engine (module scope; every row uses ids of
its own); the tests that need a fresh database use the function-scoped `api` fixture.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.settings import Settings
from learnlog.store.schema import contexts, exports
from tests.support import Api, assess, keys, leaf, unit

MiB = 1024 * 1024
MISSING = "MANDATORY_PARAMETER_MISSING"
TYPE = "DATA_TYPE_ERROR"
VALUE = "INVALID_PARAMETER_VALUE"
UNKNOWN = "UNKNOWN_FIELD"
ENVELOPE_KEYS = {"id", "ver", "ts", "params", "responseCode", "result"}


# -- bodies --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Raw:
    """A JSON number Python's json module will not write (1e999, NaN): sent as is."""

    text: str


@dataclass(frozen=True)
class Chunked:
    """A body sent with chunked transfer encoding (no Content-Length)."""

    data: bytes


def encode(body: Any) -> bytes:
    """The bytes of a body: JSON, with Raw numbers spliced in; bytes go as they are."""
    if isinstance(body, bytes):
        return body
    literals: dict[str, str] = {}

    def default(value: Any) -> Any:
        if isinstance(value, Raw):
            marker = f"@@literal{len(literals)}@@"
            literals[f'"{marker}"'] = value.text
            return marker
        raise TypeError(repr(value))

    text = json.dumps(body, default=default)
    for marker, literal in literals.items():
        text = text.replace(marker, literal)
    return text.encode()


def send(client: Any, method: str, path: str, body: Any = None, token: str | None = None
         ) -> Any:
    """One request with a raw body; returns the httpx response."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if isinstance(body, Chunked):
        data = body.data
        chunks = (data[i:i + 65536] for i in range(0, len(data), 65536))
        return client.request(method, path, content=chunks, headers=headers)
    content = None if body is None else encode(body)
    return client.request(method, path, content=content, headers=headers)


ANY_FIELD = object()


def assert_rejected(response: Any, status: int, response_code: str, err: str,
                    field: object) -> dict[str, Any]:
    """The response is the error envelope with this status, code and field (or any field)."""
    assert response.status_code == status, (response.status_code, response.text[:600])
    body: dict[str, Any] = response.json()
    assert set(body) == ENVELOPE_KEYS, body
    params = body["params"]
    where = body["result"].get("field")
    assert (body["responseCode"], params["status"], params["err"], where) == (
        response_code, "failed", err, where if field is ANY_FIELD else field), json.dumps(body)
    assert isinstance(params["errmsg"], str) and params["errmsg"], body
    assert body["ver"] == "v1" and str(body["id"]).startswith("api."), body
    return body


# -- the table -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """What a rejected write would have written, to read back afterwards."""

    kind: str  # "view" | "enrolment" | "collection" | "context" | "erasure"
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Bad:
    method: str
    path: str
    body: Any
    err: str
    field: str
    probe: Probe | None


_serial = itertools.count(1)

# A mutation turns the route's valid request into the body to send.
Mutation = Callable[[dict[str, Any]], Any]


def wrap(request: Any) -> dict[str, Any]:
    return {"request": request}


def at(path: tuple[Any, ...], value: Any) -> Mutation:
    """Set request[path] = value."""
    def mutate(request: dict[str, Any]) -> Any:
        request = copy.deepcopy(request)
        target: Any = request
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        return wrap(request)
    return mutate


def drop(path: tuple[Any, ...]) -> Mutation:
    """Remove request[path]."""
    def mutate(request: dict[str, Any]) -> Any:
        request = copy.deepcopy(request)
        target: Any = request
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
        return wrap(request)
    return mutate


def whole(make: Callable[[dict[str, Any]], Any]) -> Mutation:
    """The whole body from the valid request (envelope-level changes, raw bytes)."""
    return make


def too_large_json(request: dict[str, Any]) -> bytes:
    return encode(wrap({**request, "padding": "x" * MiB}))


def chunked_too_large(request: dict[str, Any]) -> Chunked:
    return Chunked(too_large_json(request))


Row = tuple[str, Mutation, str, str]

ENVELOPE: list[Row] = [
    ("no request", whole(lambda r: {}), MISSING, "request"),
    ("request is a list", whole(lambda r: {"request": [r]}), TYPE, "request"),
    ("request is a number", whole(lambda r: {"request": 5}), TYPE, "request"),
    ("unknown top-level field", whole(lambda r: {**wrap(r), "bogus": 1}), UNKNOWN, "bogus"),
    ("unknown field in request", whole(lambda r: wrap({**r, "bogus": 1})), UNKNOWN,
     "request.bogus"),
    ("params.msgid is a number", whole(lambda r: {"params": {"msgid": 7}, **wrap(r)}), TYPE,
     "params.msgid"),
    ("unknown field in params", whole(lambda r: {"params": {"bogus": 1}, **wrap(r)}), UNKNOWN,
     "params.bogus"),
    ("body is not JSON", whole(lambda r: b'{"request": {"userId": '), "INVALID_JSON",
     "request"),
    ("body is not UTF-8", whole(lambda r: b'{"request": {"userId": "\xff\xfe"}}'),
     "INVALID_JSON", "request"),
    ("body nests 100000 deep", whole(lambda r: b'{"request": ' + b"[" * 100_000 + b"]" * 100_000
                                     + b"}"), "INVALID_JSON", "request"),
    ("body is a JSON array", whole(lambda r: encode([wrap(r)])), TYPE, "request"),
    ("body is JSON null", whole(lambda r: b"null"), TYPE, "request"),
    ("body is empty", whole(lambda r: b""), MISSING, "request"),
    ("body is over 1 MiB", whole(too_large_json), "REQUEST_TOO_LARGE", "request"),
    ("chunked body is over 1 MiB", whole(chunked_too_large), "REQUEST_TOO_LARGE", "request"),
]


def id_rows(name: str, *, missing: tuple[str, str] | None = None, prefix: tuple[Any, ...] = ()
            ) -> list[Row]:
    """A required id field: missing, of the wrong type, out of range, with control chars."""
    path = (*prefix, name)
    where = "request" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    rows: list[Row] = [
        (f"{name} is a number", at(path, 42), TYPE, where),
        (f"{name} is a list", at(path, ["x"]), TYPE, where),
        (f"{name} is an object", at(path, {"id": "x"}), TYPE, where),
        (f"{name} is a bool", at(path, True), TYPE, where),
        (f"{name} is empty", at(path, ""), VALUE, where),
        (f"{name} is 257 characters", at(path, "i" * 257), VALUE, where),
        (f"{name} has a NUL", at(path, "a\x00b"), VALUE, where),
        (f"{name} has a newline", at(path, "a\nb"), VALUE, where),
        (f"{name} has DEL", at(path, "a\x7fb"), VALUE, where),
        (f"{name} has a C1 control (U+0085)", at(path, "a\x85b"), VALUE, where),
    ]
    if missing is not None:
        rows.insert(0, (f"{name} is missing", drop(path), missing[0], missing[1]))
    return rows


def optional_id_rows(name: str) -> list[Row]:
    return [
        (f"{name} is a bool", at((name,), False), TYPE, f"request.{name}"),
        (f"{name} is an object", at((name,), {}), TYPE, f"request.{name}"),
        (f"{name} is empty", at((name,), ""), VALUE, f"request.{name}"),
        (f"{name} is 257 characters", at((name,), "o" * 257), VALUE, f"request.{name}"),
    ]


USER = id_rows("userId", missing=("USERID_MISSING", "request.userId"))
CONTENT = id_rows("contentId", missing=("CONTENT_ID_REQUIRED_ERROR", "request.contentId"))
KEYS = USER + CONTENT + optional_id_rows("collectionId") + optional_id_rows("contextId")

UPDATE: list[Row] = [
    ("timespent is a string", at(("timespent",), "5"), TYPE, "request.timespent"),
    ("timespent is a bool", at(("timespent",), True), TYPE, "request.timespent"),
    ("timespent is a list", at(("timespent",), [5]), TYPE, "request.timespent"),
    ("timespent is null", at(("timespent",), None), TYPE, "request.timespent"),
    ("timespent is negative", at(("timespent",), -1), VALUE, "request.timespent"),
    ("timespent is -0.001", at(("timespent",), -0.001), VALUE, "request.timespent"),
    ("timespent is 1e999", at(("timespent",), Raw("1e999")), VALUE, "request.timespent"),
    # NaN is not JSON: the lean edge's parser refuses the body itself.
    ("timespent is NaN", at(("timespent",), Raw("NaN")), "INVALID_JSON", "request"),
    ("progress is 101", at(("progress",), 101), VALUE, "request.progress"),
    ("progress is 100.001", at(("progress",), 100.001), VALUE, "request.progress"),
    ("progress is negative", at(("progress",), -1), VALUE, "request.progress"),
    ("progress is a string", at(("progress",), "50"), TYPE, "request.progress"),
    ("progress is a bool", at(("progress",), False), TYPE, "request.progress"),
    ("progressDetails is a list", at(("progressDetails",), [1]), TYPE,
     "request.progressDetails"),
    ("progressDetails is a string", at(("progressDetails",), "x"), TYPE,
     "request.progressDetails"),
    ("progressDetails is a number", at(("progressDetails",), 5), TYPE,
     "request.progressDetails"),
    ("progressDetails has 257 keys", at(("progressDetails",), {f"k{i}": i for i in range(257)}),
     VALUE, "request.progressDetails"),
]

A0 = ("assessments", 0)
EDATA = (*A0, "edata")
SUBMIT: list[Row] = [
    ("assessments is missing", drop(("assessments",)), "EVENTS_DATA_MISSING",
     "request.assessments"),
    ("assessments is empty", at(("assessments",), []), VALUE, "request.assessments"),
    ("assessments is an object", at(("assessments",), {}), TYPE, "request.assessments"),
    ("assessments is a string", at(("assessments",), "x"), TYPE, "request.assessments"),
    ("assessments has 1001 items", at(("assessments",), [assess("q", 1)] * 1001), VALUE,
     "request.assessments"),
    ("an assessment is a string", at(A0, "x"), TYPE, "request.assessments[0]"),
    ("eid is missing", drop((*A0, "eid")), MISSING, "request.assessments[0].eid"),
    ("eid is not ASSESS", at((*A0, "eid"), "START"), VALUE, "request.assessments[0].eid"),
    ("ets is missing", drop((*A0, "ets")), MISSING, "request.assessments[0].ets"),
    ("ets is negative", at((*A0, "ets"), -1), VALUE, "request.assessments[0].ets"),
    ("ets is a string", at((*A0, "ets"), "1700000000000"), TYPE, "request.assessments[0].ets"),
    ("ets is a bool", at((*A0, "ets"), True), TYPE, "request.assessments[0].ets"),
    ("ets is a fraction", at((*A0, "ets"), 1.5), TYPE, "request.assessments[0].ets"),
    ("ets is 2**64", at((*A0, "ets"), 2**64), VALUE, "request.assessments[0].ets"),
    ("edata is missing", drop(EDATA), MISSING, "request.assessments[0].edata"),
    ("edata is a string", at(EDATA, "x"), TYPE, "request.assessments[0].edata"),
    ("item is missing", drop((*EDATA, "item")), MISSING, "request.assessments[0].edata.item"),
    ("item.id is empty", at((*EDATA, "item", "id"), ""), VALUE,
     "request.assessments[0].edata.item.id"),
    ("item.id is 257 characters", at((*EDATA, "item", "id"), "q" * 257), VALUE,
     "request.assessments[0].edata.item.id"),
    ("item.maxscore is negative", at((*EDATA, "item", "maxscore"), -1), VALUE,
     "request.assessments[0].edata.item.maxscore"),
    ("item.maxscore is a string", at((*EDATA, "item", "maxscore"), "1"), TYPE,
     "request.assessments[0].edata.item.maxscore"),
    ("score is missing", drop((*EDATA, "score")), MISSING,
     "request.assessments[0].edata.score"),
    ("score is negative", at((*EDATA, "score"), -0.5), VALUE,
     "request.assessments[0].edata.score"),
    ("score is a bool", at((*EDATA, "score"), True), TYPE, "request.assessments[0].edata.score"),
    ("duration is negative", at((*EDATA, "duration"), -1), VALUE,
     "request.assessments[0].edata.duration"),
    ("attemptId is empty", at(("attemptId",), ""), VALUE, "request.attemptId"),
    ("attemptId is a number", at(("attemptId",), 7), TYPE, "request.attemptId"),
    ("attemptId is 257 characters", at(("attemptId",), "a" * 257), VALUE, "request.attemptId"),
    ("assessmentTs is negative", at(("assessmentTs",), -1), VALUE, "request.assessmentTs"),
    ("assessmentTs is a string", at(("assessmentTs",), "x"), TYPE, "request.assessmentTs"),
    ("attempt group: bad ets", at(A0, {"attemptId": "a1", "events": [assess("q", 1, ets=-5)]}),
     VALUE, "request.assessments[0].events[0].ets"),
    ("attempt group: unknown field", at(A0, {"events": [assess("q", 1)], "bogus": 1}),
     UNKNOWN, "request.assessments[0].bogus"),
    ("attempt group: events is a string", at(A0, {"events": "x"}), TYPE,
     "request.assessments[0].events"),
    ("attempt group: 1001 events", at(A0, {"events": [assess("q", 1)] * 1001}), VALUE,
     "request.assessments[0].events"),
]

READ: list[Row] = [
    *USER,
    ("contentId is missing", drop(("contentId",)), "CONTENT_ID_REQUIRED_ERROR",
     "request.contentId"),
    ("contentId is a string", at(("contentId",), "c1"), TYPE, "request.contentId"),
    ("contentId is an object", at(("contentId",), {}), TYPE, "request.contentId"),
    ("contentId is empty", at(("contentId",), []), VALUE, "request.contentId"),
    ("contentId[0] is a number", at(("contentId",), [5]), TYPE, "request.contentId[0]"),
    ("contentId[1] is empty", at(("contentId",), ["c1", ""]), VALUE, "request.contentId[1]"),
    ("contentId[0] is 257 characters", at(("contentId",), ["c" * 257]), VALUE,
     "request.contentId[0]"),
    ("contentId[0] has a control char", at(("contentId",), ["c\x01"]), VALUE,
     "request.contentId[0]"),
    ("contentId has 1001 items", at(("contentId",), [f"c{i}" for i in range(1001)]), VALUE,
     "request.contentId"),
    *optional_id_rows("collectionId"),
]

ENROLMENT: list[Row] = [
    *USER,
    ("collectionId is missing", drop(("collectionId",)), MISSING, "request.collectionId"),
    ("collectionId is a number", at(("collectionId",), 5), TYPE, "request.collectionId"),
    ("collectionId is a list", at(("collectionId",), ["c"]), TYPE, "request.collectionId"),
    ("collectionId is empty", at(("collectionId",), ""), VALUE, "request.collectionId"),
    ("collectionId is 257 characters", at(("collectionId",), "c" * 257), VALUE,
     "request.collectionId"),
    ("collectionId has a control char", at(("collectionId",), "c\x1f"), VALUE,
     "request.collectionId"),
    *optional_id_rows("contextId"),
]

E1 = ("events", 1)
EVENTS: list[Row] = [
    ("events is missing", drop(("events",)), "EVENTS_DATA_MISSING", "request.events"),
    ("events is empty", at(("events",), []), VALUE, "request.events"),
    ("events is an object", at(("events",), {}), TYPE, "request.events"),
    ("events is a string", at(("events",), "x"), TYPE, "request.events"),
    ("events has 1001 items",
     at(("events",), [{"type": "view.start", **keys("u", f"c{i}")} for i in range(1001)]),
     VALUE, "request.events"),
    ("event is a string", at(E1, "x"), TYPE, "request.events[1]"),
    ("event type is missing", drop((*E1, "type")), MISSING, "request.events[1].type"),
    ("event type is unknown", at((*E1, "type"), "view.bogus"), VALUE, "request.events[1].type"),
    ("event type is a number", at((*E1, "type"), 5), TYPE, "request.events[1].type"),
    ("event userId is missing", drop((*E1, "userId")), "USERID_MISSING",
     "request.events[1].userId"),
    ("event contentId is missing", drop((*E1, "contentId")), "CONTENT_ID_REQUIRED_ERROR",
     "request.events[1].contentId"),
    ("event userId is a number", at((*E1, "userId"), 3), TYPE, "request.events[1].userId"),
    ("event userId is 257 characters", at((*E1, "userId"), "u" * 257), VALUE,
     "request.events[1].userId"),
    ("event contentId has a control char", at((*E1, "contentId"), "c\x01"), VALUE,
     "request.events[1].contentId"),
    ("event timespent is a string", at((*E1, "timespent"), "5"), TYPE,
     "request.events[1].timespent"),
    ("event timespent is a bool", at((*E1, "timespent"), True), TYPE,
     "request.events[1].timespent"),
    ("event timespent is negative", at((*E1, "timespent"), -1), VALUE,
     "request.events[1].timespent"),
    ("event progress is 101", at((*E1, "progress"), 101), VALUE, "request.events[1].progress"),
    ("event progressDetails is a list", at((*E1, "progressDetails"), [1]), TYPE,
     "request.events[1].progressDetails"),
    ("event has an unknown field", at((*E1, "bogus"), 1), UNKNOWN, "request.events[1].bogus"),
    ("start event has a timespent", at(("events", 0, "timespent"), 5), UNKNOWN,
     "request.events[0].timespent"),
    ("submit event without assessments", at(E1, {"type": "assessment.submit", "userId": "u",
                                                 "contentId": "c"}),
     "EVENTS_DATA_MISSING", "request.events[1].assessments"),
    ("submit event with a negative ets",
     at(E1, {"type": "assessment.submit", "userId": "u", "contentId": "c",
             "assessments": [assess("q", 1, ets=-1)]}),
     VALUE, "request.events[1].assessments[0].ets"),
    ("submit event with ets 2**64",
     at(E1, {"type": "assessment.submit", "userId": "u", "contentId": "c",
             "assessments": [assess("q", 1, ets=2**64)]}),
     VALUE, "request.events[1].assessments[0].ets"),
]

C0 = ("children", 0)
COLLECTION: list[Row] = [
    ("name is missing", drop(("name",)), MISSING, "request.name"),
    ("children is missing", drop(("children",)), MISSING, "request.children"),
    ("name is a number", at(("name",), 5), TYPE, "request.name"),
    ("name is empty", at(("name",), ""), VALUE, "request.name"),
    ("name is 1025 characters", at(("name",), "n" * 1025), VALUE, "request.name"),
    ("description is a number", at(("description",), 5), TYPE, "request.description"),
    ("description is 4097 characters", at(("description",), "d" * 4097), VALUE,
     "request.description"),
    ("children is an object", at(("children",), {}), TYPE, "request.children"),
    ("children is a string", at(("children",), "x"), TYPE, "request.children"),
    ("children has 1001 items", at(("children",), [leaf(f"c{i}") for i in range(1001)]), VALUE,
     "request.children"),
    ("a child is a string", at(C0, "x"), TYPE, "request.children[0]"),
    ("a child without identifier", drop((*C0, "identifier")), MISSING,
     "request.children[0].identifier"),
    ("a child identifier is empty", at((*C0, "identifier"), ""), VALUE,
     "request.children[0].identifier"),
    ("a child identifier is 257 characters", at((*C0, "identifier"), "c" * 257), VALUE,
     "request.children[0].identifier"),
    ("a child identifier has a NUL", at((*C0, "identifier"), "c\x00"), VALUE,
     "request.children[0].identifier"),
    ("a child type is unknown", at((*C0, "type"), "folder"), VALUE, "request.children[0].type"),
    ("a child optional is a string", at((*C0, "optional"), "yes"), TYPE,
     "request.children[0].optional"),
    ("a child optional is a number", at((*C0, "optional"), 1), TYPE,
     "request.children[0].optional"),
    ("a child has an unknown field", at((*C0, "bogus"), 1), UNKNOWN, "request.children[0].bogus"),
    ("a grandchild identifier is a number", at(("children", 1, "children", 0, "identifier"), 5),
     TYPE, "request.children[1].children[0].identifier"),
    ("certificates is a string", at(("certificates",), "x"), TYPE, "request.certificates"),
    ("a certificate without name", at(("certificates",), [{"criteria": {"status": 2}}]),
     MISSING, "request.certificates[0].name"),
    ("a certificate criteria is a string", at(("certificates",), [{"name": "c", "criteria": "s"}]),
     TYPE, "request.certificates[0].criteria"),
    ("33 certificates", at(("certificates",), [{"name": f"c{i}"} for i in range(33)]), VALUE,
     "request.certificates"),
]

CONTEXT: list[Row] = [
    ("collectionId is missing", drop(("collectionId",)), MISSING, "request.collectionId"),
    ("collectionId is a number", at(("collectionId",), 5), TYPE, "request.collectionId"),
    ("collectionId is empty", at(("collectionId",), ""), VALUE, "request.collectionId"),
    ("collectionId is 257 characters", at(("collectionId",), "c" * 257), VALUE,
     "request.collectionId"),
    ("name is a number", at(("name",), 5), TYPE, "request.name"),
    ("startDate is a number", at(("startDate",), 20240101), TYPE, "request.startDate"),
    ("startDate is 2024-1-1", at(("startDate",), "2024-1-1"), VALUE, "request.startDate"),
    ("startDate is 2024-13-45", at(("startDate",), "2024-13-45"), VALUE, "request.startDate"),
    ("startDate is 2023-02-29", at(("startDate",), "2023-02-29"), VALUE, "request.startDate"),
    ("endDate is tomorrow", at(("endDate",), "tomorrow"), VALUE, "request.endDate"),
    ("endDate is before startDate", at(("endDate",), "2023-12-31"), VALUE, "request.endDate"),
]


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: Callable[[str, str], str]  # (user, other id) -> path
    request: Callable[[str, str], dict[str, Any]]
    probe: Callable[[str, str], Probe | None]
    rows: list[Row]


def _view(u: str, c: str) -> Probe:
    return Probe("view", (u, c))


def _enrolment(u: str, c: str) -> Probe:
    return Probe("enrolment", (u,))


ROUTES = [
    Route("view/start", "POST", lambda u, c: "/v1/view/start", keys, _view, ENVELOPE + KEYS),
    Route("view/update", "POST", lambda u, c: "/v1/view/update",
          lambda u, c: {**keys(u, c), "timespent": 5, "progress": 50,
                        "progressDetails": {"visitedLength": 1, "totalLength": 2}},
          _view, ENVELOPE + KEYS + UPDATE),
    Route("view/end", "POST", lambda u, c: "/v1/view/end", keys, _view, ENVELOPE + KEYS),
    Route("assessment/submit", "POST", lambda u, c: "/v1/assessment/submit",
          lambda u, c: {**keys(u, c), "assessments": [assess("q1", 1)]}, _view,
          ENVELOPE + KEYS + SUBMIT),
    Route("view/read", "POST", lambda u, c: "/v1/view/read",
          lambda u, c: {"userId": u, "contentId": [c]}, lambda u, c: None, ENVELOPE + READ),
    Route("assessment/read", "POST", lambda u, c: "/v1/assessment/read",
          lambda u, c: {"userId": u, "contentId": [c]}, lambda u, c: None, ENVELOPE + READ),
    Route("summary/read", "POST", lambda u, c: "/v1/summary/read",
          lambda u, c: {"userId": u, "collectionId": c}, lambda u, c: None,
          ENVELOPE + ENROLMENT),
    Route("enrol", "POST", lambda u, c: "/v1/enrol",
          lambda u, c: {"userId": u, "collectionId": c}, _enrolment, ENVELOPE + ENROLMENT),
    Route("unenrol", "POST", lambda u, c: "/v1/unenrol",
          lambda u, c: {"userId": u, "collectionId": c}, _enrolment, ENVELOPE + ENROLMENT),
    Route("events", "POST", lambda u, c: "/v1/events",
          lambda u, c: {"events": [{"type": "view.start", **keys(u, c)},
                                   {"type": "view.update", **keys(u, c), "timespent": 5,
                                    "progress": 10}]},
          _view, ENVELOPE + EVENTS),
    Route("PUT collection", "PUT", lambda u, c: f"/v1/collection/{c}",
          lambda u, c: {"name": "Maths", "children": [leaf("c1"), unit("u1", leaf("c2"))]},
          lambda u, c: Probe("collection", (c,)), ENVELOPE + COLLECTION),
    Route("PUT context", "PUT", lambda u, c: f"/v1/context/{c}",
          lambda u, c: {"collectionId": "maths", "name": "Batch 1", "startDate": "2024-01-01",
                        "endDate": "2024-06-30"},
          lambda u, c: Probe("context", (c,)), ENVELOPE + CONTEXT),
    Route("PUT user", "PUT", lambda u, c: f"/v1/users/{u}",
          lambda u, c: {"username": u, "fullName": "A Learner", "kind": "learner"},
          lambda u, c: None, [*ENVELOPE,
              ("kind is teacher", at(("kind",), "teacher"), VALUE, "request.kind"),
              ("kind is a number", at(("kind",), 1), VALUE, "request.kind"),
              ("username is empty", at(("username",), ""), VALUE, "request.username"),
              ("username has a newline", at(("username",), "a\nb"), VALUE,
               "request.username"),
              ("fullName is a list", at(("fullName",), ["A"]), TYPE, "request.fullName"),
              ("fullName is empty", at(("fullName",), ""), VALUE, "request.fullName")]),
    Route("PUT group", "PUT", lambda u, c: f"/v1/groups/{c}",
          lambda u, c: {"kind": "classroom", "name": "Class 1"},
          lambda u, c: None, [*ENVELOPE,
              ("kind is missing", drop(("kind",)), MISSING, "request.kind"),
              ("kind is school", at(("kind",), "school"), VALUE, "request.kind"),
              ("name is missing", drop(("name",)), MISSING, "request.name"),
              ("name is empty", at(("name",), ""), VALUE, "request.name"),
              ("name is a number", at(("name",), 5), TYPE, "request.name"),
              ("parentId on a classroom", at(("parentId",), "x"), VALUE, "request.parentId"),
              ("parentId is 257 characters", at(("parentId",), "p" * 257), VALUE,
               "request.parentId"),
              ("a learnergroup without parentId", at(("kind",), "learnergroup"), VALUE,
               "request.parentId")]),
    Route("PUT member", "PUT", lambda u, c: f"/v1/groups/{c}/members/{u}",
          lambda u, c: {"role": "coach"}, lambda u, c: None, [*ENVELOPE,
              ("role is teacher", at(("role",), "teacher"), VALUE, "request.role"),
              ("role is a list", at(("role",), ["coach"]), VALUE, "request.role")]),
    Route("PUT quiz", "PUT", lambda u, c: f"/v1/quizzes/{c}",
          lambda u, c: {"title": "Fractions", "active": True, "groupIds": []},
          lambda u, c: None, [*ENVELOPE,
              ("title is missing", drop(("title",)), MISSING, "request.title"),
              ("title is empty", at(("title",), ""), VALUE, "request.title"),
              ("active is a string", at(("active",), "yes"), TYPE, "request.active"),
              ("groupIds is a string", at(("groupIds",), "c1"), TYPE, "request.groupIds"),
              ("a group id is empty", at(("groupIds",), [""]), VALUE, "request.groupIds[0]"),
              ("a group id is 257 characters", at(("groupIds",), ["g" * 257]), VALUE,
               "request.groupIds[0]")]),
    Route("group agg", "POST", lambda u, c: "/data/group/agg",
          lambda u, c: {"groupId": c, "activities": [{"id": "k1", "type": "Collection"}],
                        "fields": ["avgProgress"]},
          lambda u, c: None, [*ENVELOPE,
              *id_rows("groupId", missing=("GROUP_ID_MISSING", "request.groupId")),
              ("activities is a string", at(("activities",), "k1"), TYPE,
               "request.activities"),
              ("activities has 101 items", at(("activities",), [
                  {"id": "k1", "type": "Collection"}] * 101), VALUE, "request.activities"),
              ("an activity has no id", drop(("activities", 0, "id")), "ACTIVITY_ID_MISSING",
               "request.activities[0].id"),
              ("an activity has no type", drop(("activities", 0, "type")),
               "ACTIVITY_TYPE_MISSING", "request.activities[0].type"),
              ("an activity's type is Course", at(("activities", 0, "type"), "Course"), VALUE,
               "request.activities[0].type"),
              ("an activity's id has a newline", at(("activities", 0, "id"), "a\nb"), VALUE,
               "request.activities[0].id"),
              ("an unknown field in an activity", at(("activities", 0, "bogus"), 1), UNKNOWN,
               "request.activities[0].bogus"),
              ("fields is a string", at(("fields",), "avgProgress"), TYPE, "request.fields"),
              ("a field is a number", at(("fields",), [7]), TYPE, "request.fields[0]"),
              ("a field is empty", at(("fields",), [""]), VALUE, "request.fields[0]")]),
    Route("group activity agg", "POST", lambda u, c: "/data/group/activity/agg",
          lambda u, c: {"groupId": c, "activityId": "k1", "activityType": "Collection"},
          lambda u, c: None, [*ENVELOPE,
              *id_rows("groupId", missing=("GROUP_ID_MISSING", "request.groupId")),
              *id_rows("activityId", missing=("ACTIVITY_ID_MISSING", "request.activityId")),
              ("activityType is missing", drop(("activityType",)), "ACTIVITY_TYPE_MISSING",
               "request.activityType"),
              ("activityType is Course", at(("activityType",), "Course"), VALUE,
               "request.activityType"),
              ("activityType is a number", at(("activityType",), 1), TYPE,
               "request.activityType"),
              ("fields has 501 items", at(("fields",), ["status"] * 501), VALUE,
               "request.fields")]),
    Route("DELETE summary", "DELETE", lambda u, c: f"/v1/summary/delete/{u}",
          lambda u, c: {"userId": u, "collectionId": c}, lambda u, c: Probe("erasure", (u, c)),
          # the body is optional here: an empty body or null is no body (then ?all=true is)
          [r for r in ENVELOPE if r[0] not in ("body is empty", "body is JSON null")]
          + ENROLMENT + [
              ("no body and no ?all", whole(lambda r: b""), MISSING, "request.collectionId"),
              ("null body and no ?all", whole(lambda r: b"null"), MISSING,
               "request.collectionId"),
              ("userId differs from the path", at(("userId",), "someone-else"), VALUE,
               "request.userId")]),
]


def _table() -> Iterator[Any]:
    for route in ROUTES:
        for what, mutate, err, field in route.rows:
            n = next(_serial)
            user, other = f"user-{n:04d}", f"id-{n:04d}"
            body = mutate(route.request(user, other))
            yield pytest.param(
                Bad(route.method, route.path(user, other), body, err, field,
                    route.probe(user, other)),
                id=f"{route.name}: {what}")
    # ids in the path
    long_user = "u" * 300
    for what, method, path, body, field in [
        ("GET summary/list: userId is 300 characters", "GET", f"/v1/summary/list/{long_user}",
         None, "userId"),
        ("GET summary/list: userId has a control char", "GET", "/v1/summary/list/a%01b", None,
         "userId"),
        ("GET summary/list: userId has DEL", "GET", "/v1/summary/list/a%7Fb", None, "userId"),
        ("GET summary/list: userId has a C1 control", "GET", "/v1/summary/list/a%C2%85b", None,
         "userId"),
        ("GET summary/download: userId is 300 characters", "GET",
         f"/v1/summary/download/{long_user}", None, "userId"),
        ("GET summary/download: format is xml", "GET", "/v1/summary/download/u1?format=xml",
         None, "format"),
        ("GET collection: collectionId is 257 characters", "GET", f"/v1/collection/{'c' * 257}",
         None, "collectionId"),
        ("PUT collection: collectionId is 257 characters", "PUT", f"/v1/collection/{'c' * 257}",
         wrap({"name": "n", "children": []}), "collectionId"),
        ("PUT collection: collectionId has a control char", "PUT", "/v1/collection/c%01",
         wrap({"name": "n", "children": []}), "collectionId"),
        ("PUT context: contextId is 257 characters", "PUT", f"/v1/context/{'x' * 257}",
         wrap({"collectionId": "c"}), "contextId"),
        ("DELETE summary: userId is 300 characters", "DELETE",
         f"/v1/summary/delete/{long_user}?all=true", None, "userId"),
        ("DELETE summary: all is maybe", "DELETE", "/v1/summary/delete/u1?all=maybe", None,
         "all"),
        ("PUT user: userId is 257 characters", "PUT", f"/v1/users/{'u' * 257}",
         wrap({}), "userId"),
        ("PUT group: groupId has a control char", "PUT", "/v1/groups/g%01",
         wrap({"kind": "group", "name": "n"}), "groupId"),
        ("GET group: groupId is 257 characters", "GET", f"/v1/groups/{'g' * 257}", None,
         "groupId"),
        ("PUT member: userId has DEL", "PUT", "/v1/groups/g/members/a%7Fb", wrap({}),
         "userId"),
        ("PUT quiz: quizId has a control char", "PUT", "/v1/quizzes/q%01",
         wrap({"title": "t"}), "quizId"),
        ("GET quiz: quizId is 257 characters", "GET", f"/v1/quizzes/{'q' * 257}", None,
         "quizId"),
        ("GET contentsessionlog: group_id is 257 characters", "GET",
         f"/api/logger/contentsessionlog/?group_id={'g' * 257}", None, "group_id"),
        ("GET examlog: dataset has a control char", "GET", "/api/logger/examlog/?dataset=a%01",
         None, "dataset"),
        ("PUT activity: activityType is Course", "PUT", "/v1/groups/g/activities/Course/k1",
         None, "activityType"),
        ("PUT activity: activityId has a control char", "PUT",
         "/v1/groups/g/activities/Collection/k%01", None, "activityId"),
        ("DELETE activity: groupId is 257 characters", "DELETE",
         f"/v1/groups/{'g' * 257}/activities/Content/c1", None, "groupId"),
        ("DELETE member: groupId is 257 characters", "DELETE",
         f"/v1/groups/{'g' * 257}/members/u", None, "groupId"),
    ]:
        yield pytest.param(Bad(method, path, body, VALUE, field, None), id=what)


TABLE = list(_table())


# -- fixtures ------------------------------------------------------------------------------

@dataclass
class Shared:
    api: Api
    runtime: Runtime


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Shared]:
    """One app per engine for the table of rejected requests (each row has its own ids)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'learnlog.db'}"
    else:
        url = request.getfixturevalue("pg_url_factory")()
    settings = Settings(database_url=url, jwt_secret="test-secret-" + "x" * 32,
                        exports_dir=str(tmp_path_factory.mktemp("exports")),
                        _env_file=None)  # type: ignore[call-arg]
    rt = bootstrap(settings)
    rt.start()
    try:
        with TestClient(create_app(settings, rt)) as client:
            yield Shared(Api(client, mint(rt.secret, "admin", ["admin"]), rt.secret), rt)
    finally:
        rt.close()


def seed(shared: Shared, probe: Probe) -> None:
    """Records a rejected erasure would have erased."""
    if probe.kind == "erasure":
        user, collection = probe.ids
        shared.api.post("/v1/enrol", {"userId": user, "collectionId": collection})
        shared.api.start(user, "c1", collection)


def assert_untouched(shared: Shared, probe: Probe) -> None:
    """A read of what a rejected write would have written finds nothing (or, for an
    erasure, finds what it would have erased)."""
    api = shared.api
    if probe.kind == "erasure":
        user, collection = probe.ids
        assert [s["collectionId"] for s in api.summaries(user)] == [collection]
        assert api.one(user, "c1", collection)["status"] == 1
    elif probe.kind == "view":
        user, content = probe.ids
        row = api.one(user, content)
        assert (row["status"], row["progress"], row["viewCount"], row["timeSpent"]) == (
            0, 0, 0, 0), row
        assert api.assessments(user, [content])[content]["attempts_count"] == 0
        assert api.summaries(user) == []
    elif probe.kind == "enrolment":
        assert api.summaries(probe.ids[0]) == []
    elif probe.kind == "collection":
        api.call("GET", f"/v1/collection/{probe.ids[0]}", status=404)
    else:
        assert _contexts_named(shared.runtime, probe.ids[0]) == 0


def _contexts_named(runtime: Runtime, context_id: str) -> int:
    """Contexts have no read route: count them in the database."""
    with runtime.read_engine.connect() as conn:
        found: int = conn.execute(select(func.count()).select_from(contexts).where(
            contexts.c.context_id == context_id)).scalar_one()
    return found


# -- 1. the table --------------------------------------------------------------------------

@pytest.mark.parametrize("bad", TABLE)
def test_bad_input_is_a_400_that_names_the_field(shared: Shared, bad: Bad) -> None:
    if bad.probe is not None:
        seed(shared, bad.probe)
    response = send(shared.api.client, bad.method, bad.path, bad.body, shared.api.token)
    assert_rejected(response, 400, "CLIENT_ERROR", bad.err, bad.field)
    if bad.probe is not None:
        assert_untouched(shared, bad.probe)


def test_the_table_covers_every_route() -> None:
    assert {r.name for r in ROUTES} >= {
        "view/start", "view/update", "view/end", "assessment/submit", "view/read",
        "assessment/read", "summary/read", "enrol", "unenrol", "events", "PUT collection",
        "PUT context", "DELETE summary", "PUT user", "PUT group", "PUT member"}
    assert len(TABLE) > 300


# -- 2. all or nothing ---------------------------------------------------------------------

def _view_state(api: Api, user: str, contents: list[str]) -> dict[str, tuple[Any, ...]]:
    rows = api.read(user, contents)
    return {c: (r["status"], r["progress"], r["viewCount"], r["timeSpent"], r["completedOn"],
                r["lastAccessTime"], r["progressDetails"], r["score"]) for c, r in rows.items()}


def _three_good_events(user: str) -> list[dict[str, Any]]:
    """Events that would change c0 (already started), start c1 and complete c2."""
    return [
        {"type": "view.update", **keys(user, "c0"), "timespent": 30, "progress": 40},
        {"type": "view.start", **keys(user, "c1")},
        {"type": "assessment.submit", **keys(user, "c2"), "assessments": [assess("q1", 1)]},
    ]


FOURTH_INVALID = [
    pytest.param({"type": "view.update", "timespent": -1}, VALUE,
                 "request.events[3].timespent", id="negative timespent"),
    pytest.param({"type": "view.update", "progress": 101}, VALUE,
                 "request.events[3].progress", id="progress 101"),
    pytest.param({"type": "view.start", "contentId": None}, TYPE,
                 "request.events[3].contentId", id="contentId null"),
    pytest.param({"type": "view.end", "bogus": True}, UNKNOWN, "request.events[3].bogus",
                 id="unknown field"),
    pytest.param({"type": "view.start", "userId": "u" * 257}, VALUE,
                 "request.events[3].userId", id="userId of 257 characters"),
    pytest.param({"type": "assessment.submit", "assessments": [assess("q", 1, ets=-1)]},
                 VALUE, "request.events[3].assessments[0].ets", id="assessment ets -1"),
]


@pytest.mark.parametrize(("fourth", "err", "field"), FOURTH_INVALID)
def test_events_with_an_invalid_fourth_event_apply_nothing(
        api: Api, fourth: dict[str, Any], err: str, field: str) -> None:
    user = "batcher"
    api.start(user, "c0")
    contents = ["c0", "c1", "c2", "c3"]
    before = _view_state(api, user, contents)
    bad = {**keys(user, "c3"), **fourth}
    response = send(api.client, "POST", "/v1/events",
                    wrap({"events": [*_three_good_events(user), bad]}), api.token)
    assert_rejected(response, 400, "CLIENT_ERROR", err, field)
    assert _view_state(api, user, contents) == before
    assert api.assessments(user, ["c2"])["c2"]["attempts_count"] == 0


FOURTH_FAILS_WHEN_APPLIED = [
    pytest.param({"type": "view.update", **keys("batcher", "never-started"), "timespent": 5},
                 "VIEW_NOT_STARTED", "request.events[3].contentId", id="update never started"),
    pytest.param({"type": "view.end", **keys("batcher", "never-started")},
                 "VIEW_NOT_STARTED", "request.events[3].contentId", id="end never started"),
    pytest.param({"type": "view.update", **keys("batcher", "c1"), "timespent": 10**6},
                 "TIMESPENT_TOO_LARGE", "request.events[3].timespent",
                 id="timespent above the limit"),
]


@pytest.mark.parametrize(("fourth", "err", "field"), FOURTH_FAILS_WHEN_APPLIED)
def test_events_whose_fourth_event_fails_when_applied_apply_nothing(
        api: Api, fourth: dict[str, Any], err: str, field: str) -> None:
    user = "batcher"
    api.start(user, "c0")
    contents = ["c0", "c1", "c2", "never-started"]
    before = _view_state(api, user, contents)
    response = send(api.client, "POST", "/v1/events",
                    wrap({"events": [*_three_good_events(user), fourth]}), api.token)
    body = assert_rejected(response, 400, "CLIENT_ERROR", err, ANY_FIELD)
    assert _view_state(api, user, contents) == before
    assert api.assessments(user, ["c2"])["c2"]["attempts_count"] == 0
    assert body["result"]["field"] == field  # names the event's index and field
    # and the same three events alone are fine
    api.post("/v1/events", {"events": _three_good_events(user)})
    assert api.one(user, "c1")["status"] == 1


REJECTED_WHEN_APPLIED = [
    pytest.param("/v1/view/update", {"timespent": 5}, False, "VIEW_NOT_STARTED",
                 "request.contentId", id="update never started"),
    pytest.param("/v1/view/end", {}, False, "VIEW_NOT_STARTED", "request.contentId",
                 id="end never started"),
    pytest.param("/v1/view/update", {"timespent": 10**6, "progress": 90}, True,
                 "TIMESPENT_TOO_LARGE", "request.timespent", id="timespent above the limit"),
]


@pytest.mark.parametrize(("path", "fields", "started", "err", "field"), REJECTED_WHEN_APPLIED)
def test_a_write_rejected_when_applied_changes_nothing(
        api: Api, path: str, fields: dict[str, Any], started: bool, err: str,
        field: str) -> None:
    if started:
        api.start("lena", "c1")
    before = _view_state(api, "lena", ["c1"])
    listed = api.summaries("lena")
    response = send(api.client, "POST", path, wrap({**keys("lena", "c1"), **fields}), api.token)
    assert_rejected(response, 400, "CLIENT_ERROR", err, field)
    assert _view_state(api, "lena", ["c1"]) == before
    assert api.summaries("lena") == listed


# -- 3. who may do what --------------------------------------------------------------------

VICTIM = "victim"
LEARNER = "learner1"

WRITES_FOR_ANOTHER = [
    pytest.param("POST", "/v1/view/start", wrap(keys(VICTIM, "c1")), "request.userId",
                 id="view/start"),
    pytest.param("POST", "/v1/view/update", wrap({**keys(VICTIM, "c1"), "progress": 100}),
                 "request.userId", id="view/update"),
    pytest.param("POST", "/v1/view/end", wrap(keys(VICTIM, "c1")), "request.userId",
                 id="view/end"),
    pytest.param("POST", "/v1/assessment/submit",
                 wrap({**keys(VICTIM, "c1"), "assessments": [assess("q1", 0)]}),
                 "request.userId", id="assessment/submit"),
    pytest.param("POST", "/v1/events",
                 wrap({"events": [{"type": "view.start", **keys(LEARNER, "c9")},
                                  {"type": "view.end", **keys(VICTIM, "c1")}]}),
                 "request.events[1].userId", id="events"),
    pytest.param("POST", "/v1/enrol", wrap({"userId": VICTIM, "collectionId": "other"}),
                 "request.userId", id="enrol"),
    pytest.param("POST", "/v1/unenrol", wrap({"userId": VICTIM, "collectionId": "maths"}),
                 "request.userId", id="unenrol"),
    pytest.param("DELETE", f"/v1/summary/delete/{VICTIM}?all=true", None, ANY_FIELD,
                 id="DELETE summary all"),
    pytest.param("DELETE", f"/v1/summary/delete/{VICTIM}",
                 wrap({"userId": VICTIM, "collectionId": "maths"}), ANY_FIELD,
                 id="DELETE summary"),
    pytest.param("PUT", "/v1/collection/maths",
                 wrap({"name": "Hacked", "children": [leaf("x")]}), ANY_FIELD,
                 id="PUT collection"),
    pytest.param("PUT", "/v1/context/batch-9", wrap({"collectionId": "maths"}), ANY_FIELD,
                 id="PUT context"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), WRITES_FOR_ANOTHER)
def test_a_learner_may_not_write_for_another_user(
        api: Api, runtime: Runtime, method: str, path: str, body: Any, field: object) -> None:
    api.put_collection("maths", [leaf("c1"), leaf("c2")])
    api.post("/v1/enrol", {"userId": VICTIM, "collectionId": "maths"})
    api.start(VICTIM, "c1")
    api.update(VICTIM, "c1", progress=50, timespent=20)
    before = (_view_state(api, VICTIM, ["c1", "c2"]), api.summaries(VICTIM),
              api.call("GET", "/v1/collection/maths")["result"])
    learner = api.as_user(LEARNER)
    response = send(api.client, method, path, body, learner.token)
    assert_rejected(response, 403, "FORBIDDEN", "FORBIDDEN", field)
    after = (_view_state(api, VICTIM, ["c1", "c2"]), api.summaries(VICTIM),
             api.call("GET", "/v1/collection/maths")["result"])
    assert after == before
    assert api.one(LEARNER, "c9")["status"] == 0  # the learner's own event was not applied
    assert _contexts_named(runtime, "batch-9") == 0


def test_a_learner_may_write_for_itself(api: Api) -> None:
    learner = api.as_user(LEARNER)
    learner.start(LEARNER, "c1")
    learner.update(LEARNER, "c1", progress=30)
    assert learner.one(LEARNER, "c1")["progress"] == 30


READS_OF_ANOTHER = [
    pytest.param("POST", "/v1/view/read", wrap({"userId": VICTIM, "contentId": ["c1"]}),
                 id="view/read"),
    pytest.param("POST", "/v1/assessment/read", wrap({"userId": VICTIM, "contentId": ["c1"]}),
                 id="assessment/read"),
    pytest.param("POST", "/v1/summary/read", wrap({"userId": VICTIM, "collectionId": "maths"}),
                 id="summary/read"),
    pytest.param("GET", f"/v1/summary/list/{VICTIM}", None, id="summary/list"),
    pytest.param("GET", f"/v1/summary/download/{VICTIM}", None, id="summary/download"),
    pytest.param("GET", f"/v1/summary/download/{VICTIM}/{VICTIM}_viewer_summary.json", None,
                 id="summary/download file"),
]


@pytest.mark.parametrize(("method", "path", "body"), READS_OF_ANOTHER)
def test_a_learner_may_not_read_another_user(shared: Shared, method: str, path: str,
                                             body: Any) -> None:
    learner = shared.api.as_user(LEARNER)
    response = send(shared.api.client, method, path, body, learner.token)
    body_ = response.json()
    assert (response.status_code, body_["responseCode"], body_["params"]["err"]) == (
        403, "FORBIDDEN", "FORBIDDEN"), response.text


EVERY_ROUTE = [
    ("POST", "/v1/view/start", wrap(keys(LEARNER, "c1"))),
    ("POST", "/v1/view/update", wrap({**keys(LEARNER, "c1"), "timespent": 1})),
    ("POST", "/v1/view/end", wrap(keys(LEARNER, "c1"))),
    ("POST", "/v1/assessment/submit",
     wrap({**keys(LEARNER, "c1"), "assessments": [assess("q1", 1)]})),
    ("POST", "/v1/events", wrap({"events": [{"type": "view.start", **keys(LEARNER, "c1")}]})),
    ("POST", "/v1/view/read", wrap({"userId": LEARNER, "contentId": ["c1"]})),
    ("POST", "/v1/assessment/read", wrap({"userId": LEARNER, "contentId": ["c1"]})),
    ("POST", "/v1/summary/read", wrap({"userId": LEARNER, "collectionId": "maths"})),
    ("POST", "/v1/enrol", wrap({"userId": LEARNER, "collectionId": "maths"})),
    ("POST", "/v1/unenrol", wrap({"userId": LEARNER, "collectionId": "maths"})),
    ("GET", f"/v1/summary/list/{LEARNER}", None),
    ("GET", f"/v1/summary/download/{LEARNER}", None),
    ("DELETE", f"/v1/summary/delete/{LEARNER}?all=true", None),
    ("PUT", "/v1/collection/maths", wrap({"name": "Maths", "children": [leaf("c1")]})),
    ("GET", "/v1/collection/maths", None),
    ("PUT", "/v1/context/batch-1", wrap({"collectionId": "maths"})),
]


def _tokens(secret: str) -> dict[str, str | None]:
    hour_ago = time.time() - 3600
    return {
        "no token": None,
        "expired learner token": mint(secret, LEARNER, ["learner"], ttl=60, now=hour_ago),
        "expired admin token": mint(secret, "admin", ["admin"], ttl=60, now=hour_ago),
        "token of another secret": mint("another-secret-" + "z" * 32, "admin", ["admin"]),
        "not a JWT": "not-a-jwt",
    }


@pytest.mark.parametrize("credentials", ["no token", "expired learner token",
                                         "expired admin token", "token of another secret",
                                         "not a JWT"])
@pytest.mark.parametrize(("method", "path", "body"),
                         [pytest.param(*r, id=f"{r[0]} {r[1]}") for r in EVERY_ROUTE])
def test_a_caller_without_a_valid_token_is_a_401(shared: Shared, credentials: str,
                                                 method: str, path: str, body: Any) -> None:
    token = _tokens(shared.api.secret or "")[credentials]
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = shared.api.client.request(method, path, headers=headers,
                                         content=None if body is None else encode(body))
    assert_rejected(response, 401, "UNAUTHORIZED", "UNAUTHORIZED_USER", None)
    assert shared.api.summaries(LEARNER) == []


# -- 4. extreme but well-formed values are never a 5xx -------------------------------------

def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


EXTREMES = [
    pytest.param("POST", "/v1/assessment/submit",
                 {**keys("x1", "c1"), "assessments": [assess("q1", 1e300, 1e300)]},
                 ("POST", "/v1/assessment/read", {"userId": "x1", "contentId": ["c1"]}),
                 id="score 1e300"),
    pytest.param("POST", "/v1/assessment/submit",
                 {**keys("x2", "c1"), "assessments": [assess("q1", 1.7e308, 1.7e308),
                                                      assess("q2", 1.7e308, 1.7e308)]},
                 ("POST", "/v1/assessment/read", {"userId": "x2", "contentId": ["c1"]}),
                 id="scores whose sum overflows"),
    pytest.param("POST", "/v1/assessment/submit",
                 {**keys("x3", "c1"), "assessments": [
                     {**assess("q1", 1), "edata": {**assess("q1", 1)["edata"],
                                                   "resvalues": [10**30]}}]},
                 ("POST", "/v1/assessment/read", {"userId": "x3", "contentId": ["c1"]}),
                 id="resvalues with an integer of 100 bits"),
    pytest.param("POST", "/v1/assessment/submit",
                 {**keys("x4", "c1"), "assessments": [
                     {**assess("q1", 1), "edata": {**assess("q1", 1)["edata"],
                                                   "resvalues": [_deep(300)]}}]},
                 ("POST", "/v1/assessment/read", {"userId": "x4", "contentId": ["c1"]}),
                 id="resvalues nested 300 deep"),
    pytest.param("POST", "/v1/view/update",
                 {**keys("x5", "c1"), "progressDetails": {"big": 10**30}},
                 ("POST", "/v1/view/read", {"userId": "x5", "contentId": ["c1"]}),
                 id="progressDetails with an integer of 100 bits"),
    pytest.param("POST", "/v1/view/update",
                 {**keys("x6", "c1"), "progressDetails": _deep(300)},
                 ("POST", "/v1/view/read", {"userId": "x6", "contentId": ["c1"]}),
                 id="progressDetails nested 300 deep"),
    pytest.param("PUT", "/v1/collection/nul", {"name": "a\x00b", "children": [leaf("c1")]},
                 ("GET", "/v1/collection/nul", None), id="collection name with a NUL"),
    pytest.param("PUT", "/v1/collection/nul2",
                 {"name": "n", "description": "a\x00b", "children": [leaf("c1")]},
                 ("GET", "/v1/collection/nul2", None), id="collection description with a NUL"),
    pytest.param("PUT", "/v1/context/nul", {"collectionId": "maths", "name": "a\x00b"},
                 None, id="context name with a NUL"),
    pytest.param("PUT", "/v1/context/long", {"collectionId": "maths", "name": "n" * 4096},
                 None, id="context name of 4096 characters"),
]


@pytest.mark.parametrize(("method", "path", "request_", "read"), EXTREMES)
def test_extreme_but_well_formed_values_are_never_a_5xx(
        api: Api, method: str, path: str, request_: dict[str, Any],
        read: tuple[str, str, Any] | None) -> None:
    if path == "/v1/view/update":
        api.start(request_["userId"], request_["contentId"])
    response = send(api.client, method, path, wrap(request_), api.token)
    assert response.status_code in (200, 400), (response.status_code, response.text[:500])
    if response.status_code == 400:
        body = response.json()
        assert body["responseCode"] == "CLIENT_ERROR", body
        assert isinstance(body["result"].get("field"), str), body
    if read is not None:
        method, path, request_ = read
        answer = send(api.client, method, path, None if request_ is None else wrap(request_),
                      api.token)
        assert answer.status_code in (200, 404), (answer.status_code, answer.text[:500])


# -- 4. the logger family (no wrapper: fields at the top, the whole body is "body") ---------

def _plain(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def mutate(body: dict[str, Any]) -> Any:
        return change(copy.deepcopy(body))
    return mutate


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return _plain(lambda b: {**b, name: value})


def _without(name: str) -> Callable[[dict[str, Any]], Any]:
    return _plain(lambda b: {k: v for k, v in b.items() if k != name})


PLAIN_BODY: list[Row] = [
    ("body is empty", lambda b: b"", MISSING, "body"),
    ("body is not JSON", lambda b: b'{"content_id": ', "INVALID_JSON", "body"),
    ("body is not UTF-8", lambda b: b'{"content_id": "\xff\xfe"}', "INVALID_JSON", "body"),
    ("body is a JSON array", lambda b: [b], TYPE, "body"),
    ("body is JSON null", lambda b: b"null", TYPE, "body"),
    ("body is a string", lambda b: "x", TYPE, "body"),
    ("unknown field", _set("bogus", 1), UNKNOWN, "bogus"),
    ("body is over 1 MiB", lambda b: encode({**b, "padding": "x" * MiB}), "REQUEST_TOO_LARGE",
     "body"),
    ("chunked body is over 1 MiB", lambda b: Chunked(encode({**b, "padding": "x" * MiB})),
     "REQUEST_TOO_LARGE", "body"),
]


def _plain_id_rows(name: str, *, required: bool) -> list[Row]:
    rows: list[Row] = [
        (f"{name} is a number", _set(name, 42), TYPE, name),
        (f"{name} is a list", _set(name, ["x"]), TYPE, name),
        (f"{name} is empty", _set(name, ""), VALUE, name),
        (f"{name} is 257 characters", _set(name, "i" * 257), VALUE, name),
        (f"{name} has a NUL", _set(name, "a\x00b"), VALUE, name),
        (f"{name} has a C1 control", _set(name, "a\x85b"), VALUE, name),
    ]
    if required:
        rows.insert(0, (f"{name} is missing", _without(name), MISSING, name))
    return rows


def _fraction_rows(name: str) -> list[Row]:
    return [
        (f"{name} is a string", _set(name, "0.5"), TYPE, name),
        (f"{name} is a bool", _set(name, True), TYPE, name),
        (f"{name} is negative", _set(name, -0.1), VALUE, name),
        (f"{name} is above 1", _set(name, 1.01), VALUE, name),
        (f"{name} is 1e999", _set(name, Raw("1e999")), VALUE, name),
        (f"{name} is NaN", _set(name, Raw("NaN")), ANY_VALUE_OR_JSON, ANY_NAME),
    ]


INTERACTION = {"item": "q1", "correct": 1, "time_spent": 5, "answer": {"response": "4"}}

# NaN is not JSON: the parser may refuse the body (INVALID_JSON, "body") or the field.
ANY_VALUE_OR_JSON = "ANY"
ANY_NAME = "ANY"

TRACK_START: list[Row] = PLAIN_BODY + _plain_id_rows("content_id", required=True) + [
    *_plain_id_rows("channel_id", required=False),
    *_plain_id_rows("collection_id", required=False),
    *_plain_id_rows("context_id", required=False),
    ("kind is missing", _without("kind"), MISSING, "kind"),
    ("kind is a number", _set("kind", 3), VALUE, "kind"),
    ("kind is unknown", _set("kind", "hologram"), VALUE, "kind"),
    ("kind is quiz without quiz_id", _set("kind", "quiz"), MISSING, "quiz_id"),
    ("quiz_id with content_id", _set("quiz_id", "q1"), "CONFLICTING_FIELDS", "content_id"),
    *_plain_id_rows("quiz_id", required=False),
    ("an exercise without mastery_model", _set("kind", "exercise"), MISSING, "mastery_model"),
    ("an exercise whose mastery_model has no type",
     _plain(lambda b: {**b, "kind": "exercise", "mastery_model": {"m": 1}}), MISSING,
     "mastery_model.type"),
    ("mastery_model type is skill_check",
     _plain(lambda b: {**b, "kind": "exercise", "mastery_model": {"type": "skill_check"}}),
     VALUE, "mastery_model.type"),
    ("do_all without n",
     _plain(lambda b: {**b, "kind": "exercise", "mastery_model": {"type": "do_all"}}),
     MISSING, "mastery_model.n"),
    ("m_of_n without m",
     _plain(lambda b: {**b, "kind": "exercise", "mastery_model": {"type": "m_of_n", "n": 5}}),
     MISSING, "mastery_model.m"),
    ("m_of_n with m above n", _plain(lambda b: {
        **b, "kind": "exercise", "mastery_model": {"type": "m_of_n", "m": 6, "n": 5}}),
     MISSING, "mastery_model.m"),
    ("mastery_model n is 0", _plain(lambda b: {
        **b, "kind": "exercise", "mastery_model": {"type": "m_of_n", "m": 1, "n": 0}}),
     VALUE, "mastery_model.n"),
    ("mastery_model n is 1001", _plain(lambda b: {
        **b, "kind": "exercise", "mastery_model": {"type": "do_all", "n": 1001}}),
     VALUE, "mastery_model.n"),
    ("mastery_model has an unknown field", _plain(lambda b: {
        **b, "kind": "exercise", "mastery_model": {"type": "do_all", "n": 3, "x": 1}}),
     UNKNOWN, "mastery_model.x"),
    ("repeat is a string", _set("repeat", "yes"), TYPE, "repeat"),
    ("repeat is 1", _set("repeat", 1), TYPE, "repeat"),
    ("mastery_model on a video", _set("mastery_model", {"type": "do_all", "n": 3}), VALUE,
     "mastery_model"),
    ("mastery_model is a string", _set("mastery_model", "do_all"), TYPE, "mastery_model"),
]

TRACK_UPDATE: list[Row] = [r for r in PLAIN_BODY if r[0] != "body is empty"] + [
    *_fraction_rows("progress_delta"),
    *_fraction_rows("progress"),
    ("both progress fields", _plain(lambda b: {**b, "progress": 0.5}), "CONFLICTING_FIELDS",
     "progress"),
    ("time_spent_delta is negative", _set("time_spent_delta", -1), VALUE, "time_spent_delta"),
    ("time_spent_delta is a string", _set("time_spent_delta", "5"), TYPE, "time_spent_delta"),
    ("time_spent_delta is 1e999", _set("time_spent_delta", Raw("1e999")), VALUE,
     "time_spent_delta"),
    ("time_spent_delta above the maximum", _set("time_spent_delta", 10**7),
     "TIMESPENT_TOO_LARGE", "time_spent_delta"),
    ("extra_fields is a list", _set("extra_fields", [1]), TYPE, "extra_fields"),
    ("extra_fields is a string", _set("extra_fields", "{}"), TYPE, "extra_fields"),
    ("extra_fields has a 2**64 number", _set("extra_fields", {"n": 2**64}), VALUE,
     "extra_fields"),
    ("interactions is an object", _set("interactions", {"item": "q1"}), TYPE, "interactions"),
    ("interactions on a video session", _set("interactions", [INTERACTION]), VALUE,
     "interactions"),
    ("101 interactions", _set("interactions", [INTERACTION] * 101), VALUE, "interactions"),
    *[(f"interaction without {name}", _set("interactions", [
        {k: v for k, v in INTERACTION.items() if k != name}]), MISSING,
       f"interactions[0].{name}") for name in ("item", "correct", "time_spent", "answer")],
    ("interaction correct is 2", _set("interactions", [{**INTERACTION, "correct": 2}]), VALUE,
     "interactions[0].correct"),
    ("interaction correct is a string", _set("interactions", [{**INTERACTION, "correct": "1"}]),
     TYPE, "interactions[0].correct"),
    ("interaction time_spent is negative",
     _set("interactions", [{**INTERACTION, "time_spent": -1}]), VALUE,
     "interactions[0].time_spent"),
    ("interaction time_spent is 1e300",
     _set("interactions", [{**INTERACTION, "time_spent": 1e300}]), VALUE,
     "interactions[0].time_spent"),
    ("interaction item is 257 characters",
     _set("interactions", [{**INTERACTION, "item": "q" * 257}]), VALUE,
     "interactions[0].item"),
    ("interaction id has a control char",
     _set("interactions", [{**INTERACTION, "id": "a\x01"}]), VALUE, "interactions[0].id"),
    ("interaction has an unknown field",
     _set("interactions", [{**INTERACTION, "bogus": 1}]), UNKNOWN, "interactions[0].bogus"),
    ("interaction hinted is a string",
     _set("interactions", [{**INTERACTION, "hinted": "yes"}]), TYPE, "interactions[0].hinted"),
]


def _logger_table() -> Iterator[Any]:
    valid_start = {"content_id": "c1", "kind": "video", "collection_id": "k", "context_id": "x",
                   "channel_id": "ch", "repeat": False}
    valid_update = {"progress_delta": 0.5, "time_spent_delta": 30,
                    "extra_fields": {"contentState": {"page": 2}}}
    for what, mutate, err, field in TRACK_START:
        yield pytest.param("start", mutate(valid_start), err, field, id=f"trackprogress: {what}")
    for what, mutate, err, field in TRACK_UPDATE:
        yield pytest.param("update", mutate(valid_update), err, field,
                           id=f"trackprogress/{{id}}: {what}")


@pytest.mark.parametrize(("route", "body", "err", "field"), list(_logger_table()))
def test_logger_bad_input_is_a_400_that_names_the_field(
        shared: Shared, route: str, body: Any, err: str, field: str) -> None:
    learner = f"logger-{next(_serial):04d}"
    token = mint(shared.runtime.secret, learner, ["learner"])
    started = shared.api.call("POST", "/api/logger/trackprogress/",
                              {"content_id": "c0", "kind": "video"}, token=token)
    path = "/api/logger/trackprogress/" + (
        "" if route == "start" else f"{started['session_id']}/")
    method = "POST" if route == "start" else "PUT"
    response = send(shared.api.client, method, path, body, token)
    if err == ANY_VALUE_OR_JSON:
        rejected = response.json()
        assert response.status_code == 400 and rejected["params"]["err"] in (
            VALUE, "INVALID_JSON"), rejected
    else:
        assert_rejected(response, 400, "CLIENT_ERROR", err, field)
    # Nothing was written: one summary (c0), untouched.
    seen = shared.api.read(learner, ["c0", "c1"])
    assert (seen["c0"]["progress"], seen["c0"]["timeSpent"], seen["c0"]["viewCount"]) == (0, 0, 1)
    assert seen["c1"]["status"] == 0


def test_logger_session_id_in_the_path_is_checked(shared: Shared) -> None:
    token = mint(shared.runtime.secret, "logger-path", ["learner"])
    for bad in ("s" * 257, "a%01b", "a%C2%85b"):
        response = send(shared.api.client, "PUT", f"/api/logger/trackprogress/{bad}/",
                        {"progress_delta": 0.1}, token)
        assert_rejected(response, 400, "CLIENT_ERROR", VALUE, "session_id")


# -- 5. CSV exports (an admin route of the logger family) -----------------------------------

EXPORT_REQUEST: list[Row] = [r for r in PLAIN_BODY if r[0] != "unknown field"] + [
    ("unknown field", _set("bogus", 1), UNKNOWN, "bogus"),
    ("log_type is missing", _without("log_type"), MISSING, "log_type"),
    ("log_type is both", _set("log_type", "both"), VALUE, "log_type"),
    ("log_type is a number", _set("log_type", 1), VALUE, "log_type"),
    ("start is a number", _set("start", 20240101), TYPE, "start"),
    ("start is empty", _set("start", ""), VALUE, "start"),
    ("start is yesterday", _set("start", "yesterday"), VALUE, "start"),
    ("start is 65 characters", _set("start", "2" * 65), VALUE, "start"),
    ("start is before 1970", _set("start", "1969-12-31"), VALUE, "start"),
    ("start leaves the calendar", _set("start", "0001-01-01T00:00+14:00"), VALUE, "start"),
    ("end is 2024-13-01", _set("end", "2024-13-01"), VALUE, "end"),
    ("end has a NUL", _set("end", "2024-01-01\x00"), VALUE, "end"),
    ("end is in the year 9999", _set("end", "9999-12-31"), VALUE, "end"),
    ("end is before start", _set("end", "2023-12-31"), VALUE, "end"),
    ("end is a second before start", _set("end", "2023-12-31T23:59:59"), VALUE, "end"),
]


def _exports(runtime: Runtime) -> int:
    with runtime.read_engine.connect() as conn:
        found: int = conn.execute(select(func.count()).select_from(exports)).scalar_one()
    return found


@pytest.mark.parametrize(("body", "err", "field"), [
    pytest.param(mutate({"log_type": "session", "start": "2024-01-01", "end": "2024-01-31"}),
                 err, field, id=f"exports: {what}")
    for what, mutate, err, field in EXPORT_REQUEST])
def test_export_bad_input_is_a_400_that_names_the_field(
        shared: Shared, body: Any, err: str, field: str) -> None:
    before = _exports(shared.runtime)
    response = send(shared.api.client, "POST", "/api/logger/exports/", body, shared.api.token)
    assert_rejected(response, 400, "CLIENT_ERROR", err, field)
    assert _exports(shared.runtime) == before  # nothing was recorded


def test_the_export_id_in_the_path_is_checked(shared: Shared) -> None:
    for bad in ("e" * 257, "a%01b", "a%C2%85b"):
        for suffix in ("/", "/download/"):
            response = send(shared.api.client, "GET", f"/api/logger/exports/{bad}{suffix}",
                            None, shared.api.token)
            assert_rejected(response, 400, "CLIENT_ERROR", VALUE, "export_id")
