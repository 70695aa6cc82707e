"""The write-command protocol: everything the writer may know about a command.

Every write a request, a job or a peer hands the writer subclasses `Command` and answers
for itself: how to apply itself to a unit of work, whether it must run alone in its own
transaction, whose records it writes (the PostgreSQL writer locks those learners) and what
commands it stands for (a bundle such as `viewer.Many` names its parts, so a batch's
prefetch sees them). The writer asks these questions and nothing else: no attribute
probing. This module must stay free of I/O and must not import the writer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import fields
from functools import cache
from typing import Any, ClassVar

from ..store.uow import BatchUnitOfWork
from .ports import ServiceContext

Learner = tuple[str, str]  # (dataset, user_id)
NO_LEARNERS: frozenset[Learner] = frozenset()


@cache
def _init_fields(cls: type) -> tuple[str, ...]:
    found = fields(cls)
    if any(not f.init for f in found):
        raise TypeError(f"{cls.__name__}: a field outside __init__ cannot be rebuilt")
    return tuple(f.name for f in found)


def reduce_fields(value: Any) -> Any:
    """`__reduce__` for a frozen, slotted dataclass: rebuilt by calling the class with its
    fields. Commands cross to the writer host pickled (decision 0019); the dataclass
    default goes through Python `__getstate__`/`__setstate__` that list the fields on
    every call, about twice the cost."""
    cls: type = type(value)
    return (cls, tuple(getattr(value, name) for name in _init_fields(cls)))


class Command(ABC):
    """A write the writer can batch (subclasses are frozen, slotted dataclasses)."""

    __slots__ = ()

    __reduce__ = reduce_fields

    exclusive: ClassVar[bool] = False
    """True: the writer applies it alone, in a transaction of its own."""

    @abstractmethod
    def apply(self, uow: BatchUnitOfWork, ctx: ServiceContext) -> Any:
        """Stage the command's effect in `uow` and return the caller's result; raise a
        `LearnlogError` to refuse it (the writer rolls back this command only)."""

    def learners(self) -> AbstractSet[Learner]:
        """The learners whose records the command writes: none unless it says so."""
        return NO_LEARNERS

    def parts(self) -> Sequence[Command]:
        """The commands this one stands for, in order: itself unless it is a bundle."""
        return (self,)


class LearnerCommand(Command):
    """A command writing the records of the one learner its `dataset` and `user_id`
    fields name."""

    __slots__ = ()

    dataset: str
    user_id: str

    def learners(self) -> AbstractSet[Learner]:
        return {(self.dataset, self.user_id)}
