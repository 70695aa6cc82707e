"""Coach quizzes (SPEC §4.3, Kolibri's Exam): a quiz assigned to groups, open while active.

A learner may take a quiz that is active and assigned to a group it belongs to (a learner
group counts for its classroom's quizzes too). Its work is a try with a negative level
and item attempts; once submitted (progress 1) the try takes no more work (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select

from ..domain.errors import Forbidden, NotFound
from ..domain.keys import shared_partition
from ..store.schema import groups, memberships, quizzes
from ..store.uow import BatchUnitOfWork
from .commands import Command
from .ports import ServiceContext


@dataclass(frozen=True, slots=True)
class PutQuiz(Command):
    """Create or replace a quiz: its title, whether it is open, the groups it is for."""

    dataset: str
    quiz_id: str
    title: str
    active: bool
    group_ids: tuple[str, ...]

    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> dict[str, Any]:
        for index, group_id in enumerate(self.group_ids):
            if uow.records.get(groups, (self.dataset, group_id)) is None:
                raise NotFound(f"Group {group_id} is not registered.",
                               code="GROUP_NOT_FOUND", field=f"request.groupIds[{index}]")
        uow.records.put(quizzes, shared_partition(self.dataset), {
            "dataset": self.dataset, "quiz_id": self.quiz_id, "title": self.title,
            "active": self.active, "group_ids": orjson.dumps(list(self.group_ids)).decode()})
        return _shown(self.quiz_id, self.title, self.active, list(self.group_ids))


def _shown(quiz_id: str, title: str, active: bool, group_ids: list[str]) -> dict[str, Any]:
    return {"quizId": quiz_id, "title": title, "active": active, "groupIds": group_ids}


def quiz_view(conn: Connection, dataset: str, quiz_id: str) -> dict[str, Any] | None:
    found = conn.execute(select(quizzes).where(
        quizzes.c.dataset == dataset, quizzes.c.quiz_id == quiz_id)).mappings().first()
    if found is None:
        return None
    return _shown(found["quiz_id"], found["title"], bool(found["active"]),
                  orjson.loads(found["group_ids"]))


def check_open(uow: BatchUnitOfWork, dataset: str, user_id: str, quiz_id: str) -> None:
    """The learner may work on the quiz now: it exists, is active and is assigned to one
    of the learner's groups (or the classroom of one of its learner groups); else 403."""
    found = uow.records.get(quizzes, (dataset, quiz_id))
    if found is None:
        raise Forbidden(f"Quiz {quiz_id} is not assigned to you.", code="QUIZ_NOT_ASSIGNED",
                        field="quiz_id")
    if not found["active"]:
        raise Forbidden(f"Quiz {quiz_id} is closed.", code="QUIZ_CLOSED", field="quiz_id")
    for group_id in orjson.loads(found["group_ids"]):
        if uow.records.get(memberships, (dataset, group_id, user_id)) is not None:
            return
        for child in uow.records.child_groups(dataset, group_id):
            if uow.records.get(memberships, (dataset, child, user_id)) is not None:
                return
    raise Forbidden(f"Quiz {quiz_id} is not assigned to you.", code="QUIZ_NOT_ASSIGNED",
                    field="quiz_id")
