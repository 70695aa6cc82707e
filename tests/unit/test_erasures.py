"""The erasure tombstone's record id: the format peers exchange (SPEC §5)."""

from __future__ import annotations

import orjson
import pytest

from learnlog.domain.erasures import erasure_record, parse_erasure


def test_everything_of_a_learner_is_a_star() -> None:
    assert erasure_record(None, None) == "*"
    assert parse_erasure("*") == (None, None)


@pytest.mark.parametrize(("scope", "enrolment"), [
    (("c1", "b1"), ("c1", "b1")),
    (("c1", "b1"), None),
    (None, ("c1", "b1")),
    (("cours é", "lot ✓"), ("c\"q", "b\\1")),
])
def test_a_scoped_erasure_round_trips(scope: tuple[str, str] | None,
                                      enrolment: tuple[str, str] | None) -> None:
    record = erasure_record(scope, enrolment)
    assert record != "*"
    assert parse_erasure(record) == (scope, enrolment)


def test_the_format_is_the_one_peers_already_store() -> None:
    # Tombstones written before this module existed were compact orjson output; a peer
    # compares record ids as text, so the bytes must not change.
    scope, enrolment = ("cours é", "b1"), ("cours é", "b1")
    assert erasure_record(scope, enrolment) == orjson.dumps(
        {"scope": list(scope), "enrolment": list(enrolment)}).decode()
    assert erasure_record(None, ("c", "b")) == '{"scope":null,"enrolment":["c","b"]}'
