"""The viewer family (SPEC §4.1): views, assessments, summaries, structures, enrolments."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

import jwt
import orjson
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response

from ..bootstrap import Runtime
from ..domain import assessment as rules
from ..domain.certificates import certified, parse_template
from ..domain.collection import parse_nodes
from ..domain.dates import in_order
from ..domain.enrolment import ContextRecord
from ..domain.errors import InvalidInput, LearnlogError, NotFound
from ..domain.ids import check_id
from ..domain.keys import SummaryKey, enrolment_context, resolve_key
from ..service import reads
from ..service import viewer as svc
from ..service.commands import Command
from . import models as m
from . import structs as s
from .access import may_read, may_write, require_admin
from .auth import Principal
from .common import caller, lean_caller, runtime
from .envelope import Envelope, EnvelopeResponse, ok
from .lean import Answer, Call, LeanRoute, route
from .lean import ok as lean_ok

router = APIRouter()


LEAN: list[LeanRoute] = []  # the hot routes of this family (lean.py serves them)


def _msgid(body: m.Wrapper) -> str | None:
    return None if body.params is None else body.params.msgid


def _keys(principal: Principal, req: s.ViewKeys) -> svc.Keys:
    may_write(principal, req.userId)
    return svc.Keys(principal.dataset, req.userId, req.contentId, req.collectionId, req.contextId)


def _update(keys: svc.Keys, req: s.ViewUpdate, field: str = "request") -> svc.UpdateView:
    if req.progressDetails is not None:
        s.storable(req.progressDetails, f"{field}.progressDetails")
    return svc.UpdateView(keys, req.timespent, req.progress, req.progressDetails)


def _submit(keys: svc.Keys, req: s.AssessmentSubmit, field: str = "request"
            ) -> svc.SubmitAssessment:
    loose, checked = s.assessments(req.assessments, f"{field}.assessments")
    groups = [svc.AttemptInput(group.attemptId, group.assessmentTs,
                               tuple(_response(*event) for event in events))
              for group, events in checked]
    if loose:
        groups.insert(0, svc.AttemptInput(req.attemptId, req.assessmentTs,
                                          tuple(_response(*event) for event in loose)))
    return svc.SubmitAssessment(keys, tuple(groups))


def _response(raw: dict[str, Any], event: s.AssessEvent) -> rules.ItemResponse:
    """An item response from an ASSESS event; its free fields are kept as sent."""
    data = event.edata
    item = {k: v for k, v in raw["edata"]["item"].items() if v is not None}
    extra = {k: v for k, v in raw["edata"].items()
             if k not in ("item", "score") and v is not None}
    return rules.ItemResponse(data.item.id, event.ets, data.score, data.item.maxscore, item,
                              extra)


async def _written(call: Call, command: Command) -> Answer:
    """Apply a write command durably and answer with its result."""
    msgid = call.body.msgid if isinstance(call.body, s.Wrapper) else None
    return lean_ok(call.route, await call.runtime.writer.submit(command), msgid)


@route(LEAN, "POST", "/v1/view/start", "api.view.start", s.StartRequest)
async def view_start(call: Call) -> Answer:
    """Start a view: creates the summary if absent and opens a session."""
    req: s.ViewKeys = call.body.request
    return await _written(call, svc.StartView(_keys(lean_caller(call, write=True), req)))


@route(LEAN, "POST", "/v1/view/update", "api.view.update", s.UpdateRequest)
async def view_update(call: Call) -> Answer:
    """Add time and progress to a started view."""
    req: s.ViewUpdate = call.body.request
    return await _written(call, _update(_keys(lean_caller(call, write=True), req), req))


@route(LEAN, "POST", "/v1/view/update/validate", "api.view.update.validate", s.UpdateRequest)
async def view_update_validate(call: Call) -> Answer:
    """Validate and authorise a view/update body and write nothing (the edge's own cost)."""
    body: s.UpdateRequest = call.body
    _update(_keys(lean_caller(call, write=True), body.request), body.request)
    return lean_ok(call.route, {body.request.contentId: "VALID"}, body.msgid)


@route(LEAN, "POST", "/v1/view/end", "api.view.end", s.EndRequest)
async def view_end(call: Call) -> Answer:
    """End a view: the content is completed."""
    req: s.ViewKeys = call.body.request
    return await _written(call, svc.EndView(_keys(lean_caller(call, write=True), req)))


@route(LEAN, "POST", "/v1/assessment/submit", "api.assessment.submit", s.SubmitRequest)
async def assessment_submit(call: Call) -> Answer:
    """Record an assessment attempt; the content is completed."""
    req: s.AssessmentSubmit = call.body.request
    return await _written(call, _submit(_keys(lean_caller(call, write=True), req), req))


@route(LEAN, "POST", "/v1/events", "api.events", s.EventsRequest)
async def events(call: Call) -> Answer:
    """Up to 1,000 view and assessment events, validated first, applied all or nothing."""
    body: s.EventsRequest = call.body
    principal = lean_caller(call, write=True)
    commands: list[Any] = []
    for i, event in enumerate(body.request.events):
        where = f"request.events[{i}]"
        try:
            keys = _keys(principal, event)
        except LearnlogError as refused:
            refused.field = f"{where}.userId"
            raise
        if isinstance(event, s.UpdateEvent):
            commands.append(_update(keys, event, where))
        elif isinstance(event, s.SubmitEvent):
            commands.append(_submit(keys, event, where))
        elif isinstance(event, s.EndEvent):
            commands.append(svc.EndView(keys))
        else:
            commands.append(svc.StartView(keys))
    try:
        result = await call.runtime.writer.submit(svc.Many(tuple(commands)))
    except svc.EventFailed as failed:
        cause = failed.error
        inner = (cause.field or "request").removeprefix("request").lstrip(".")
        field = f"request.events[{failed.index}]" + (f".{inner}" if inner else "")
        raise type(cause)(f"Event {failed.index} could not be applied, so none was: "
                          f"{cause.message}", code=cause.code, field=field) from cause
    return lean_ok(call.route, result, body.msgid)


async def _read_keys(rt: Runtime, principal: Principal, req: s.ViewRead
                     ) -> list[SummaryKey]:
    await may_read(rt, principal, req.userId)
    return [resolve_key(rt.ctx.mode, dataset=principal.dataset, user_id=req.userId,
                        content_id=c, collection_id=req.collectionId, context_id=req.contextId)
            for c in dict.fromkeys(req.contentId)]


@route(LEAN, "POST", "/v1/view/read", "api.view.read", s.ReadRequest)
async def view_read(call: Call) -> Answer:
    """Status, progress and scores of contents (unknown ones are status 0)."""
    rt = call.runtime
    body: s.ReadRequest = call.body
    req = body.request
    principal = lean_caller(call, write=False)
    await may_read(rt, principal, req.userId)
    asked = list(dict.fromkeys(req.contentId))
    cache = rt.cache
    if cache is None:
        contents: Any = await rt.read_answer(
            principal.dataset, req.userId, ("view", tuple(asked), req.collectionId,
                                            req.contextId),
            lambda dialect: reads.view_contents_plan(
                dialect, rt.ctx.mode, principal.dataset, req.userId, asked, req.collectionId,
                req.contextId))
    else:
        keys = [resolve_key(rt.ctx.mode, dataset=principal.dataset, user_id=req.userId,
                            content_id=c, collection_id=req.collectionId,
                            context_id=req.contextId) for c in asked]
        fields = await rt.cached_view_fields(cache, keys)
        contents = [reads.view_row(k.content_id, fields[k]) for k in keys]
    return lean_ok(call.route, {
        "userId": req.userId, "collectionId": req.collectionId, "contextId": req.contextId,
        "contents": contents}, body.msgid)


@route(LEAN, "POST", "/v1/assessment/read", "api.assessment.read", s.ReadRequest)
async def assessment_read(call: Call) -> Answer:
    """Best scores, attempt counts and the latest 25 attempts of contents."""
    rt = call.runtime
    body: s.ReadRequest = call.body
    req = body.request
    keys = await _read_keys(rt, lean_caller(call, write=False), req)
    contents = await rt.read_fast(lambda conn: reads.assessment_rows(conn, keys))
    return lean_ok(call.route, {"userId": req.userId, "collectionId": req.collectionId,
                           "contextId": req.contextId, "contents": contents}, body.msgid)


async def _summaries(rt: Runtime, principal: Principal, user_id: str,
                     collection_id: str | None = None,
                     context_id: str | None = None) -> list[dict[str, Any]]:
    return await rt.read_plan(lambda dialect: reads.enrolment_summaries_plan(
        dialect, rt.ctx.mode, rt.structures, principal.dataset, user_id, collection_id,
        context_id))


@route(LEAN, "GET", "/v1/summary/list/{userId}", "api.summary.list", None)
async def summary_list(call: Call) -> Answer:
    """Every enrolment of a learner with its progress, statuses, scores, certificates."""
    principal = lean_caller(call, write=False)
    user_id = call.params["userId"]
    check_id(user_id, "userId")
    await may_read(call.runtime, principal, user_id, "userId")
    rt = call.runtime
    summary = await rt.read_answer(
        principal.dataset, user_id, ("summary",), lambda dialect: reads.enrolment_summaries_plan(
            dialect, rt.ctx.mode, rt.structures, principal.dataset, user_id))
    return lean_ok(call.route, {"summary": summary})


@route(LEAN, "POST", "/v1/summary/read", "api.summary.read", s.SummaryReadRequest)
async def summary_read(call: Call) -> Answer:
    """One enrolment's summary."""
    principal = lean_caller(call, write=False)
    body: s.SummaryReadRequest = call.body
    req = body.request
    await may_read(call.runtime, principal, req.userId)
    found = await _summaries(call.runtime, principal, req.userId, req.collectionId,
                             enrolment_context(req.collectionId, req.contextId))
    if not found:
        raise NotFound("No enrolment for this user, collection and context.",
                       code="ENROLMENT_NOT_FOUND", field="request.collectionId")
    return lean_ok(call.route, found[0], body.msgid)


@router.delete("/v1/summary/delete/{userId}", name="api.summary.delete", response_model=Envelope)
async def summary_delete(
    request: Request, userId: str, all: bool = Query(False),
    body: Annotated[m.DeleteRequest | None, Body()] = None,
) -> EnvelopeResponse:
    """Erase a learner's records: all of them (?all=true) or one enrolment's."""
    principal = caller(request, write=True)
    check_id(userId, "userId")
    may_write(principal, userId, "userId")
    if all:
        command = svc.EraseSummaries(principal.dataset, userId, None, None)
    elif body is None:
        raise InvalidInput("Send ?all=true or a body {request: {userId, collectionId}}.",
                           code="MANDATORY_PARAMETER_MISSING", field="request.collectionId")
    else:
        req = body.request
        if req.userId != userId:
            raise InvalidInput("request.userId must match the path.",
                               code="INVALID_PARAMETER_VALUE", field="request.userId")
        command = svc.EraseSummaries(principal.dataset, userId, req.collectionId, req.contextId)
    await runtime(request).writer.submit(command)
    return ok("api.summary.delete", {})


@router.get("/v1/summary/download/{userId}", name="api.summary.download",
            response_model=Envelope)
async def summary_download(request: Request, userId: str,
                           format: str = Query("json", pattern="^(csv|json)$")) -> EnvelopeResponse:
    """Where to download a learner's summaries (served to the same caller only)."""
    principal = caller(request, write=False)
    check_id(userId, "userId")
    await may_read(runtime(request), principal, userId, "userId")
    return ok("api.summary.download",
              {"url": f"/v1/summary/download/{userId}/{userId}_viewer_summary.{format}"})


@router.get("/v1/summary/download/{userId}/{filename}", name="api.summary.file",
            response_model=None)
async def summary_file(request: Request, userId: str, filename: str) -> Response:
    """The download itself: JSON or CSV of every enrolment summary."""
    principal = caller(request, write=False)
    check_id(userId, "userId")
    await may_read(runtime(request), principal, userId, "userId")
    stem = f"{userId}_viewer_summary."
    if not filename.startswith(stem) or filename[len(stem):] not in ("csv", "json"):
        raise NotFound("No such download.", code="NOT_FOUND", field="filename")
    found = await _summaries(runtime(request), principal, userId)
    if filename.endswith(".json"):
        return Response(orjson.dumps(found), media_type="application/json")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["userId", "collectionId", "contextId", "enrolledDate", "active",
                     "status", "progress", "completedCount", "completedOn", "certificates"])
    for row in found:
        writer.writerow([row["userId"], row["collectionId"], row["contextId"],
                         row["enrolledDate"], row["active"], row["status"], row["progress"],
                         row["completedCount"], row["completedOn"],
                         ";".join(c["name"] for c in row["issuedCertificates"])])
    return Response(out.getvalue(), media_type="text/csv")


# -- admin routes --------------------------------------------------------------------------

@router.put("/v1/collection/{collectionId}", name="api.collection.put", response_model=Envelope)
async def collection_put(request: Request, collectionId: str,
                         body: m.CollectionRequest) -> EnvelopeResponse:
    """Create or replace a collection's structure as a new version."""
    principal = caller(request, write=True)
    require_admin(principal)
    check_id(collectionId, "collectionId")
    req = body.request
    nodes = parse_nodes([n.model_dump(exclude_none=True) for n in req.children])
    templates = tuple(parse_template(t.model_dump(), f"request.certificates[{i}]")
                      for i, t in enumerate(req.certificates or ()))
    command = svc.PutCollection(principal.dataset, collectionId, req.name, req.description,
                                req.logo, nodes, templates)
    return ok("api.collection.put", await runtime(request).writer.submit(command))


@router.get("/v1/collection/{collectionId}", name="api.collection.get", response_model=Envelope)
async def collection_get(request: Request, collectionId: str) -> EnvelopeResponse:
    """A collection's current structure."""
    from ..store.rows import node_to_json, template_to_json

    rt = runtime(request)
    principal = caller(request, write=False)
    check_id(collectionId, "collectionId")

    found = await rt.read(
        lambda conn: reads.collection_records(conn, principal.dataset, [collectionId]))
    record = found.get(collectionId)
    if record is None:
        raise NotFound(f"Collection {collectionId} is not registered.",
                       code="COLLECTION_NOT_FOUND", field="collectionId")
    return ok("api.collection.get", {
        "collectionId": record.collection_id, "name": record.name,
        "description": record.description, "logo": record.logo,
        "version": record.structure.version, "leafNodesCount": record.structure.leaf_count,
        "requiredCount": len(record.structure.required),
        "certificates": [template_to_json(t) for t in record.templates],
        "children": [node_to_json(n) for n in record.structure.children]})


@router.put("/v1/context/{contextId}", name="api.context.put", response_model=Envelope)
async def context_put(request: Request, contextId: str,
                      body: m.ContextRequest) -> EnvelopeResponse:
    """Create or replace a context (a batch, a program, a class) of a collection."""
    principal = caller(request, write=True)
    require_admin(principal)
    check_id(contextId, "contextId")
    req = body.request
    if not in_order(req.startDate, req.endDate):
        raise InvalidInput("endDate is before startDate.", code="INVALID_PARAMETER_VALUE",
                           field="request.endDate")
    record = ContextRecord(principal.dataset, contextId, req.collectionId, req.name,
                           req.startDate, req.endDate)
    return ok("api.context.put", await runtime(request).writer.submit(svc.PutContext(record)))


@router.post("/v1/enrol", name="api.enrol", response_model=Envelope)
async def enrol(request: Request, body: m.EnrolRequest) -> EnvelopeResponse:
    """Enrol a learner (a learner may enrol itself)."""
    principal = caller(request, write=True)
    req = body.request
    may_write(principal, req.userId)
    result = await runtime(request).writer.submit(
        svc.Enrol(principal.dataset, req.userId, req.collectionId, req.contextId))
    return ok("api.enrol", result, _msgid(body))


@router.post("/v1/unenrol", name="api.unenrol", response_model=Envelope)
async def unenrol(request: Request, body: m.EnrolRequest) -> EnvelopeResponse:
    """Mark an enrolment inactive; its progress is kept."""
    principal = caller(request, write=True)
    req = body.request
    may_write(principal, req.userId)
    result = await runtime(request).writer.submit(
        svc.Unenrol(principal.dataset, req.userId, req.collectionId, req.contextId))
    return ok("api.unenrol", result, _msgid(body))


@router.get("/v1/certificate/verify/{token}", name="api.certificate.verify",
            response_model=Envelope)
async def certificate_verify(request: Request, token: str) -> EnvelopeResponse:
    """Check a certificate token's signature and show what it certifies (no login needed)."""
    rt = runtime(request)
    try:
        claims = jwt.decode(token, rt.secret, algorithms=["HS256"])
    except jwt.InvalidTokenError as error:
        raise InvalidInput("The certificate token does not verify.",
                           code="CERTIFICATE_INVALID", field="token") from error
    return ok("api.certificate.verify", {"valid": True, "certificate": certified(claims)})
