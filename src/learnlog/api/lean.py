"""The lean edge: the hot routes served without the framework's per-request machinery.

A lean route is a plain coroutine over a `Call` (the decoded body, the path parameters,
the runtime, the authenticator, the request headers) that returns an `Answer`. The one
edge middleware (`app.Edge`) looks each request up in a `LeanTable` first: a hit is
decoded with msgspec straight from the body bytes and answered here, with the same
envelope, the same error codes and field names and the same permission checks
(`access.py`) as the framework routes; a miss goes on to FastAPI. Decision 0016 says why
and what it measured.

What this module must not do: decide who may do what (that is `access.py`), or hold a
rule of the domain.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ..domain.errors import LearnlogError
from . import envelope
from .auth import Authenticator

if TYPE_CHECKING:
    from ..bootstrap import Runtime

log = logging.getLogger(__name__)


class Call:
    """One request to a lean route."""

    __slots__ = ("auth", "body", "headers", "params", "route", "runtime")

    def __init__(self, route: LeanRoute, runtime: Runtime, auth: Authenticator,
                 headers: Sequence[tuple[bytes, bytes]], body: Any,
                 params: dict[str, str]) -> None:
        self.route, self.runtime, self.auth, self.headers = route, runtime, auth, headers
        self.body, self.params = body, params

    def header(self, name: bytes) -> str | None:
        """A request header (lower-case name), or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


@dataclass(frozen=True, slots=True)
class Answer:
    """A lean route's answer: JSON bytes, a status, extra headers."""

    body: bytes
    status: int = 200
    headers: tuple[tuple[bytes, bytes], ...] = ()


Handler = Callable[[Call], Awaitable[Answer]]


@dataclass(frozen=True)
class LeanRoute:
    """A hot route: method, path template, API id, handler, body type, documentation."""

    method: str
    path: str
    name: str
    handler: Handler
    body: type[Any] | None
    response: dict[str, Any]  # the OpenAPI schema of its 200 answer
    decoder: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        decoder = None if self.body is None else msgspec.json.Decoder(self.body)
        object.__setattr__(self, "decoder", decoder)

    @property
    def root(self) -> str:
        return envelope.body_field(self.path)


def route(table: list[LeanRoute], method: str, path: str, name: str, body: type[Any] | None,
          response: dict[str, Any] | None = None) -> Callable[[Handler], Handler]:
    """Register a lean route in `table` (a module's list), decorator style."""
    def register(handler: Handler) -> Handler:
        table.append(LeanRoute(method, path, name, handler, body,
                               response or {"$ref": "#/components/schemas/Envelope"}))
        return handler
    return register


_PARAM = re.compile(r"\{(\w+)\}")


class LeanTable:
    """Finds the lean route of a path: exact paths by dict, templates with one parameter
    (one path segment, as the framework matches them) by prefix and suffix."""

    def __init__(self, routes: Iterable[LeanRoute]) -> None:
        self.routes = list(routes)
        self._exact: dict[str, dict[str, LeanRoute]] = {}
        self._templates: list[tuple[str, str, str, dict[str, LeanRoute]]] = []
        for r in self.routes:
            names = _PARAM.findall(r.path)
            if not names:
                self._exact.setdefault(r.path, {})[r.method] = r
                continue
            if len(names) != 1:
                raise ValueError(f"{r.path}: lean routes take at most one path parameter")
            prefix, suffix = _PARAM.split(r.path)[0], _PARAM.split(r.path)[2]
            for p, s, n, methods in self._templates:
                if (p, s, n) == (prefix, suffix, names[0]):
                    methods[r.method] = r
                    break
            else:
                self._templates.append((prefix, suffix, names[0], {r.method: r}))

    def match(self, path: str) -> tuple[dict[str, LeanRoute], dict[str, str]] | None:
        """The routes of this path by method, and its path parameters; None: not lean."""
        found = self._exact.get(path)
        if found is not None:
            return found, {}
        for prefix, suffix, name, methods in self._templates:
            if path.startswith(prefix) and path.endswith(suffix) and \
                    len(path) > len(prefix) + len(suffix):
                value = path[len(prefix):len(path) - len(suffix)]
                if "/" not in value:
                    return methods, {name: value}
        return None


async def serve(route: LeanRoute, runtime: Runtime, auth: Authenticator,
                headers: Sequence[tuple[bytes, bytes]], body: bytes,
                params: dict[str, str]) -> Answer:
    """Decode, run and answer one request of a lean route; every error is the envelope."""
    try:
        decoded = None if route.decoder is None else route.decoder.decode(body)
    except msgspec.ValidationError as error:
        # msgspec checks types while it parses: a body that is not JSON further on is
        # still "not JSON", as it is on the framework's routes.
        message = str(error) if _is_json(body) else None
        return _answer(*envelope.decode_error(route.name, route.root, message, body))
    except (msgspec.DecodeError, RecursionError):  # not JSON, or nested beyond reason
        return _answer(*envelope.decode_error(route.name, route.root, None, body))
    try:
        return await route.handler(Call(route, runtime, auth, headers, decoded, params))
    except msgspec.ValidationError as error:  # a part checked after the parse
        return _answer(*envelope.decode_error(route.name, route.root, str(error), body))
    except LearnlogError as error:
        return _answer(*envelope.error_body(route.name, error))
    except Exception:
        log.exception("unhandled error on %s %s", route.method, route.path)
        return _answer(*envelope.unexpected_body(route.name))


def _is_json(body: bytes) -> bool:
    try:
        msgspec.json.decode(body)
    except RecursionError:
        return False
    except msgspec.DecodeError as error:
        return "out of range" in str(error)  # 1e999 is JSON that no float can hold
    return True


def _answer(status: int, payload: bytes) -> Answer:
    return Answer(payload, status)


def ok(route: LeanRoute | str, result: dict[str, Any], msgid: str | None = None) -> Answer:
    """A success envelope of a lean route."""
    return Answer(envelope.ok_bytes(route if isinstance(route, str) else route.name, result,
                                    msgid))


def not_allowed(path: str, method: str) -> Answer:
    """A lean path asked with a method it does not take."""
    return _answer(405, envelope.failed_bytes(
        "api.learnlog", "CLIENT_ERROR", "METHOD_NOT_ALLOWED",
        f"{method} is not allowed on {path}."))


def openapi_paths(routes: Sequence[LeanRoute], docs: Callable[[LeanRoute], str]
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The OpenAPI path items of the lean routes and the schemas of their bodies (JSON
    Schema emitted by msgspec from the very structs that decode them)."""
    bodies = [r.body for r in routes if r.body is not None]
    schemas, components = msgspec.json.schema_components(
        bodies, ref_template="#/components/schemas/{name}")
    by_type = dict(zip(bodies, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        text = docs(r)
        operation: dict[str, Any] = {
            "summary": r.handler.__name__.replace("_", " ").title(), "description": text,
            "operationId": r.name.replace(".", "_") + "_" + r.method.lower(),
            "responses": {"200": {"description": "Successful Response", "content": {
                "application/json": {"schema": r.response}}}},
        }
        params = _PARAM.findall(r.path)
        if params:
            operation["parameters"] = [{"name": n, "in": "path", "required": True,
                                        "schema": {"type": "string", "title": n}}
                                       for n in params]
        if r.body is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": by_type[r.body]}}}
        paths.setdefault(r.path, {})[r.method.lower()] = operation
    return paths, components
