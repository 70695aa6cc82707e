"""The small ports the services need, and the context every use case runs in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.keys import ContextMode


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """What every use case needs to know about the instance it runs in."""

    mode: ContextMode
    instance_id: str
    implicit_enrolment: bool
    max_time_spent_delta: float
    sign: Callable[[Mapping[str, Any]], str]
