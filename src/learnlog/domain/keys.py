"""Key resolution: how (user, content, collection, context) map to a summary key per mode."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ContextMode(StrEnum):
    """The instance-wide rule for where progress counts (SPEC §2.1)."""

    STRICT = "strict"
    COLLECTION = "collection"
    CONTENT = "content"


@dataclass(frozen=True, slots=True, order=True)
class SummaryKey:
    """Identifies one summary: everything a learner did with one content under one key."""

    dataset: str
    user_id: str
    collection_key: str
    context_key: str
    content_id: str

    @property
    def scope(self) -> tuple[str, str, str, str]:
        """The enrolment-level part of the key (everything but the content)."""
        return (self.dataset, self.user_id, self.collection_key, self.context_key)


def resolve_key(
    mode: ContextMode,
    *,
    dataset: str,
    user_id: str,
    content_id: str,
    collection_id: str | None = None,
    context_id: str | None = None,
) -> SummaryKey:
    """Map a request's names to the summary key the instance's context mode prescribes."""
    collection_key, context_key = scope_keys(mode, content_id, collection_id, context_id)
    return SummaryKey(dataset, user_id, collection_key, context_key, content_id)


def scope_keys(mode: ContextMode, content_id: str, collection_id: str | None,
               context_id: str | None) -> tuple[str, str]:
    """The collection key and context key a content counts under in this mode."""
    if mode is ContextMode.CONTENT:
        return content_id, content_id
    collection_key = collection_id if collection_id is not None else content_id
    if mode is ContextMode.COLLECTION:
        return collection_key, collection_key
    return collection_key, context_id if context_id is not None else collection_key


def enrolment_context(collection_id: str, context_id: str | None) -> str:
    """The context an enrolment is recorded under: the named context, else the collection."""
    return context_id if context_id is not None else collection_id


def partition_of(dataset: str, user_id: str) -> str:
    """The sync partition of a learner's records (SPEC §5)."""
    return f"{dataset}:user:{user_id}"


def learner_of(dataset: str, partition: str) -> str | None:
    """The learner whose partition of `dataset` this is, or None (not a learner's)."""
    prefix = partition_of(dataset, "")
    user_id = partition[len(prefix):] if partition.startswith(prefix) else ""
    return user_id or None


ANONYMOUS = "anonymous"


def anonymous_partition(dataset: str) -> str:
    """The sync partition of a dataset's anonymous visitors' sessions (SPEC §5)."""
    return f"{dataset}:{ANONYMOUS}"


SHARED = "shared"


def shared_partition(dataset: str) -> str:
    """The sync partition of a dataset's shared records: structures, contexts, groups."""
    return f"{dataset}:{SHARED}"
