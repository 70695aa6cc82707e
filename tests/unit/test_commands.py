"""Every writer command subclasses the command protocol and names the learners it writes
for (service/commands.py): the writer asks commands, it never probes their attributes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from functools import cache

import pytest

import learnlog
from learnlog.domain import mastery
from learnlog.domain.enrolment import ContextRecord
from learnlog.domain.keys import partition_of, shared_partition
from learnlog.service.commands import Command, reduce_fields
from learnlog.service.group_aggregates import RebuildAggregates
from learnlog.service.logger import StartTracking, TrackProgress
from learnlog.service.viewer import (
    EndView,
    Enrol,
    EraseSummaries,
    Keys,
    Many,
    PutCollection,
    PutContext,
    RefreshCollection,
    StartView,
    SubmitAssessment,
    Unenrol,
    UpdateView,
)
from learnlog.sync.apply import ApplyFacts
from learnlog.sync.facts import TOMBSTONES

pytestmark = pytest.mark.unit


# Scripts, not modules: `__main__` runs the CLI, the migrations run inside Alembic.
NOT_IMPORTED = ("learnlog.__main__", "learnlog.store.migrations")


def _modules() -> Iterator[str]:
    for found in pkgutil.walk_packages(learnlog.__path__, "learnlog."):
        if not found.name.startswith(NOT_IMPORTED):
            yield found.name


def _looks_like_a_command(cls: type) -> bool:
    """The shape of a writer command, whatever it subclasses: `apply(self, uow, ctx)`."""
    apply = cls.__dict__.get("apply")
    if not inspect.isfunction(apply):
        return False
    return list(inspect.signature(apply).parameters)[:3] == ["self", "uow", "ctx"]


@cache
def _command_classes() -> tuple[type, ...]:
    found: list[type] = []
    for name in _modules():
        module = importlib.import_module(name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if cls.__module__ == name and _looks_like_a_command(cls)
                  and not inspect.isabstract(cls)]
    return tuple(found)


def test_every_command_class_subclasses_the_protocol() -> None:
    classes = _command_classes()
    assert len(classes) >= 25  # the walk reached the service and sync modules
    assert {ApplyFacts, StartView, TrackProgress, RebuildAggregates} <= set(classes)
    assert [c.__qualname__ for c in classes if not issubclass(c, Command)] == []


def test_every_command_is_slotted() -> None:
    """A mixin without `__slots__ = ()` would give every command a `__dict__`."""
    assert [c.__qualname__ for c in _command_classes() if c.__dictoffset__ != 0] == []


def test_only_commands_that_must_run_alone_are_exclusive() -> None:
    exclusive = {c for c in _command_classes() if issubclass(c, Command) and c.exclusive}
    assert exclusive == {EraseSummaries, RebuildAggregates, ApplyFacts}


def _keys(user_id: str) -> Keys:
    return Keys("d", user_id, "c1", "k1")


@pytest.mark.parametrize("command", [
    StartView(_keys("u1")),
    UpdateView(_keys("u1"), 5.0, 50.0),
    EndView(_keys("u1")),
    SubmitAssessment(_keys("u1"), ()),
    Enrol("d", "u1", "k1", None),
    Unenrol("d", "u1", "k1", "x"),
    EraseSummaries("d", "u1", None, None),
    StartTracking(_keys("u1"), kind="video"),
    StartTracking(_keys("u1"), criterion=mastery.Criterion("m_of_n", 3, 5)),
    TrackProgress("d", "u1", "s1", progress=0.5),
], ids=lambda c: type(c).__name__)
def test_a_learners_command_names_that_learner(command: Command) -> None:
    assert set(command.learners()) == {("d", "u1")}
    assert list(command.parts()) == [command]


@pytest.mark.parametrize("command", [
    PutCollection("d", "k1", "K1", None, None, (), ()),
    RefreshCollection("d", "k1"),
    PutContext(ContextRecord("d", "x", "k1", None, None, None)),
    RebuildAggregates(),
], ids=lambda c: type(c).__name__)
def test_a_command_of_no_learner_names_none(command: Command) -> None:
    assert set(command.learners()) == set()


def test_many_names_its_parts_and_their_learners() -> None:
    inner = Many((EndView(_keys("u3")),))
    many = Many((StartView(_keys("u1")), UpdateView(_keys("u2"), 1.0), inner))
    assert many.learners() == {("d", "u1"), ("d", "u2"), ("d", "u3")}
    assert list(many.parts()) == [*many.commands[:2], *inner.commands]
    assert Many(()).learners() == set()


def test_a_chunk_of_facts_names_every_learner_it_writes_for() -> None:
    facts = {
        "sessions": [{"dataset": "d", "user_id": "u1", "session_id": "s1"},
                     {"dataset": "d", "user_id": "u2", "session_id": "s2"}],
        "summaries": [{"dataset": "e", "user_id": "u1", "content_id": "c1"}],
        "groups": [{"dataset": "d", "group_id": "g1"}],  # nobody's records
        TOMBSTONES: [{"dataset": "d", "partition": partition_of("d", "u3")},
                     {"dataset": "d", "partition": shared_partition("d")}],
    }
    command = ApplyFacts(facts)
    assert command.learners() == {("d", "u1"), ("d", "u2"), ("e", "u1"), ("d", "u3")}
    assert ApplyFacts({}).learners() == set()


@pytest.mark.parametrize("command", [
    StartView(_keys("u1")),
    UpdateView(_keys("u1"), 5.0, 50.0, {"current": 5}),
    TrackProgress("d", "u1", "s1", progress=0.5),
    StartTracking(_keys("u1"), criterion=mastery.Criterion("m_of_n", 3, 5)),
    Many((StartView(_keys("u1")), UpdateView(_keys("u2"), 1.0))),
    PutContext(ContextRecord("d", "x", "k1", None, None, None)),
    RebuildAggregates(),
], ids=lambda c: type(c).__name__)
def test_a_command_crosses_to_the_writer_host_unchanged(command: Command) -> None:
    import pickle

    back = pickle.loads(pickle.dumps(command, pickle.HIGHEST_PROTOCOL))
    assert back == command and type(back) is type(command)
    assert type(command).__reduce__ is reduce_fields  # rebuilt by its constructor


def test_a_field_outside_init_cannot_be_rebuilt() -> None:
    from dataclasses import dataclass, field

    @dataclass(frozen=True, slots=True)
    class Odd(Command):
        n: int
        derived: int = field(init=False, default=0)

        def apply(self, uow: object, ctx: object) -> None:  # type: ignore[override]
            return

    with pytest.raises(TypeError, match="outside __init__"):
        Odd(1).__reduce__()
