"""Certificate criteria (SPEC §2.6): which templates an enrolment has earned; and the
format of a certificate token's claims (what the issuer signs, what a verifier shows)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput
from .progress import COMPLETED

OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class Template:
    """A certificate template: its name, the status it needs and an optional score rule."""

    name: str
    status: int = COMPLETED
    score_op: str | None = None
    score_value: float | None = None


def parse_template(raw: Mapping[str, Any], path: str) -> Template:
    """Read `{name, criteria: {status?, score?: {op: value}}}`; unknown operators are a 400."""
    criteria = raw.get("criteria") or {}
    status = criteria.get("status", COMPLETED)
    if isinstance(status, bool) or status not in (0, 1, 2):
        raise InvalidInput("criteria.status must be 0, 1 or 2.", field=f"{path}.criteria.status")
    score = criteria.get("score")
    if score is None:
        return Template(raw["name"], status)
    if not isinstance(score, Mapping) or len(score) != 1:
        raise InvalidInput("criteria.score must be one {operator: number}.",
                           field=f"{path}.criteria.score")
    ((op, value),) = score.items()
    if op not in OPERATORS:
        raise InvalidInput(f"Unknown score operator {op!r}; use one of {', '.join(OPERATORS)}.",
                           field=f"{path}.criteria.score")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("criteria.score value must be a number.",
                           field=f"{path}.criteria.score")
    return Template(raw["name"], status, op, float(value))


def earned(
    templates: Sequence[Template],
    status: int,
    score_percent: float | None,
    already: Sequence[str],
) -> list[Template]:
    """The templates met now and not issued before; a score rule needs a score."""
    met = []
    for template in templates:
        if template.name in already or status < template.status:
            continue
        if template.score_op is not None:
            if score_percent is None:
                continue
            assert template.score_value is not None
            if not OPERATORS[template.score_op](score_percent, template.score_value):
                continue
        met.append(template)
    return met


TOKEN_TYPE = "certificate"  # the `typ` claim that tells a certificate from a login token


def certificate_claims(cert_id: str, name: str, dataset: str, user_id: str,
                       collection_id: str, context_id: str, issued_on: int) -> dict[str, Any]:
    """A certificate token's claims: `typ` "certificate", the certificate's id and template
    name, the enrolment it was earned in (dataset, userId, collectionId, contextId) and
    when it was issued (`issuedOn`)."""
    return {"typ": TOKEN_TYPE, "id": cert_id, "name": name, "dataset": dataset,
            "userId": user_id, "collectionId": collection_id, "contextId": context_id,
            "issuedOn": issued_on}


def certified(claims: Mapping[str, Any]) -> dict[str, Any]:
    """What a verified token certifies: its claims without `typ`; a token whose `typ` is not
    "certificate" is refused (400 CERTIFICATE_INVALID on field `token`)."""
    if claims.get("typ") != TOKEN_TYPE:
        raise InvalidInput("The token is not a certificate.", code="CERTIFICATE_INVALID",
                           field="token")
    return {key: value for key, value in claims.items() if key != "typ"}
