"""50 concurrent clients adding time to the same learner and content lose nothing.

A real server with two worker processes (two writers racing for the same rows), on SQLite
and on PostgreSQL; the sum must be exact and `learnlog verify` must find no difference.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support import ServerProcess, keys

CLIENTS = 50
UPDATES = 12
SECONDS = 1.25


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_fifty_clients_lose_no_time(engine: str, serve: Callable[..., ServerProcess],
                                    request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url_factory")() if engine == "postgresql" else None
    server = serve(url, WORKERS="2")
    api = server.api()
    api.start("learner", "video-1", "course", "batch")
    body = {"request": {**keys("learner", "video-1", "course", "batch"),
                        "timespent": SECONDS, "progress": 40}}
    headers = {"Authorization": f"Bearer {api.token}"}

    def client(_: int) -> list[int]:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            return [http.post("/v1/view/update", json=body, headers=headers).status_code
                    for _ in range(UPDATES)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for batch in pool.map(client, range(CLIENTS)) for s in batch]
    assert statuses == [200] * CLIENTS * UPDATES
    row = api.one("learner", "video-1", "course", "batch")
    assert row["timeSpent"] == pytest.approx(CLIENTS * UPDATES * SECONDS, abs=1e-6)
    assert row["progress"] == 40
    verify = subprocess.run([sys.executable, "-m", "learnlog", "verify"], env=server.env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
