"""What an erasure names, and the record id its tombstone carries to peers (SPEC §5).

An erasure deletes a learner's records: everything of the learner, or the summaries,
sessions and attempts under one scope (collection key, context key) and one enrolment
(collection, context). Its tombstone's record id is "*" for everything, else compact JSON
naming the scope and the enrolment; peers read it back with `parse_erasure`.
"""

from __future__ import annotations

import json

Pair = tuple[str, str]


def erasure_record(scope: Pair | None, enrolment: Pair | None) -> str:
    """The record id of an erasure's tombstone: "*" (all of a learner's records) or JSON
    naming the summaries' scope and the enrolment."""
    if scope is None and enrolment is None:
        return "*"
    return json.dumps({"scope": None if scope is None else list(scope),
                       "enrolment": None if enrolment is None else list(enrolment)},
                      separators=(",", ":"), ensure_ascii=False)


def parse_erasure(record_id: str) -> tuple[Pair | None, Pair | None]:
    """The (scope, enrolment) an erasure tombstone names (both None: everything)."""
    if record_id == "*":
        return None, None
    raw = json.loads(record_id)
    scope, enrolment = raw.get("scope"), raw.get("enrolment")
    return (None if scope is None else (scope[0], scope[1]),
            None if enrolment is None else (enrolment[0], enrolment[1]))
