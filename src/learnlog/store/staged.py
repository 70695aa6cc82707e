"""The one map every repository keeps its rows in for a batch: staged, then loaded.

A writer batch runs many commands in one transaction. What a command writes is staged
apart until the command succeeds (`commit`) or fails (`rollback`: it leaves no trace),
and a read sees, in this order, what the running command staged, what the batch's
earlier commands staged, and what was loaded from the database (`None`: known absent).
Repositories build on this map instead of writing that lookup again per table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class StagedMap(Generic[K, V]):
    """Values by key for one batch: staged by the running command, staged by the batch's
    committed commands, loaded (None: the database has none)."""

    __slots__ = ("done", "loaded", "running")

    def __init__(self) -> None:
        self.running: dict[K, V] = {}
        self.done: dict[K, V] = {}
        self.loaded: dict[K, V | None] = {}

    def get(self, key: K, load: Callable[[list[K]], None]) -> V | None:
        """The value under `key`; `load` is asked for it (and must `keep` it) when it was
        neither staged nor loaded."""
        if key in self.running:
            return self.running[key]
        if key in self.done:
            return self.done[key]
        if key not in self.loaded:
            load([key])
            self.loaded.setdefault(key, None)
        return self.loaded[key]

    def is_staged(self, key: K) -> bool:
        return key in self.running or key in self.done

    def keep(self, key: K, value: V | None) -> None:
        """Remember what the database holds under `key` (the first load wins: a row read
        again later in the batch cannot be newer than what this transaction saw)."""
        self.loaded.setdefault(key, value)

    def forget(self, key: K, value: V | None = None) -> None:
        """What the database holds under `key` changed outside the staging (an erasure)."""
        self.loaded[key] = value

    def put(self, key: K, value: V) -> None:
        self.running[key] = value

    def staged(self) -> Iterator[tuple[K, V]]:
        """Everything staged, the batch's committed commands first."""
        yield from self.done.items()
        yield from self.running.items()

    def known(self) -> Iterator[tuple[K, V]]:
        """Every value present, loaded or staged (staged wins), in no particular order."""
        merged: dict[K, V | None] = {**self.loaded, **self.done, **self.running}
        for key, value in merged.items():
            if value is not None:
                yield key, value

    def commit(self) -> None:
        if self.running:
            self.done.update(self.running)
            self.running = {}

    def rollback(self) -> None:
        if self.running:
            self.running = {}
