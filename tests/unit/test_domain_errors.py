"""The one exception tree (ARCHITECTURE habit 8): codes, fields, and the drawn tree."""

from __future__ import annotations

import re

import pytest

from learnlog.domain import errors
from learnlog.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LearnlogError,
    NotFound,
    Unauthorized,
    Unavailable,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (LearnlogError, "INTERNAL_ERROR"),
        (InvalidInput, "CLIENT_ERROR"),
        (NotFound, "RESOURCE_NOT_FOUND"),
        (Conflict, "CONFLICT"),
        (Unauthorized, "UNAUTHORIZED_USER"),
        (Forbidden, "FORBIDDEN"),
        (Unavailable, "SERVICE_UNAVAILABLE"),
    ],
)
def test_default_code_of_each_error(cls: type[LearnlogError], code: str) -> None:
    err = cls("something went wrong")
    assert err.code == code
    assert err.message == "something went wrong"
    assert str(err) == "something went wrong"
    assert err.field is None
    assert isinstance(err, LearnlogError)
    assert isinstance(err, Exception)


@pytest.mark.parametrize("cls", [InvalidInput, NotFound, Conflict, Unauthorized, Forbidden,
                                 Unavailable])
def test_every_error_is_a_direct_child_of_the_base(cls: type[LearnlogError]) -> None:
    assert cls.__bases__ == (LearnlogError,)


def test_code_and_field_can_be_given_per_instance() -> None:
    err = InvalidInput("UserId is mandatory.", code="USERID_MISSING", field="request.userId")
    assert (err.code, err.field, err.message) == (
        "USERID_MISSING", "request.userId", "UserId is mandatory.")
    # the class default is untouched for the next instance
    assert InvalidInput.code == "CLIENT_ERROR"
    assert InvalidInput("x").code == "CLIENT_ERROR"


def test_codes_are_upper_snake() -> None:
    for cls in (LearnlogError, InvalidInput, NotFound, Conflict, Unauthorized, Forbidden,
                Unavailable):
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", cls.code), cls


def test_errors_chain_with_from() -> None:
    cause = ValueError("bad int")
    with pytest.raises(InvalidInput) as info:
        try:
            raise cause
        except ValueError as exc:
            raise InvalidInput("timespent must be a number", field="request.timespent") from exc
    assert info.value.__cause__ is cause
    assert info.value.field == "request.timespent"


def test_caught_as_the_base() -> None:
    with pytest.raises(LearnlogError):
        raise Forbidden("not yours")


def test_docstring_tree_lists_exactly_the_error_classes() -> None:
    doc = errors.__doc__ or ""
    drawn = re.findall(r"[├└]── (\w+)", doc)
    defined = sorted(
        name for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, LearnlogError)
        and value is not LearnlogError
    )
    assert sorted(drawn) == defined
    assert "LearnlogError" in doc
