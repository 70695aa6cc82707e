"""Identity routes (SPEC §3): register users, groups (classrooms, learner groups, groups)
and memberships with roles. Writes are for admins of the dataset; a group's coaches and
group admins may read it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..domain.errors import Forbidden, NotFound
from ..domain.groups import READER_ROLES
from ..service import identity as svc
from . import models as m
from .access import require_admin
from .envelope import Envelope, EnvelopeResponse, ok
from .viewer import caller, check_id, runtime

router = APIRouter()


@router.put("/v1/users/{userId}", name="api.user.put", response_model=Envelope)
async def user_put(request: Request, userId: str, body: m.UserRequest) -> EnvelopeResponse:
    """Register or replace a user: username, full name, kind (admins only)."""
    principal = caller(request, write=True)
    require_admin(principal)
    check_id(userId, "userId")
    req = body.request
    return ok("api.user.put", await runtime(request).writer.submit(svc.PutUser(
        principal.dataset, userId, req.username, req.fullName, req.kind)))


@router.put("/v1/groups/{groupId}", name="api.group.put", response_model=Envelope)
async def group_put(request: Request, groupId: str, body: m.GroupRequest) -> EnvelopeResponse:
    """Create or replace a group; a learnergroup names its classroom in parentId."""
    principal = caller(request, write=True)
    require_admin(principal)
    check_id(groupId, "groupId")
    req = body.request
    return ok("api.group.put", await runtime(request).writer.submit(svc.PutGroup(
        principal.dataset, groupId, req.kind, req.name, req.parentId)))


@router.get("/v1/groups/{groupId}", name="api.group.get", response_model=Envelope)
async def group_get(request: Request, groupId: str) -> EnvelopeResponse:
    """A group and its members (admins, and the group's coaches and group admins)."""
    principal = caller(request, write=False)
    check_id(groupId, "groupId")
    found = await runtime(request).read(
        lambda conn: svc.group_view(conn, principal.dataset, groupId))
    if found is None:
        raise NotFound(f"Group {groupId} is not registered.", code="GROUP_NOT_FOUND",
                       field="groupId")
    readers = {x["userId"] for x in found["members"] if x["role"] in READER_ROLES}
    if not principal.is_admin and principal.user_id not in readers:
        raise Forbidden("Only the group's coaches and admins may read it.", code="FORBIDDEN")
    return ok("api.group.get", found)


@router.put("/v1/groups/{groupId}/members/{userId}", name="api.group.member.put",
            response_model=Envelope)
async def member_put(request: Request, groupId: str, userId: str,
                     body: m.MemberRequest) -> EnvelopeResponse:
    """Add a member to a group, or change its role (admin, coach, learner)."""
    principal = caller(request, write=True)
    require_admin(principal)
    check_id(groupId, "groupId")
    check_id(userId, "userId")
    return ok("api.group.member.put", await runtime(request).writer.submit(svc.PutMember(
        principal.dataset, groupId, userId, body.request.role)))


@router.delete("/v1/groups/{groupId}/members/{userId}", name="api.group.member.delete",
               response_model=Envelope)
async def member_delete(request: Request, groupId: str, userId: str) -> EnvelopeResponse:
    """Remove a member from a group."""
    principal = caller(request, write=True)
    require_admin(principal)
    check_id(groupId, "groupId")
    check_id(userId, "userId")
    return ok("api.group.member.delete", await runtime(request).writer.submit(
        svc.RemoveMember(principal.dataset, groupId, userId)))
