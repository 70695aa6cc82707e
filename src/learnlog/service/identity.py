"""Identity (SPEC §3): the users registry, groups and memberships with roles.

Group kinds: `classroom`, `learnergroup` (inside a classroom: `parent_id`) and `group`
(the group API's). Roles on a group: `admin`, `coach`, `learner`. Who may read whose
records is decided from these rows in one place, `api/access.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, or_, select

from ..domain.errors import NotFound
from ..domain.groups import READER_ROLES, check_parent
from ..domain.keys import partition_of, shared_partition
from ..store.fastsql import Fetch, Plan, fetch_where, param_mark, run_plan
from ..store.schema import group_activities, groups, memberships, quizzes, users
from ..store.uow import BatchUnitOfWork
from .commands import Command, LearnerCommand
from .group_aggregates import queue_member
from .ports import ServiceContext


@dataclass(frozen=True, slots=True)
class PutUser(LearnerCommand):
    dataset: str
    user_id: str
    username: str | None
    full_name: str | None
    kind: str

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        row = {"dataset": self.dataset, "user_id": self.user_id, "username": self.username,
               "full_name": self.full_name, "kind": self.kind}
        uow.records.put(users, partition_of(self.dataset, self.user_id), row)
        return {"userId": self.user_id}


@dataclass(frozen=True, slots=True)
class PutGroup(Command):
    dataset: str
    group_id: str
    kind: str
    name: str
    parent_id: str | None = None

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        parent = (None if self.parent_id is None
                  else uow.records.get(groups, (self.dataset, self.parent_id)))
        check_parent(self.kind, self.parent_id, None if parent is None else parent["kind"])
        uow.records.put(groups, shared_partition(self.dataset), {
            "dataset": self.dataset, "group_id": self.group_id, "kind": self.kind,
            "name": self.name, "parent_id": self.parent_id})
        return {"groupId": self.group_id}


def _group(uow: BatchUnitOfWork, dataset: str, group_id: str) -> dict[str, Any]:
    found = uow.records.get(groups, (dataset, group_id))
    if found is None:
        raise NotFound(f"Group {group_id} is not registered.", code="GROUP_NOT_FOUND",
                       field="groupId")
    return found


@dataclass(frozen=True, slots=True)
class PutMember(LearnerCommand):
    dataset: str
    group_id: str
    user_id: str
    role: str

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        _group(uow, self.dataset, self.group_id)
        uow.records.put(memberships, partition_of(self.dataset, self.user_id), {
            "dataset": self.dataset, "group_id": self.group_id, "user_id": self.user_id,
            "role": self.role})
        queue_member(uow, self.dataset, self.user_id, always=True)
        return {"groupId": self.group_id, "userId": self.user_id, "role": self.role}


@dataclass(frozen=True, slots=True)
class RemoveMember(LearnerCommand):
    dataset: str
    group_id: str
    user_id: str

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        _group(uow, self.dataset, self.group_id)
        pk = (self.dataset, self.group_id, self.user_id)
        if uow.records.get(memberships, pk) is None:
            raise NotFound(f"{self.user_id} is not a member of {self.group_id}.",
                           code="MEMBER_NOT_FOUND", field="userId")
        uow.records.delete(memberships, partition_of(self.dataset, self.user_id), pk)
        queue_member(uow, self.dataset, self.user_id, always=True)
        return {"groupId": self.group_id, "userId": self.user_id, "removed": True}


def queue_group_members(uow: BatchUnitOfWork, dataset: str, group_id: str) -> None:
    """A group's activities changed: refresh every member's figures (once per member, a
    structural change, not a write of progress)."""
    for user_id in uow.group_figures.members_of(dataset, group_id):
        queue_member(uow, dataset, user_id, always=True)


@dataclass(frozen=True, slots=True)
class PutActivity(Command):
    """Give a group an activity: a collection, a content or a registered quiz."""

    dataset: str
    group_id: str
    activity_type: str
    activity_id: str

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        _group(uow, self.dataset, self.group_id)
        if self.activity_type == "Quiz" and uow.records.get(
                quizzes, (self.dataset, self.activity_id)) is None:
            raise NotFound(f"Quiz {self.activity_id} is not registered.",
                           code="QUIZ_NOT_FOUND", field="activityId")
        uow.records.put(group_activities, shared_partition(self.dataset), {
            "dataset": self.dataset, "group_id": self.group_id,
            "activity_type": self.activity_type, "activity_id": self.activity_id})
        queue_group_members(uow, self.dataset, self.group_id)
        return {"groupId": self.group_id, "activity": {"id": self.activity_id,
                                                       "type": self.activity_type}}


@dataclass(frozen=True, slots=True)
class RemoveActivity(Command):
    """Take an activity off a group."""

    dataset: str
    group_id: str
    activity_type: str
    activity_id: str

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        _group(uow, self.dataset, self.group_id)
        pk = (self.dataset, self.group_id, self.activity_type, self.activity_id)
        if uow.records.get(group_activities, pk) is None:
            raise NotFound(f"{self.group_id} has no {self.activity_type} "
                           f"{self.activity_id}.", code="ACTIVITY_NOT_FOUND",
                           field="activityId")
        uow.records.delete(group_activities, shared_partition(self.dataset), pk)
        queue_group_members(uow, self.dataset, self.group_id)
        return {"groupId": self.group_id, "activity": {"id": self.activity_id,
                                                       "type": self.activity_type},
                "removed": True}


def coaches(conn: Connection, dataset: str, reader: str, learner: str) -> bool:
    """Whether `reader` is coach or admin of a group `learner` belongs to, or of the
    classroom of a learner group it belongs to (indexed lookups from both users)."""
    ours = memberships.alias("ours")
    theirs = memberships.alias("theirs")
    led = select(ours.c.group_id).where(
        ours.c.dataset == dataset, ours.c.user_id == reader, ours.c.role.in_(READER_ROLES))
    found = conn.execute(select(theirs.c.group_id).where(
        theirs.c.dataset == dataset, theirs.c.user_id == learner,
        within(theirs.c.group_id, dataset, led)).limit(1)).first()
    return found is not None


def within(group_column: Any, dataset: str, group_ids: Any) -> Any:
    """A condition: the group is one of `group_ids` (a list or a subquery) or a learner
    group inside one of them — a classroom reaches its learner groups' members."""
    inside = select(groups.c.group_id).where(groups.c.dataset == dataset,
                                             groups.c.parent_id.in_(group_ids))
    return or_(group_column.in_(group_ids), group_column.in_(inside))


def leads_plan(dialect: str, dataset: str, reader: str, group_id: str) -> Plan[bool]:
    """Whether `reader` is coach or admin of the group, or of its classroom (a read
    plan, for either driver)."""
    found = yield Fetch(_leads_sql(dialect), (dataset, reader, *READER_ROLES, group_id,
                                              dataset, group_id))
    return bool(found)


@cache
def _leads_sql(dialect: str) -> str:
    mark = param_mark(dialect)
    roles = ", ".join(mark for _ in READER_ROLES)
    return (f"SELECT 1 FROM memberships WHERE dataset = {mark} AND user_id = {mark} "
            f"AND role IN ({roles}) AND (group_id = {mark} OR group_id IN ("
            f"SELECT parent_id FROM groups WHERE dataset = {mark} AND group_id = {mark})) "
            "LIMIT 1")


def teaches(conn: Connection, dataset: str, reader: str, activity_ids: list[str]) -> bool:
    """Whether `reader` is coach or admin of a group that has one of these activities
    (a course, under any of its ids)."""
    taught = select(group_activities.c.group_id).where(
        group_activities.c.dataset == dataset, group_activities.c.activity_id.in_(activity_ids))
    found = conn.execute(select(memberships.c.group_id).where(
        memberships.c.dataset == dataset, memberships.c.user_id == reader,
        memberships.c.role.in_(READER_ROLES),
        memberships.c.group_id.in_(taught.scalar_subquery())).limit(1)).first()
    return found is not None


def member_of_plan(dialect: str, dataset: str, group_id: str, user_id: str) -> Plan[bool]:
    """Whether the user is a member of the group (any role), as a read plan."""
    found = yield fetch_where(dialect, memberships, {
        "dataset": dataset, "group_id": group_id, "user_id": user_id}, ("role",))
    return bool(found)


def group_view(conn: Connection, dataset: str, group_id: str, *, with_members: bool = True
               ) -> dict[str, Any] | None:
    """A group with its activities, and its members and their roles (`with_members`;
    else `members` is empty: a group of 10,000 learners is 10,000 rows)."""
    return run_plan(conn, group_view_plan(conn.dialect.name, dataset, group_id,
                                          with_members=with_members))


def group_view_plan(dialect: str, dataset: str, group_id: str, *, with_members: bool = True
                    ) -> Plan[dict[str, Any] | None]:
    """`group_view` as a read plan (for either driver)."""
    key = {"dataset": dataset, "group_id": group_id}
    found = yield fetch_where(dialect, groups, key, ("group_id", "kind", "name", "parent_id"))
    if not found:
        return None
    members = [] if not with_members else (
        yield Fetch(_ordered_sql(dialect, "memberships", "user_id, role", "user_id"),
                    (dataset, group_id)))
    activities = yield from activities_plan(dialect, dataset, group_id)
    g = found[0]
    return {"groupId": g["group_id"], "kind": g["kind"], "name": g["name"],
            "parentId": g["parent_id"],
            "members": [{"userId": u, "role": r} for u, r in members],
            "activities": [{"id": i, "type": t} for t, i in activities]}


def activities_plan(dialect: str, dataset: str, group_id: str) -> Plan[list[tuple[str, str]]]:
    """A group's activities as (type, id), in that order."""
    found = yield Fetch(_ordered_sql(dialect, "group_activities", "activity_type, activity_id",
                                     "activity_type, activity_id"), (dataset, group_id))
    return [(t, i) for t, i in found]


@cache
def _ordered_sql(dialect: str, table: str, columns: str, order: str) -> str:
    """A group's rows of `table` (by dataset and group), in `order`."""
    mark = param_mark(dialect)
    return (f"SELECT {columns} FROM {table} WHERE dataset = {mark} AND group_id = {mark} "
            f"ORDER BY {order}")
