"""Who may do what (SPEC §3): every refusal a route makes from the caller's identity,
for every route family. Routes authenticate the caller (`auth.py`), then call these.

- A learner reads and writes its own records only.
- A coach (or group admin) reads the records of the members of its groups; writes none.
- A learner member of a group reads the group's figures and its own row of them.
- A course's statistics: the dataset's admins, and the coaches and group admins of a
  group that has the course as an activity.
- An admin (or `service`) token does everything inside its dataset; only it reaches
  the admin routes.
- Sync: admin and service tokens every partition of their dataset, a device token the
  partitions it names, no one else anything.
- Nothing crosses datasets: every query is scoped by the caller's dataset, and a query
  naming another dataset is refused.
Roles come from token claims (`admin`, `service`, `device`) and from group memberships
(coach, group admin), looked up only when a caller reads someone else's records.

Refusals that depend on the data a command changes, not on who calls, are decided where
that data is read, in the same transaction: a coach quiz that is not assigned to the
learner, closed or already submitted (`service/quizzes.py`, `service/logger.py`), a
visitor starting a quiz (`service/visitors.py`), a pushed or pulled partition outside the
grant `sync_grant` gave (`sync/server.py`). Failed authentication (401) is `auth.py`'s.
"""

from __future__ import annotations

from ..bootstrap import Runtime
from ..domain.errors import Forbidden
from ..service.identity import coaches, leads_plan, member_of_plan, teaches
from ..store.fastsql import Plan
from ..sync.server import Grant
from .auth import Principal


def _refuse(verb: str, field: str) -> Forbidden:
    return Forbidden(f"You may not {verb} records of another user.", code="FORBIDDEN",
                     field=field)


def may_write(principal: Principal, user_id: str, field: str = "request.userId") -> None:
    """Writes: the learner itself, or an admin of the dataset."""
    if principal.user_id != user_id and not principal.is_admin:
        raise _refuse("write", field)


async def may_read(rt: Runtime, principal: Principal, user_id: str,
                   field: str = "request.userId") -> None:
    """Reads: the learner itself, an admin of the dataset, or a coach of its groups."""
    if principal.user_id == user_id or principal.is_admin:
        return
    if not await rt.read(lambda conn: coaches(conn, principal.dataset, principal.user_id,
                                              user_id)):
        raise _refuse("read", field)


async def may_read_group(rt: Runtime, principal: Principal, group_id: str,
                         field: str = "group_id") -> None:
    """Reading a group's records: an admin of the dataset, or a coach or group admin of
    the group (or of its classroom)."""
    if principal.is_admin:
        return
    if not await rt.read_plan(lambda dialect: leads_plan(dialect, principal.dataset,
                                                      principal.user_id, group_id)):
        raise Forbidden("Only the group's coaches and admins may read its records.",
                        code="FORBIDDEN", field=field)


def require_admin(principal: Principal) -> None:
    """Admin routes: admins (and services) of the dataset only."""
    if not principal.is_admin:
        raise Forbidden("This route is for admins of the dataset.", code="FORBIDDEN")


def reads_every_member_plan(dialect: str, principal: Principal, group_id: str
                            ) -> Plan[bool]:
    """Reading a group's figures, as a read plan: True when the caller reads every
    member's row (an admin, or a coach or group admin of the group or its classroom),
    False when only its own (a member); refused otherwise."""
    if principal.is_admin or (yield from leads_plan(dialect, principal.dataset,
                                                    principal.user_id, group_id)):
        return True
    if (yield from member_of_plan(dialect, principal.dataset, group_id, principal.user_id)):
        return False
    raise Forbidden("Only the group's members read its figures.", code="FORBIDDEN",
                    field="request.groupId")


async def listed_user(rt: Runtime, principal: Principal, user_id: str | None,
                      group_id: str | None, dataset: str | None) -> str | None:
    """Listing logger rows: whose rows the caller lists (None: every learner's the other
    filters allow). A named dataset must be the caller's, a group needs `may_read_group`,
    a named learner `may_read`; with neither, a non-admin lists its own rows."""
    if dataset is not None and dataset != principal.dataset:
        raise Forbidden("Your token is for another dataset.", code="FORBIDDEN",
                        field="dataset")
    if group_id is not None:
        await may_read_group(rt, principal, group_id)
    if user_id is not None:
        await may_read(rt, principal, user_id, "user_id")
        return user_id
    if not principal.is_admin and group_id is None:
        return principal.user_id
    return None


async def may_read_course_stats(rt: Runtime, principal: Principal,
                                course_ids: list[str]) -> None:
    """A course's statistics (`course_ids`: the forms of its id): its staff only, the
    dataset's admins and the coaches and group admins of a group that has it as an
    activity."""
    if principal.is_admin:
        return
    if not await rt.read(lambda conn: teaches(conn, principal.dataset, principal.user_id,
                                              course_ids)):
        raise Forbidden("Only the course's staff may read its statistics.",
                        code="FORBIDDEN", field="course_id")


def sync_grant(principal: Principal) -> Grant:
    """What a caller may sync: admins and services all of their dataset, a device its
    token's partitions, nobody else anything."""
    if principal.is_admin:
        return Grant(principal.dataset, None)
    if "device" in principal.roles:
        return Grant(principal.dataset, principal.partitions)
    raise Forbidden("Only admin, service and device tokens may sync.", code="FORBIDDEN",
                    field="authorization")
