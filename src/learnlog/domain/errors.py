"""The one exception tree of learnlog. The HTTP layer maps it to responses in one place.

    LearnlogError                 (code, message, field)
    ├── InvalidInput              400 CLIENT_ERROR: a field is missing, mistyped or out of range
    ├── NotFound                  404 RESOURCE_NOT_FOUND
    ├── Conflict                  409 CLIENT_ERROR: the same id with different content
    ├── Unauthorized              401 UNAUTHORIZED: no or bad credentials
    ├── Forbidden                 403 FORBIDDEN: authenticated, but not allowed
    └── Unavailable               503 SERVICE_UNAVAILABLE: not acknowledged; retry it

The domain raises these; it never raises HTTP errors and never catches them.
"""

from __future__ import annotations


class LearnlogError(Exception):
    """Base of every error learnlog reports to a caller."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class InvalidInput(LearnlogError):
    """The request names a field that is missing, of the wrong type or out of range."""

    code = "CLIENT_ERROR"


class NotFound(LearnlogError):
    """The thing the request names does not exist (or the caller may not know it does)."""

    code = "RESOURCE_NOT_FOUND"


class Conflict(LearnlogError):
    """The same id was sent before with different content."""

    code = "CONFLICT"


class Unauthorized(LearnlogError):
    """No credentials, or credentials that do not verify."""

    code = "UNAUTHORIZED_USER"


class Forbidden(LearnlogError):
    """The caller is known but may not do this."""

    code = "FORBIDDEN"


class Unavailable(LearnlogError):
    """A part the request needs is (re)starting; nothing of it was acknowledged: retry."""

    code = "SERVICE_UNAVAILABLE"
