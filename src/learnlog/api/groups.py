"""Group aggregates (SPEC §4.2, Sunbird's `/data/group/*`): a group's figures per activity
and, for one activity, each member's. Admins and the group's coaches and group admins read
every member's row; a learner member reads the group's figures and its own row only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..domain.errors import InvalidInput, NotFound
from ..domain.groups import check_activity_type
from ..domain.ids import check_id
from ..service import group_aggregates as svc
from ..service.identity import activities_plan, group_view_plan
from ..store.fastsql import Plan
from . import models as m
from .access import reads_every_member_plan
from .auth import Principal
from .common import caller, runtime
from .envelope import Envelope, EnvelopeResponse, ok

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


def _activity(a: Any, i: int) -> tuple[str, str]:
    """A named activity as (type, id), its id checked first."""
    activity_id = _mandatory(a.id, "ACTIVITY_ID_MISSING", f"activities[{i}].id", "ActivityId")
    return _type(a.type, f"request.activities[{i}].type"), activity_id


def _pick(agg: list[dict[str, Any]], fields: list[str] | None) -> list[dict[str, Any]]:
    return agg if fields is None else [a for a in agg if a["metric"] in fields]


async def _group(request: Request, group_id: str
                 ) -> tuple[Principal, dict[str, Any], bool]:
    """The caller, the group with its members and whether the caller reads every
    member's row: one read plan, on the event loop."""
    principal = caller(request, write=False)

    def plan(dialect: str) -> Plan[tuple[dict[str, Any], bool]]:
        found = yield from group_view_plan(dialect, principal.dataset, group_id)
        if found is None:
            raise _unknown(group_id)
        return found, (yield from reads_every_member_plan(dialect, principal, group_id))

    found, everyone = await runtime(request).read_plan(plan)
    return principal, found, everyone


def _unknown(group_id: str) -> NotFound:
    return NotFound(f"Group {group_id} is not registered.", code="GROUP_NOT_FOUND",
                    field="request.groupId")


@router.post("/data/group/agg", name="api.group.agg", response_model=Envelope)
async def group_agg(request: Request, body: m.GroupAggRequest) -> EnvelopeResponse:
    """A group's figures for its activities (or the ones named), each metric with when it
    last changed. A dashboard polls this: the group and its figures come in one query
    (an admin naming its activities waits for nothing else), on the event loop."""
    req = body.request
    group_id = _mandatory(req.groupId, "GROUP_ID_MISSING", "groupId", "GroupId")
    named = None if req.activities is None else [_activity(a, i)
                                                 for i, a in enumerate(req.activities)]
    principal = caller(request, write=False)

    def plan(dialect: str) -> Plan[list[dict[str, Any]]]:
        held = yield from svc.group_figures_plan(dialect, principal.dataset, group_id)
        if held is None:
            raise _unknown(group_id)
        yield from reads_every_member_plan(dialect, principal, group_id)
        wanted = named if named is not None else (
            yield from activities_plan(dialect, principal.dataset, group_id))
        return svc.activity_views(held, wanted)

    views = await runtime(request).read_plan(plan)
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
