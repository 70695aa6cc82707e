"""Group aggregates (SPEC §4.2, Sunbird's `/data/group/*`): a group's figures per activity
and, for one activity, each member's. Admins and the group's coaches and group admins read
every member's row; a learner member reads the group's figures and its own row only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..domain.errors import Forbidden, InvalidInput, NotFound
from ..domain.groups import check_activity_type
from ..service import group_aggregates as svc
from ..service.identity import group_view, leads, member_of
from . import models as m
from .envelope import Envelope, EnvelopeResponse, ok
from .viewer import caller, check_id, runtime

router = APIRouter()


def _mandatory(value: str | None, code: str, name: str, label: str) -> str:
    if value is None:
        raise InvalidInput(f"{label} is mandatory.", code=code, field=f"request.{name}")
    check_id(value, f"request.{name}")
    return value


def _type(value: str | None, field: str) -> str:
    if value is None:
        raise InvalidInput("ActivityType is mandatory.", code="ACTIVITY_TYPE_MISSING",
                           field=field)
    return check_activity_type(value, field)


def _pick(agg: list[dict[str, Any]], fields: list[str] | None) -> list[dict[str, Any]]:
    return agg if fields is None else [a for a in agg if a["metric"] in fields]


async def _group(request: Request, group_id: str, *, with_members: bool = True
                 ) -> tuple[Any, dict[str, Any], bool]:
    """The caller, the group (its members too when `with_members`) and whether the
    caller reads every member's row."""
    principal = caller(request, write=False)
    rt = runtime(request)
    found = await rt.read(lambda conn: group_view(conn, principal.dataset, group_id,
                                                  with_members=with_members))
    if found is None:
        raise NotFound(f"Group {group_id} is not registered.", code="GROUP_NOT_FOUND",
                       field="request.groupId")
    if principal.is_admin or await rt.read(
            lambda conn: leads(conn, principal.dataset, principal.user_id, group_id)):
        return principal, found, True
    if await rt.read(lambda conn: member_of(conn, principal.dataset, group_id,
                                            principal.user_id)):
        return principal, found, False
    raise Forbidden("Only the group's members read its figures.", code="FORBIDDEN",
                    field="request.groupId")


@router.post("/data/group/agg", name="api.group.agg", response_model=Envelope)
async def group_agg(request: Request, body: m.GroupAggRequest) -> EnvelopeResponse:
    """A group's figures for its activities (or the ones named), each metric with when it
    last changed."""
    req = body.request
    group_id = _mandatory(req.groupId, "GROUP_ID_MISSING", "groupId", "GroupId")
    named = None if req.activities is None else [
        {"id": _mandatory(a.id, "ACTIVITY_ID_MISSING", f"activities[{i}].id", "ActivityId"),
         "type": _type(a.type, f"request.activities[{i}].type")}
        for i, a in enumerate(req.activities)]
    principal, found, _ = await _group(request, group_id, with_members=False)
    wanted = found["activities"] if named is None else named
    views = await runtime(request).read(lambda conn: [
        svc.activity_view(conn, principal.dataset, group_id, a["type"], a["id"])
        for a in wanted])
    return ok("api.group.agg", {"groupId": group_id, "activity": [
        {**v, "agg": _pick(v["agg"], req.fields)} for v in views]})


@router.post("/data/group/activity/agg", name="api.group.activity.agg",
             response_model=Envelope)
async def group_activity_agg(request: Request,
                             body: m.GroupActivityAggRequest) -> EnvelopeResponse:
    """One activity of a group: the group's figures and each member's (a learner member
    sees its own row only)."""
    req = body.request
    group_id = _mandatory(req.groupId, "GROUP_ID_MISSING", "groupId", "GroupId")
    activity_id = _mandatory(req.activityId, "ACTIVITY_ID_MISSING", "activityId", "ActivityId")
    activity_type = _type(req.activityType, "request.activityType")
    principal, found, everyone = await _group(request, group_id)
    members = [x for x in found["members"] if everyone or x["userId"] == principal.user_id]
    rt = runtime(request)
    view, rows = await rt.read(lambda conn: (
        svc.activity_view(conn, principal.dataset, group_id, activity_type, activity_id),
        svc.member_rows(conn, rt.ctx, principal.dataset, activity_type, activity_id,
                        [x["userId"] for x in members])))
    return ok("api.group.activity.agg", {"groupId": group_id, "activity": {
        **view, "agg": _pick(view["agg"], req.fields),
        "members": [{"id": x["userId"], "role": x["role"],
                     "agg": _pick(rows[x["userId"]], req.fields)} for x in members]}})
