"""The identity write commands (service/identity.py) on the in-memory unit of work: users,
groups, memberships and activities as records, refusals, group queueing."""

from __future__ import annotations

import pytest

from learnlog.domain.errors import InvalidInput, NotFound
from learnlog.domain.keys import ContextMode, partition_of, shared_partition
from learnlog.service.identity import (
    PutActivity,
    PutGroup,
    PutMember,
    PutUser,
    RemoveActivity,
    RemoveMember,
)
from learnlog.service.ports import ServiceContext
from learnlog.service.topics import GROUP_MEMBER
from learnlog.store.schema import group_activities, groups, memberships
from tests.unit.fakes import FakeUnitOfWork, Stored

pytestmark = pytest.mark.unit

DS = "ds"
CTX = ServiceContext(mode=ContextMode.STRICT, instance_id="inst-1", implicit_enrolment=True,
                     max_time_spent_delta=6 * 3600, sign=lambda claims: "signed")


def with_group(kind: str = "classroom", group_id: str = "g1") -> Stored:
    stored = Stored()
    stored.record(groups, {"dataset": DS, "group_id": group_id, "kind": kind, "name": "G",
                           "parent_id": None})
    return stored


def test_put_user_stages_the_record_in_the_learners_partition() -> None:
    uow = FakeUnitOfWork()
    assert uow.run(PutUser(DS, "u1", "ann", "Ann", "learner"), CTX) == {"userId": "u1"}
    assert uow.committed.records == {("users", (DS, "u1")): (partition_of(DS, "u1"), {
        "dataset": DS, "user_id": "u1", "username": "ann", "full_name": "Ann",
        "kind": "learner"})}


def test_a_learnergroup_lives_in_a_registered_classroom() -> None:
    uow = FakeUnitOfWork(with_group("classroom", "class1"))
    uow.run(PutGroup(DS, "lg1", "learnergroup", "LG", "class1"), CTX)
    assert uow.records.get(groups, (DS, "lg1")) is not None
    for parent in ("nowhere", None):
        with pytest.raises(InvalidInput) as refused:
            uow.run(PutGroup(DS, "lg2", "learnergroup", "LG", parent), CTX)
        assert refused.value.field == "request.parentId"
    # A group staged earlier in the batch counts as registered.
    uow.run(PutGroup(DS, "class2", "classroom", "C"), CTX)
    uow.run(PutGroup(DS, "lg3", "learnergroup", "LG", "class2"), CTX)
    assert set(uow.committed.records) == {("groups", (DS, "lg1")), ("groups", (DS, "class2")),
                                          ("groups", (DS, "lg3"))}


def test_membership_in_an_unknown_group_is_not_found() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(NotFound) as refused:
        uow.run(PutMember(DS, "g1", "u1", "learner"), CTX)
    assert (refused.value.code, refused.value.field) == ("GROUP_NOT_FOUND", "groupId")
    assert uow.committed.empty()


def test_joining_a_group_queues_the_refresh_always() -> None:
    uow = FakeUnitOfWork(with_group())
    uow.run(PutMember(DS, "g1", "u1", "learner"), CTX)
    assert uow.committed.outbox == [(DS, GROUP_MEMBER, {"userId": "u1"})]
    assert uow.records.get(memberships, (DS, "g1", "u1")) == {
        "dataset": DS, "group_id": "g1", "user_id": "u1", "role": "learner"}


def test_leaving_a_group_deletes_the_membership_and_queues_the_refresh() -> None:
    stored = with_group()
    stored.record(memberships, {"dataset": DS, "group_id": "g1", "user_id": "u1",
                                "role": "learner"})
    uow = FakeUnitOfWork(stored)
    assert uow.run(RemoveMember(DS, "g1", "u1"), CTX)["removed"] is True
    assert uow.records.get(memberships, (DS, "g1", "u1")) is None
    assert uow.committed.records == {("memberships", (DS, "g1", "u1")): (
        partition_of(DS, "u1"), None)}
    assert uow.committed.outbox == [(DS, GROUP_MEMBER, {"userId": "u1"})]
    with pytest.raises(NotFound) as again:
        uow.run(RemoveMember(DS, "g1", "u1"), CTX)  # the staged deletion is seen
    assert again.value.code == "MEMBER_NOT_FOUND"


def test_an_unregistered_quiz_is_no_activity() -> None:
    uow = FakeUnitOfWork(with_group())
    with pytest.raises(NotFound) as refused:
        uow.run(PutActivity(DS, "g1", "Quiz", "quiz1"), CTX)
    assert (refused.value.code, refused.value.field) == ("QUIZ_NOT_FOUND", "activityId")
    assert uow.committed.empty()


def test_removing_an_activity_the_group_lacks_is_not_found() -> None:
    uow = FakeUnitOfWork(with_group())
    with pytest.raises(NotFound) as refused:
        uow.run(RemoveActivity(DS, "g1", "Collection", "course-1"), CTX)
    assert refused.value.code == "ACTIVITY_NOT_FOUND"


def test_a_new_activity_queues_every_member() -> None:
    stored = with_group()
    for user in ("u1", "u2"):
        stored.record(memberships, {"dataset": DS, "group_id": "g1", "user_id": user,
                                    "role": "learner"})
    uow = FakeUnitOfWork(stored)
    uow.run(PutActivity(DS, "g1", "Collection", "course-1"), CTX)
    assert uow.committed.records[("group_activities", (DS, "g1", "Collection", "course-1"))
                                 ][0] == shared_partition(DS)
    assert uow.committed.outbox == [(DS, GROUP_MEMBER, {"userId": u}) for u in ("u1", "u2")]
    assert uow.records.get(group_activities, (DS, "g1", "Collection", "course-1"))
