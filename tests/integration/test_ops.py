"""Operations routes and the offline API docs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api

pytestmark = pytest.mark.parametrize("engine", ["sqlite"])


def test_health_ready_and_metrics(api: Api) -> None:
    assert api.client.get("/health").json() == {"status": "ok"}
    ready = api.client.get("/ready")
    assert (ready.status_code, ready.json()["status"]) == (200, "ok")
    api.start("u1", "c1")
    metrics = api.client.get("/metrics").text
    assert 'learnlog_requests_total{route="/v1/view/start",status="200"} 1.0' in metrics
    assert "learnlog_write_batch_size_total" in metrics
    assert "learnlog_outbox_depth" in metrics


def test_docs_work_without_internet(api: Api) -> None:
    page = api.client.get("/docs").text
    assert "/docs-static/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert api.client.get(f"/docs-static/{asset}").status_code == 200
    assert "redoc.standalone.js" in api.client.get("/redoc").text
    schema = api.client.get("/openapi.json").json()
    assert "/v1/view/update" in schema["paths"]


def test_openapi_promises_400_envelopes_and_never_422(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    update = schema["paths"]["/v1/view/update"]["post"]["responses"]
    assert "422" not in update
    for status in ("400", "401", "403"):
        assert update[status]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/Envelope")
    assert all("422" not in op["responses"] for path in schema["paths"].values()
               for op in path.values())


def test_a_server_process_freezes_what_start_up_built(engine: str, tmp_path: Any) -> None:
    """`learnlog serve`'s app (the process is the server) moves what start-up left alive
    out of the collector's passes, once the runtime has started; an app built inside
    another program (tests, an embedding) leaves that program's collector alone."""
    import gc

    from starlette.testclient import TestClient

    from learnlog.api.app import create_app
    from learnlog.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}",
                        _env_file=None)  # type: ignore[call-arg]
    gc.unfreeze()
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(settings, server_process=True)) as client:
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
