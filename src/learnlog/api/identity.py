"""Identity routes (SPEC §3): register users, groups (classrooms, learner groups, groups)
and memberships with roles. Writes are for admins of the dataset; a group's coaches and
group admins may read it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..domain.errors import NotFound
from ..domain.groups import check_activity_type
from ..domain.ids import check_id
from ..service import identity as svc
from ..service import quizzes
from . import models as m
from .access import may_read_group, require_admin
from .common import caller, runtime
from .envelope import Envelope, EnvelopeResponse, ok

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
    await may_read_group(runtime(request), principal, groupId, "groupId")
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


@router.put("/v1/groups/{groupId}/activities/{activityType}/{activityId}",
            name="api.group.activity.put", response_model=Envelope)
async def activity_put(request: Request, groupId: str, activityType: str,
                       activityId: str) -> EnvelopeResponse:
    """Give a group an activity: a `Collection`, a `Content` or a registered `Quiz`
    (admins only; no body)."""
    principal = caller(request, write=True)
    require_admin(principal)
    return ok("api.group.activity.put", await runtime(request).writer.submit(
        svc.PutActivity(principal.dataset, *_activity(groupId, activityType, activityId))))


def _activity(group_id: str, activity_type: str, activity_id: str) -> tuple[str, str, str]:
    check_id(group_id, "groupId")
    check_id(activity_id, "activityId")
    return group_id, check_activity_type(activity_type, "activityType"), activity_id


@router.delete("/v1/groups/{groupId}/activities/{activityType}/{activityId}",
               name="api.group.activity.delete", response_model=Envelope)
async def activity_delete(request: Request, groupId: str, activityType: str,
                          activityId: str) -> EnvelopeResponse:
    """Take an activity off a group (admins only)."""
    principal = caller(request, write=True)
    require_admin(principal)
    return ok("api.group.activity.delete", await runtime(request).writer.submit(
        svc.RemoveActivity(principal.dataset, *_activity(groupId, activityType, activityId))))


@router.put("/v1/quizzes/{quizId}", name="api.quiz.put", response_model=Envelope)
async def quiz_put(request: Request, quizId: str, body: m.QuizRequest) -> EnvelopeResponse:
    """Create or replace a coach quiz: its title, whether it is open (`active`) and the
    groups it is assigned to (admins only). Learners of those groups take it through
    `POST /api/logger/trackprogress/` with `quiz_id`."""
    principal = caller(request, write=True)
    require_admin(principal)
    check_id(quizId, "quizId")
    req = body.request
    return ok("api.quiz.put", await runtime(request).writer.submit(quizzes.PutQuiz(
        principal.dataset, quizId, req.title, req.active, tuple(dict.fromkeys(req.groupIds)))))


@router.get("/v1/quizzes/{quizId}", name="api.quiz.get", response_model=Envelope)
async def quiz_get(request: Request, quizId: str) -> EnvelopeResponse:
    """A quiz: title, state and groups (admins only)."""
    principal = caller(request, write=False)
    require_admin(principal)
    check_id(quizId, "quizId")
    found = await runtime(request).read(
        lambda conn: quizzes.quiz_view(conn, principal.dataset, quizId))
    if found is None:
        raise NotFound(f"Quiz {quizId} is not registered.", code="QUIZ_NOT_FOUND",
                       field="quizId")
    return ok("api.quiz.get", found)
