"""The ASGI app factory. `create_app(settings)` builds everything through `bootstrap`."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..bootstrap import Runtime, bootstrap, freeze_startup
from ..domain.errors import LearnlogError
from ..settings import Settings
from . import envelope, exports, groups, identity, lean, logger, ops, stats, sync, viewer
from . import models as m
from .auth import Authenticator

_JSON = (b"content-type", b"application/json")


class Edge:
    """The one edge of learnlog: body limit, JSON bodies, request metrics, and the lean
    routes (`lean.py`) answered right here.

    Bodies above the limit get a 400 before anything reads them whole. The API speaks
    only JSON: a body sent with another content type (curl's default form type, say) is
    read as JSON rather than refused for its header. Requests are counted and timed per
    route template. A hot route is decoded and answered here without the framework; every
    other request goes on to FastAPI.
    """

    def __init__(self, app: ASGIApp, limit: int, metrics: ops.Metrics,
                 lean_routes: Sequence[lean.LeanRoute] = (), state: Any = None) -> None:
        self.app, self.limit, self.metrics, self.state = app, limit, metrics, state
        self.table = lean.LeanTable(lean_routes)
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        found = self.table.match(scope["path"])
        if found is not None:
            await self._lean(scope, receive, send, found, start)
            return
        headers = []
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send, envelope.body_field(scope["path"]))
                return
            if name != b"content-type":
                headers.append((name, value))
        headers.append(_JSON)
        scope = {**scope, "headers": headers}
        seen = 0
        status = 500

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # The framework passes HTTP exceptions through to the one handler.
                    raise StarletteHTTPException(
                        413, f"The body is larger than {self.limit} bytes.")
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, limited, sending)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            self._measure(name, status, start)

    async def _lean(self, scope: Scope, receive: Receive, send: Send,
                    found: tuple[dict[str, lean.LeanRoute], dict[str, str]],
                    start: float) -> None:
        methods, params = found
        route = methods.get(scope["method"])
        status = 500
        try:
            if route is None:
                answer = lean.not_allowed(scope["path"], scope["method"])
            else:
                body = await self._body(scope, receive)
                if body is None:
                    await self._refuse(send, route.root)
                    status = 400
                    return
                answer = await lean.serve(route, self.state.runtime, self.state.auth,
                                          scope["headers"], body, params)
            status = answer.status
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer.body)).encode()), *answer.headers]})
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            self._measure(route.path if route is not None else "unmatched", status, start)

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than the limit."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return None
        message = await receive()
        body: bytes = message.get("body", b"")
        if len(body) > self.limit:
            return None
        if not message.get("more_body", False):
            return body
        parts = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            parts.append(chunk)
        return b"".join(parts)

    def _measure(self, route: str, status: int, start: float) -> None:
        counter = self._counted.get((route, status))
        if counter is None:
            counter = self._counted[(route, status)] = self.metrics.requests.labels(
                route=route, status=str(status))
        timer = self._timed.get(route)
        if timer is None:
            timer = self._timed[route] = self.metrics.latency.labels(route=route)
        counter.inc()
        timer.observe(time.perf_counter() - start)

    async def _refuse(self, send: Send, field: str) -> None:
        body = envelope.failed("api.learnlog", 400, "CLIENT_ERROR", "REQUEST_TOO_LARGE",
                               f"The body is larger than {self.limit} bytes.", field)
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body.body)).encode())]})
        await send({"type": "http.response.body", "body": body.body})


def _offline_docs(app: FastAPI) -> None:
    """/docs and /redoc from assets shipped in a package: a school server has no CDN."""
    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    static = Path(fastapi_offline.__file__).with_name("static")
    app.mount("/docs-static", StaticFiles(directory=static), name="docs-static")

    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="learnlog API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon.png")

    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="learnlog API",
                              redoc_js_url="/docs-static/redoc.standalone.js",
                              redoc_favicon_url="/docs-static/favicon.png")

    app.add_api_route("/docs", swagger, include_in_schema=False)
    app.add_api_route("/redoc", redoc, include_in_schema=False)


# Success bodies of the routes whose errors are the envelope (all but /health and friends).
_DOCUMENTED = ("/Envelope", "/TrackState", "/TrackResult", "/LogPage", "/UserProgress",
               "/HeartbeatOut", "/ExportOut")
_ERRORS = {
    "400": "Bad input: `params.err` is a stable code, `result.field` names the field.",
    "401": "No token, or a token that does not verify or has expired.",
    "403": "The caller may not do this (another user's records, an admin route).",
    "404": "The thing named does not exist.",
}


LEAN_ROUTES: tuple[lean.LeanRoute, ...] = (*viewer.LEAN, *logger.LEAN)


def _contract(schema: Any) -> Any:
    """A JSON Schema without what does not constrain (titles, defaults, empty lists of
    required fields): pydantic and msgspec write the same model slightly differently."""
    if isinstance(schema, dict):
        return {k: _contract(v) for k, v in schema.items()
                if k not in ("title", "default") and not (k == "required" and not v)}
    if isinstance(schema, list):
        return [_contract(v) for v in schema]
    return schema


def _lean_docs(route: lean.LeanRoute) -> str:
    return inspect.cleandoc(route.handler.__doc__ or route.name)


def _openapi_with_envelope_errors(app: FastAPI) -> None:
    """The OpenAPI document says what the API really answers: the lean routes beside the
    framework's, the envelope on 400, 401, 403 and 404, and never a 422 (validation errors
    are 400s)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        paths, components = lean.openapi_paths(LEAN_ROUTES, _lean_docs)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, body in components.items():
            if name in schemas and _contract(schemas[name]) != _contract(body):
                raise RuntimeError(f"two OpenAPI schemas named {name}: rename one")
            schemas[name] = body
        for name, model in (("Envelope", envelope.Envelope), ("TrackResult", m.TrackResult)):
            if name not in schemas:
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(found.pop("$defs", {}))
                schemas[name] = found
        for path, item in paths.items():
            schema["paths"].setdefault(path, {}).update(item)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                if any(r.get("content", {}).get("application/json", {}).get("schema", {})
                       .get("$ref", "").endswith(_DOCUMENTED) for r in responses.values()):
                    for status, text in _ERRORS.items():
                        responses.setdefault(status, {
                            "description": text, "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Envelope"}}}})
        components = schema.get("components", {}).get("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class LearnlogAPI(FastAPI):
    """FastAPI behind the edge: every request meets `Edge` first, so a lean route is
    answered before any of the framework's per-request work (its middleware stack, its
    telemetry checks) runs; the rest goes on to FastAPI as usual."""

    edge: Edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.edge(scope, receive, send)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None, *,
               server_process: bool = False) -> FastAPI:
    """Build the app; the runtime starts and stops with the app's lifespan.
    `server_process`: the app is the whole process (`learnlog serve`), so what start-up
    built is frozen out of the garbage collector's passes (`freeze_startup`)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or bootstrap(settings)
        app.state.auth = Authenticator(rt.secret, rt.settings.jwt_public_keys,
                                       rt.settings.offline_grace)
        rt.start()
        app.state.runtime = rt
        if server_process:
            freeze_startup()
        try:
            yield
        finally:
            if rt.cache is not None:
                await rt.cache.aclose()  # the asyncio Redis client of this loop
            if runtime is None:
                rt.close()

    app = LearnlogAPI(title="learnlog", version="0.1.0", lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  description="Learning progress, scores and analytics. See /docs.")
    _offline_docs(app)
    _openapi_with_envelope_errors(app)
    app.state.metrics = ops.Metrics()

    async def on_domain(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, LearnlogError)
        return envelope.error_response(request, exc)

    async def on_validation(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        return envelope.validation_response(request, exc)

    async def on_http(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        return envelope.http_exception_response(request, exc)

    async def on_any(request: Any, exc: Exception) -> Any:
        return envelope.unexpected_response(request, exc)

    app.add_exception_handler(LearnlogError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_any)
    app.include_router(viewer.router)
    app.include_router(logger.router)
    app.include_router(exports.router)
    app.include_router(identity.router)
    app.include_router(groups.router)
    app.include_router(sync.router)
    app.include_router(stats.router)
    app.include_router(ops.router)
    app.edge = Edge(partial(FastAPI.__call__, app), settings.max_body_bytes,
                    app.state.metrics, LEAN_ROUTES, app.state)
    return app


def factory() -> FastAPI:
    """For `uvicorn --factory learnlog.api.app:factory` (settings from the environment)."""
    return create_app(Settings(), server_process=True)
