"""Enrolments and which summary keys touch them (SPEC §2.1, §2.5)."""

from __future__ import annotations

import pytest

from learnlog.domain.certificates import Template
from learnlog.domain.collection import EnrolmentProgress, Node, Structure
from learnlog.domain.enrolment import (
    CollectionRecord,
    Enrolment,
    IssuedCertificate,
    content_key,
    content_scope,
    content_scopes,
    touches,
)
from learnlog.domain.keys import ContextMode, SummaryKey, resolve_key
from learnlog.domain.progress import NOT_STARTED

pytestmark = pytest.mark.unit

STRUCTURE = Structure("class-1-maths", 1, (
    Node("u1", "unit", children=(Node("sda", "content"), Node("dda", "content"))),
))
ENROLMENT = Enrolment("default", "rahul", "class-1-maths", "batch-1", enrolled_at=1_000)


def test_new_enrolment_defaults() -> None:
    e = Enrolment("default", "rahul", "class-1-maths", "batch-1", enrolled_at=1_000)
    assert e.active is True
    assert e.figures == EnrolmentProgress(0, 0, NOT_STARTED, None)
    assert e.certificates == ()
    assert e.pk == ("default", "rahul", "class-1-maths", "batch-1")


def test_enrolment_carries_issued_certificates() -> None:
    cert = IssuedCertificate("id-1", "Completion", "tok", 5_000)
    e = Enrolment("d", "u", "c", "c", 1, certificates=(cert,))
    assert e.certificates[0].name == "Completion"


def test_collection_record_holds_structure_and_templates() -> None:
    rec = CollectionRecord("default", "class-1-maths", "Maths", None, None, STRUCTURE,
                           (Template("Completion"),))
    assert rec.structure.leaf_count == 2
    assert rec.templates[0].name == "Completion"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (ContextMode.STRICT, SummaryKey("default", "rahul", "class-1-maths", "batch-1", "sda")),
        (ContextMode.COLLECTION,
         SummaryKey("default", "rahul", "class-1-maths", "class-1-maths", "sda")),
        (ContextMode.CONTENT, SummaryKey("default", "rahul", "sda", "sda", "sda")),
    ],
)
def test_content_key_per_mode(mode: ContextMode, expected: SummaryKey) -> None:
    assert content_key(mode, ENROLMENT, "sda") == expected


def test_content_key_equals_the_key_a_write_in_the_enrolment_resolves_to() -> None:
    for mode in ContextMode:
        write = resolve_key(mode, dataset="default", user_id="rahul", content_id="dda",
                            collection_id="class-1-maths", context_id="batch-1")
        assert content_key(mode, ENROLMENT, "dda") == write


def test_touches_a_content_of_the_structure_under_the_same_key() -> None:
    k = content_key(ContextMode.STRICT, ENROLMENT, "sda")
    assert touches(ContextMode.STRICT, ENROLMENT, STRUCTURE, k)


def test_touches_nothing_without_a_structure() -> None:
    k = content_key(ContextMode.STRICT, ENROLMENT, "sda")
    assert not touches(ContextMode.STRICT, ENROLMENT, None, k)


def test_touches_nothing_outside_the_structure() -> None:
    k = SummaryKey("default", "rahul", "class-1-maths", "batch-1", "other")
    assert not touches(ContextMode.STRICT, ENROLMENT, STRUCTURE, k)


def test_strict_mode_other_context_does_not_touch() -> None:
    k = resolve_key(ContextMode.STRICT, dataset="default", user_id="rahul", content_id="sda",
                    collection_id="class-1-maths", context_id="batch-2")
    assert not touches(ContextMode.STRICT, ENROLMENT, STRUCTURE, k)
    organic = resolve_key(ContextMode.STRICT, dataset="default", user_id="rahul",
                          content_id="sda")
    assert not touches(ContextMode.STRICT, ENROLMENT, STRUCTURE, organic)


def test_collection_mode_other_context_touches() -> None:
    k = resolve_key(ContextMode.COLLECTION, dataset="default", user_id="rahul",
                    content_id="sda", collection_id="class-1-maths", context_id="batch-2")
    assert touches(ContextMode.COLLECTION, ENROLMENT, STRUCTURE, k)


def test_content_mode_organic_consumption_touches() -> None:
    k = resolve_key(ContextMode.CONTENT, dataset="default", user_id="rahul", content_id="sda")
    assert touches(ContextMode.CONTENT, ENROLMENT, STRUCTURE, k)


def test_other_learner_or_dataset_never_touches() -> None:
    for mode in ContextMode:
        other_user = resolve_key(mode, dataset="default", user_id="priya", content_id="sda",
                                 collection_id="class-1-maths", context_id="batch-1")
        other_ds = resolve_key(mode, dataset="other", user_id="rahul", content_id="sda",
                               collection_id="class-1-maths", context_id="batch-1")
        assert not touches(mode, ENROLMENT, STRUCTURE, other_user)
        assert not touches(mode, ENROLMENT, STRUCTURE, other_ds)


@pytest.mark.parametrize("mode", list(ContextMode))
def test_content_scopes_group_contents_as_content_scope_places_them(mode: ContextMode) -> None:
    leaves = ["sda", "dda", "fun"]
    grouped = content_scopes(mode, ENROLMENT, leaves)
    expected: dict[tuple[str, str], list[str]] = {}
    for c in leaves:
        expected.setdefault(content_scope(mode, ENROLMENT, c), []).append(c)
    assert grouped == expected
    assert len(grouped) == (3 if mode is ContextMode.CONTENT else 1)
    assert content_scopes(mode, ENROLMENT, []) == {}
