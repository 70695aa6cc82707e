"""The one permission policy of learnlog (SPEC §3), for every route family.

- A learner reads and writes its own records only.
- A coach (or group admin) reads the records of the members of its groups; writes none.
- An admin (or `service`) token does everything inside its dataset.
- Nothing crosses datasets: every query is scoped by the caller's dataset.
Roles come from token claims (`admin`, `service`) and from group memberships (coach,
group admin), looked up only when a caller reads someone else's records.
"""

from __future__ import annotations

from ..bootstrap import Runtime
from ..domain.errors import Forbidden
from ..service.identity import coaches, leads_plan
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
