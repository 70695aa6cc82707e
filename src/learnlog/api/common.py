"""What every router of the HTTP edge shares: the app's runtime and token checker, and
who is calling (a framework route's request or a lean route's call).

Routers import these from here, never from one another; the id rule they apply to path
and query values is the domain's (`domain.ids.check_id`).
"""

from __future__ import annotations

from fastapi import Request

from ..bootstrap import Runtime
from .auth import Authenticator, Principal
from .lean import Call


def runtime(request: Request) -> Runtime:
    """The app's runtime (engines, cache, writer, services; built by `bootstrap`)."""
    rt: Runtime = request.app.state.runtime
    return rt


def authenticator(request: Request) -> Authenticator:
    """The app's token checker (built with the runtime, from its secret and settings)."""
    auth: Authenticator = request.app.state.auth
    return auth


def caller(request: Request, *, write: bool) -> Principal:
    """The caller of a framework route's request, from its Authorization header."""
    return authenticator(request).authenticate(request.headers.get("authorization"),
                                               write=write)


def lean_caller(call: Call, *, write: bool) -> Principal:
    """The caller of a lean route's request."""
    return call.auth.authenticate(call.header(b"authorization"), write=write)
