"""Groups and roles (SPEC §3): who reads members, where groups live, what groups work on.

The group kinds and member roles a request may name are checked at the edge
(`api/models.py`); these are the rules beyond that.
"""

from __future__ import annotations

from .errors import InvalidInput

READER_ROLES = ("admin", "coach")  # roles that read the records of a group's members
ACTIVITY_TYPES = ("Collection", "Content", "Quiz")  # what a group works on (SPEC §2.7)


def check_parent(kind: str, parent_id: str | None, parent_kind: str | None) -> None:
    """A learnergroup lives in a classroom (`parent_kind` is the kind of `parent_id`, None
    when it is not registered); no other group has a parent."""
    if kind == "learnergroup":
        if parent_id is None or parent_kind != "classroom":
            raise InvalidInput("A learnergroup needs parentId: a registered classroom.",
                               code="INVALID_PARAMETER_VALUE", field="request.parentId")
    elif parent_id is not None:
        raise InvalidInput("Only a learnergroup has a parentId.",
                           code="INVALID_PARAMETER_VALUE", field="request.parentId")


def check_activity_type(value: str, field: str) -> str:
    """An activity's type is one of ACTIVITY_TYPES."""
    if value not in ACTIVITY_TYPES:
        raise InvalidInput(f"activityType must be one of {', '.join(ACTIVITY_TYPES)}.",
                           code="INVALID_PARAMETER_VALUE", field=field)
    return value
