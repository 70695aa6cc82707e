"""Shared fixtures: real databases per test, runtimes, in-process and real-server clients.

Integration tests run on SQLite and PostgreSQL (the `engine` parameter); PostgreSQL and
Redis come from tests/servers.py, which never skips: no server means a failure that says
what to set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from learnlog.api.app import create_app
from learnlog.api.auth import mint
from learnlog.bootstrap import Runtime, bootstrap
from learnlog.settings import Settings
from tests.support import Api, ServerProcess

if TYPE_CHECKING:  # imported by pytest as a plugin (assertion rewriting): not here
    from tests.servers import PgDatabases

pytest_plugins = ["tests.servers"]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over both engines."""
    return str(request.param)


@pytest.fixture
def database_url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of the requested engine."""
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'learnlog.db'}"
    databases: PgDatabases = request.getfixturevalue("pg_url_factory")
    url = databases()
    # Registered before the fixtures that use the database: runs after their teardown.
    request.addfinalizer(lambda: databases.release(url))
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, jwt_secret="test-secret-" + "x" * 32,
                    exports_dir=str(tmp_path / "exports"),
                    analytics_dir=str(tmp_path / "analytics"),
                    _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = bootstrap(settings)
    rt.start()
    yield rt
    rt.close()


@pytest.fixture
def api(runtime: Runtime) -> Iterator[Api]:
    """An in-process client of the app (real database, real writer thread)."""
    app = create_app(runtime.settings, runtime)
    with TestClient(app) as client:
        yield Api(client, mint(runtime.secret, "admin", ["admin"]), runtime.secret)


@pytest.fixture
def held_outbox(settings: Settings) -> Iterator[tuple[Api, Runtime]]:
    """An app whose outbox only moves when the test says so (to see what writes
    queue, and to run the processor by hand)."""
    rt = bootstrap(settings.model_copy(update={"process_outbox": False}))
    rt.start()
    with TestClient(create_app(rt.settings, rt)) as client:
        yield Api(client, mint(rt.secret, "admin", ["admin"]), rt.secret), rt
    rt.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real `learnlog serve` processes; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(database_url: str | None = None, **env: str) -> ServerProcess:
        url = database_url or f"sqlite:///{tmp_path / f'server{len(started)}.db'}"
        server = ServerProcess(url, env, tmp_path)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder so `-m unit` etc. work without decorating every test."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for marker in ("unit", "integration", "e2e"):
            if marker in parts:
                item.add_marker(getattr(pytest.mark, marker))


os.environ.setdefault("LEARNLOG_TEST", "1")
