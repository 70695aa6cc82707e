"""The one exception tree (ARCHITECTURE habit 8): codes, fields, the drawn tree, and the
drawn tree is what the HTTP edge answers."""

from __future__ import annotations

import re

import orjson
import pytest

from learnlog.api.envelope import error_body
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
    assert err.field is None


@pytest.mark.parametrize("cls", [InvalidInput, NotFound, Conflict, Unauthorized, Forbidden,
                                 Unavailable])
def test_every_error_is_a_direct_child_of_the_base(cls: type[LearnlogError]) -> None:
    assert cls.__bases__ == (LearnlogError,)


def test_code_and_field_can_be_given_per_instance() -> None:
    err = InvalidInput("UserId is mandatory.", code="USERID_MISSING", field="request.userId")
    assert (err.code, err.field, err.message) == (
        "USERID_MISSING", "request.userId", "UserId is mandatory.")
    # the class default is untouched for the next instance
    assert InvalidInput("x").code == "CLIENT_ERROR"


def test_codes_are_upper_snake() -> None:
    for cls in (LearnlogError, InvalidInput, NotFound, Conflict, Unauthorized, Forbidden,
                Unavailable):
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", cls.code), cls


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


DRAWN = re.findall(r"[├└]── (\w+) +(\d{3}) ([A-Z_]+)", errors.__doc__ or "")


@pytest.mark.parametrize(("name", "status", "response_code"), DRAWN)
def test_the_envelope_answers_each_error_as_the_tree_draws_it(
        name: str, status: str, response_code: str) -> None:
    err = getattr(errors, name)("Not like that.", code="SOME_CODE", field="request.x")
    got_status, body = error_body("api.test", err)
    answer = orjson.loads(body)
    assert (got_status, answer["responseCode"]) == (int(status), response_code)
    assert answer["params"]["status"] == "failed"
    assert (answer["params"]["err"], answer["params"]["errmsg"]) == ("SOME_CODE",
                                                                     "Not like that.")
    assert answer["result"] == {"field": "request.x"}


def test_every_drawn_error_has_its_status_drawn() -> None:
    assert sorted(name for name, _, _ in DRAWN) == sorted(
        re.findall(r"[├└]── (\w+)", errors.__doc__ or ""))


def test_the_bare_base_is_answered_as_a_bug() -> None:
    """The tree draws no status for the base: raised bare, it is a 500 that tells the
    caller nothing of its message."""
    status, body = error_body("api.test", LearnlogError("internal detail"))
    answer = orjson.loads(body)
    assert (status, answer["responseCode"], answer["params"]["err"]) == (
        500, "SERVER_ERROR", "INTERNAL_ERROR")
    assert "internal detail" not in body.decode()
