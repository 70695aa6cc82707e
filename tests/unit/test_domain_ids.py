"""The id rule (domain/ids.py): 1 to 256 characters without control characters, the
sync door's unbounded length, the stats door's stricter printability, visitor ids."""

from __future__ import annotations

import re

import pytest

from learnlog.domain.errors import InvalidInput
from learnlog.domain.ids import (
    ID_PATTERN,
    MAX_ID_LENGTH,
    are_valid_ids,
    check_id,
    is_valid_id,
    is_visitor_id,
)

pytestmark = pytest.mark.unit

VALID = ["a", "do_123", "x" * MAX_ID_LENGTH, "é", "中文", "a b", " ", "\xa0", "a/b:c+d"]
INVALID = ["", "x" * (MAX_ID_LENGTH + 1), "a\x00b", "\t", "a\n", "\x1f", "\x7f", "\x80",
           "a\x9f"]


@pytest.mark.parametrize("value", VALID)
def test_an_id_of_1_to_256_characters_without_controls_is_valid(value: str) -> None:
    assert is_valid_id(value)
    check_id(value, "userId")


@pytest.mark.parametrize("value", INVALID)
def test_empty_too_long_or_control_ids_are_refused(value: str) -> None:
    assert not is_valid_id(value)
    with pytest.raises(InvalidInput) as refused:
        check_id(value, "request.userId")
    assert refused.value.code == "INVALID_PARAMETER_VALUE"
    assert refused.value.field == "request.userId"
    assert refused.value.message == "request.userId must be 1 to 256 printable characters."


@pytest.mark.parametrize("value", VALID + INVALID)
def test_the_schema_pattern_is_the_same_rule(value: str) -> None:
    schema = 1 <= len(value) <= MAX_ID_LENGTH and re.fullmatch(ID_PATTERN[1:-1], value)
    assert bool(schema) == is_valid_id(value)


def test_without_a_length_limit_only_emptiness_and_controls_count() -> None:
    assert is_valid_id("x" * 10_000, max_length=None)
    assert not is_valid_id("", max_length=None)
    assert not is_valid_id("a\x00", max_length=None)
    assert not is_valid_id("abc", max_length=2)


@pytest.mark.parametrize(("value", "valid"), [
    ("course-v1:ORG+C+RUN", True), ("a b", True), ("é", True),
    (" ", False), ("  \t", False), ("", False), ("\xa0", False), ("a\u2028b", False),
    ("a\x85", False), ("x" * 257, False), ("x" * 256, True)])
def test_unicode_printable_also_refuses_blank_and_unicode_separators(value: str,
                                                                     valid: bool) -> None:
    assert is_valid_id(value, unicode_printable=True) is valid
    if valid:
        check_id(value, "user", unicode_printable=True)
    else:
        with pytest.raises(InvalidInput) as refused:
            check_id(value, "user", unicode_printable=True)
        assert refused.value.field == "user"


def test_many_ids_are_valid_only_when_each_is() -> None:
    assert are_valid_ids(["a", "b", "x" * 256])
    assert are_valid_ids([])
    assert not are_valid_ids(["a", ""])
    assert not are_valid_ids(["a", "b\x00"])
    assert not are_valid_ids(["a", "x" * 257])
    assert are_valid_ids(["a", "x" * 257], max_length=None)
    assert not are_valid_ids({"a", "\x7f"}, max_length=None)


@pytest.mark.parametrize(("value", "valid"), [
    ("0123456789abcdef0123456789abcdef", True), ("f" * 32, True),
    ("F" * 32, False), ("0" * 31, False), ("0" * 33, False), ("g" * 32, False),
    ("", False), ("0" * 32 + "\n", False)])
def test_a_visitor_id_is_32_lowercase_hex_digits(value: str, valid: bool) -> None:
    assert is_visitor_id(value) is valid
