"""Enrolments and which of them a content's completion touches (SPEC §2.1, §2.5)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .certificates import Template
from .collection import EnrolmentProgress, Structure
from .keys import ContextMode, SummaryKey, scope_keys
from .progress import NOT_STARTED


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate issued once for an enrolment."""

    id: str
    name: str
    token: str
    issued_on: int


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A learner in a collection under a context, with its incrementally kept figures."""

    dataset: str
    user_id: str
    collection_id: str
    context_id: str
    enrolled_at: int
    active: bool = True
    figures: EnrolmentProgress = field(
        default_factory=lambda: EnrolmentProgress(0, 0, NOT_STARTED, None))
    certificates: tuple[IssuedCertificate, ...] = ()

    @property
    def pk(self) -> tuple[str, str, str, str]:
        """The enrolment's identity."""
        return (self.dataset, self.user_id, self.collection_id, self.context_id)


@dataclass(frozen=True, slots=True)
class CollectionRecord:
    """A registered collection: metadata, the current structure and certificate templates."""

    dataset: str
    collection_id: str
    name: str
    description: str | None
    logo: str | None
    structure: Structure
    templates: tuple[Template, ...] = ()


@dataclass(frozen=True, slots=True)
class ContextRecord:
    """Where consumption happens: a batch, a program, a class."""

    dataset: str
    context_id: str
    collection_id: str
    name: str | None
    start_date: str | None
    end_date: str | None


def content_key(mode: ContextMode, enrolment: Enrolment, content_id: str) -> SummaryKey:
    """The summary key under which a content counts for an enrolment."""
    return SummaryKey(enrolment.dataset, enrolment.user_id,
                      *content_scope(mode, enrolment, content_id), content_id)


def content_scope(mode: ContextMode, enrolment: Enrolment, content_id: str
                  ) -> tuple[str, str]:
    """The collection key and context key under which a content counts for an
    enrolment (`content_key` without building the key)."""
    return scope_keys(mode, content_id, enrolment.collection_id, enrolment.context_id)


def content_scopes(mode: ContextMode, enrolment: Enrolment, content_ids: Iterable[str]
                   ) -> dict[tuple[str, str], list[str]]:
    """The contents of an enrolment grouped by the (collection key, context key) they count
    under: one group in the strict and collection modes (the enrolment's own), one per
    content in the content mode (`content_scope` of each)."""
    if mode is ContextMode.CONTENT:
        return {(c, c): [c] for c in content_ids}
    ids = list(content_ids)
    return {content_scope(mode, enrolment, ids[0]): ids} if ids else {}


def touches(mode: ContextMode, enrolment: Enrolment, structure: Structure | None,
            key: SummaryKey) -> bool:
    """Whether a change to the summary under `key` can change this enrolment's figures."""
    if structure is None or key.content_id not in structure.leaves:
        return False
    return content_key(mode, enrolment, key.content_id) == key
