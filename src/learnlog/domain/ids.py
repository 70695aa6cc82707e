"""Ids (SPEC §3): what a learner, content, collection, context, group or session id may be.

The one rule, kept by every door an id comes in by (the request models, the path and query
parameters, pushed sync facts): an id is 1 to 256 characters, none of them a control
character (C0 `\\x00-\\x1f`, DEL, C1 `\\x80-\\x9f`). Two doors have always been looser or
stricter, and keep that:

- pushed sync facts check no length here (the column's own length limit does);
- the stats routes' query values (`unicode_printable=True`) are also refused when blank
  (whitespace only) or holding any character Python's `str.isprintable` refuses (any
  Unicode "Other" or "Separator" but the ASCII space).

A visitor id (the anonymous logger's cookie) is another kind of id: 32 lowercase hex digits.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from .errors import InvalidInput

MAX_ID_LENGTH = 256
# The id rule as a pattern, for the request schemas (pydantic and msgspec check it while
# they parse); `is_valid_id` is the same rule in Python.
ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_VISITOR_ID = re.compile("[0-9a-f]{32}")


def is_valid_id(value: str, *, max_length: int | None = MAX_ID_LENGTH,
                unicode_printable: bool = False) -> bool:
    """An id is 1 to `max_length` (None: any number of) characters with no control
    character; with `unicode_printable`, it is also not blank and `str.isprintable`."""
    if not value or _CONTROL.search(value):
        return False
    if max_length is not None and len(value) > max_length:
        return False
    return not unicode_printable or (bool(value.strip()) and value.isprintable())


def are_valid_ids(values: Collection[str], *, max_length: int | None = MAX_ID_LENGTH) -> bool:
    """Every one of `values` is an id by `is_valid_id` (checked in one pass over them all)."""
    if "" in values or _CONTROL.search("".join(values)):
        return False
    return max_length is None or all(len(value) <= max_length for value in values)


def check_id(value: str, name: str, *, unicode_printable: bool = False) -> None:
    """Refuse (400 INVALID_PARAMETER_VALUE on field `name`) a value that is not an id of at
    most 256 characters by `is_valid_id`."""
    if not is_valid_id(value, unicode_printable=unicode_printable):
        raise InvalidInput(f"{name} must be 1 to {MAX_ID_LENGTH} printable characters.",
                           code="INVALID_PARAMETER_VALUE", field=name)


def is_visitor_id(value: str) -> bool:
    """A visitor id is exactly 32 lowercase hexadecimal digits (a uuid4's hex)."""
    return _VISITOR_ID.fullmatch(value) is not None
