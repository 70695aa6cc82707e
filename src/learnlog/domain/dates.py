"""Days (SPEC §6 query filters, SPEC §2.5 contexts): what counts as a day and a span of days.

A day is written in ISO 8601's 10-character form, YYYY-MM-DD, and must exist (2023-02-29
and 2024-13-45 are not days). The stats routes have always taken the other 10-character
ISO form too, a week day YYYY-Www-D (`week_form=True`); they keep it. Days compare as text.
"""

from __future__ import annotations

import datetime as dt

DAY_LENGTH = 10  # len("YYYY-MM-DD")


def is_day(value: str, *, week_form: bool = False) -> bool:
    """A day is a real calendar date written YYYY-MM-DD (with `week_form`, YYYY-Www-D too)."""
    if len(value) != DAY_LENGTH:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return week_form or value[7] == "-"  # YYYY-Www-D has a digit there


def in_order(start: str | None, end: str | None) -> bool:
    """A span of days is in order unless both ends are given and `end` is before `start`."""
    return start is None or end is None or start <= end
