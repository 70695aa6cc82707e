"""Schemathesis against a real `learnlog serve` process: bad input never yields 422 or 5xx.

The server's own /openapi.json drives schemathesis 4 through its Python API. For every
operation the test sends

* up to 50 Hypothesis examples (`APIOperation.as_strategy`: 25 schema-conforming and 25
  schema-violating), derandomized;
* the deterministic coverage cases schemathesis derives from the schema
  (`schema.iter_coverage_cases`: boundary values, missing required fields, wrong types,
  unknown properties, unexpected methods);

and checks each response (`Case.validate_response`): no 5xx (schemathesis'
`not_a_server_error`), no 422, the Sunbird envelope on every /v1 answer (a 400 names its
field), and the caller's rights: an anonymous caller never succeeds on a protected route, a
learner never acts for another user nor uses an admin route.

Determinism: Hypothesis mixes into its generation constants it reads from the *local* source
modules loaded in the process (learnlog's), so in-process generation changes whenever anyone
edits src/ or imports another module first. The cases are therefore generated in a clean
subprocess that loads no local code (`python -c`, schema on stdin, cases back as JSON) and
rebuilt here with `APIOperation.Case`. Generation is the slow part: it runs once per distinct
schema and the same cases are replayed as admin (SQLite and PostgreSQL servers, with the
coverage cases), as a learner and unauthenticated (Hypothesis cases). Failures are collected
rather than raised inside Hypothesis, so nothing shrinks and the run time stays bounded; a
test fails with one report of every distinct failure.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup

from tests.support import ServerProcess

EXAMPLES_PER_MODE = 25  # positive + negative: at most 50 Hypothesis examples per operation
LEARNER = "learner1"
ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
RESPONSE_CODES = {200: "OK", 400: "CLIENT_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
                  404: "RESOURCE_NOT_FOUND", 405: "CLIENT_ERROR", 409: "CLIENT_ERROR",
                  500: "SERVER_ERROR"}
# Routes that answer without a token (or outside the viewer family's envelope).
PUBLIC = {"GET /health", "GET /ready", "GET /metrics", "GET /v1/certificate/verify/{token}"}
# An anonymous visitor may write its own visitor sessions (LEARNLOG_ALLOW_ANONYMOUS_LOGS).
VISITOR = {"POST /api/logger/trackprogress/", "PUT /api/logger/trackprogress/{session_id}/"}
OPS = {"GET /health", "GET /ready", "GET /metrics"}
ADMIN_ONLY = {"PUT /v1/collection/{collectionId}", "PUT /v1/context/{contextId}",
              "POST /api/logger/exports/", "GET /api/logger/exports/{export_id}/",
              "GET /api/logger/exports/{export_id}/download/"}
RAW_DOWNLOADS = {"GET /v1/summary/download/{userId}/{filename}",
                 "GET /api/logger/exports/{export_id}/download/"}

# Runs in a fresh interpreter: only the standard library, hypothesis and schemathesis.
GENERATOR = r"""
import base64, json, sys
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

examples = int(sys.argv[1])
schema = schemathesis.openapi.from_file(sys.stdin.read(), config=schemathesis.Config(seed=0))
modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]

def emit(label, kind, case):
    row = {"label": label, "kind": kind, "method": case.method,
           "path_parameters": case.path_parameters or {}, "query": case.query or {},
           "headers": dict(case.headers or {}), "cookies": case.cookies or {},
           "media_type": case.media_type}
    if isinstance(case.body, bytes):
        row["raw_body"] = base64.b64encode(case.body).decode()
    elif type(case.body).__name__ != "NotSet":
        row["body"] = case.body
    print(json.dumps(row))

for result in schema.get_all_operations():
    operation = result.ok()
    for mode in modes:
        cases = []

        @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def collect(case):
            cases.append(case)

        try:
            collect()
        except Exception as error:  # no way to violate a schema without parameters
            if type(error).__name__ != "Unsatisfiable":
                raise
        for case in cases:
            emit(operation.label, "fuzz", case)
    for case in schema.iter_coverage_cases(
            operation, generation_modes=modes,
            generation_config=schema.config.generation_for(operation=operation)):
        emit(operation.label, "coverage", case)
assert not [m for m in sys.modules if m.split(".")[0] in ("learnlog", "tests")]
"""


@dataclass
class Corpus:
    """The generated cases of one schema, per operation label."""

    fuzz: dict[str, list[Case]] = field(default_factory=dict)
    coverage: dict[str, list[Case]] = field(default_factory=dict)


_CORPORA: dict[str, Corpus] = {}


def corpus(schema: Any) -> Corpus:
    """Every case for every operation of the schema (generated once per distinct schema)."""
    text = json.dumps(schema.raw_schema, sort_keys=True)
    if text in _CORPORA:
        return _CORPORA[text]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HYPOTHESIS"))}
    # -P: the working directory is not on sys.path, so no local module can be imported
    done = subprocess.run([sys.executable, "-P", "-c", GENERATOR, str(EXAMPLES_PER_MODE)],
                          input=text, capture_output=True, text=True, timeout=240,
                          env={**env, "PYTHONHASHSEED": "0"}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    operations = {r.ok().label: r.ok() for r in schema.get_all_operations()}
    built = Corpus()
    for line in done.stdout.splitlines():
        row = json.loads(line)
        operation = operations[row.pop("label")]
        cases = built.fuzz if row.pop("kind") == "fuzz" else built.coverage
        if "raw_body" in row:
            row["body"] = base64.b64decode(row.pop("raw_body"))
        cases.setdefault(operation.label, []).append(operation.Case(**row))
    _CORPORA[text] = built
    return built


# -- checks (schemathesis check functions: (ctx, response, case)) ----------------------------

def no_422(ctx: Any, response: Any, case: Case) -> None:
    assert response.status_code != 422, f"422 from {case.operation.label}: {response.text[:500]}"


def envelope(ctx: Any, response: Any, case: Case) -> None:
    """Every /v1 answer is the Sunbird envelope, every error too (an UPPER_SNAKE code);
    the logger family's successes are Kolibri's plain JSON, sync's and stats' their own."""
    label, status = case.operation.label, response.status_code
    if label in OPS or (label in RAW_DOWNLOADS and status == 200):
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"not JSON ({status}): {response.text[:300]}") from None
    assert isinstance(body, dict), body
    if status in (200, 202) and " /api/logger/" in label:
        # The Kolibri family answers plain JSON on success (errors are the envelope).
        shapes = (isinstance(body.get("complete"), bool),  # trackprogress
                  isinstance(body.get("progress"), int),  # userprogress
                  isinstance(body.get("started"), bool),  # heartbeat
                  isinstance(body.get("state"), str),  # exports
                  isinstance(body.get("results"), list) and "next" in body)  # listings
        assert any(shapes), body
        return
    if status == 200 and " /v1/sync/" in label:
        # Sync answers plain JSON on success (docs/sync.md; errors are the envelope).
        assert "vectors" in body or "done" in body or "received" in body, body
        return
    if status == 200 and " /api/stats/" in label:
        # The stats API answers SPEC §6's shapes (docs/analytics.md; errors: the envelope).
        assert "course_id" in body and any(k in body for k in (
            "rows", "videos", "weeks", "segments")), body
        return
    assert set(body) == {"id", "ver", "ts", "params", "responseCode", "result"}, body
    params = body["params"]
    assert body["responseCode"] == RESPONSE_CODES.get(status), (status, body["responseCode"])
    if status == 200:
        assert params["status"] == "success" and params["err"] is None, body
        return
    assert params["status"] == "failed", body
    assert isinstance(params["err"], str) and ERROR_CODE.match(params["err"]), body
    assert isinstance(params["errmsg"], str) and params["errmsg"], body
    if status == 400:
        where = body["result"].get("field")
        assert isinstance(where, str) and where, f"a 400 that names no field: {body}"


def _user_ids(case: Case) -> list[Any]:
    """Every userId a case acts for: in its path, its request and its events."""
    found: list[Any] = []
    if isinstance(case.path_parameters, dict) and "userId" in case.path_parameters:
        found.append(case.path_parameters["userId"])
    body = case.body
    request = body.get("request") if isinstance(body, dict) else None
    if isinstance(request, dict):
        if "userId" in request:
            found.append(request["userId"])
        events = request.get("events")
        if isinstance(events, list):
            found += [e.get("userId") for e in events if isinstance(e, dict)]
    return found


def acting_as_learner(case: Case) -> Case:
    """The same case with every userId (path, request, events) replaced by the learner's."""
    if not _user_ids(case):
        return case
    path_parameters = dict(case.path_parameters or {})
    if "userId" in path_parameters:
        path_parameters["userId"] = LEARNER
    body = copy.deepcopy(case.body) if isinstance(case.body, dict) else case.body
    request = body.get("request") if isinstance(body, dict) else None
    if isinstance(request, dict):
        if "userId" in request:
            request["userId"] = LEARNER
        for event in request.get("events") or []:
            if isinstance(event, dict) and "userId" in event:
                event["userId"] = LEARNER
    return case.operation.Case(method=case.method, path_parameters=path_parameters,
                               query=dict(case.query or {}), headers=dict(case.headers or {}),
                               cookies=dict(case.cookies or {}), body=body,
                               media_type=case.media_type)


def rights_of(role: str) -> Callable[[Any, Any, Case], None]:
    def rights(ctx: Any, response: Any, case: Case) -> None:
        label, status = case.operation.label, response.status_code
        if role == "anonymous":
            if label not in PUBLIC | VISITOR:
                assert not 200 <= status < 300, f"{label} succeeded without a token"
            if status == 401:
                assert json.loads(response.content)["responseCode"] == "UNAUTHORIZED"
        elif role == "learner" and status in (200, 202):
            assert label not in ADMIN_ONLY, f"a learner used the admin route {label}"
            others = [u for u in _user_ids(case) if u != LEARNER]
            assert not others, f"{label} let {LEARNER} act for {others}"
    return rights


# -- the run ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    # (check, HTTP status, error code and message) -> operations, one example
    failures: dict[tuple[str, ...], tuple[set[str], str]] = field(default_factory=dict)

    def add(self, failure: Any, case: Case, response: Any) -> None:
        try:
            params = json.loads(response.content)["params"]
            what = f"{params['err']}: {params['errmsg']}"
        except (ValueError, KeyError, TypeError):
            what = response.text[:80]
        if response.status_code >= 500:  # one example per operation: the causes differ
            what += f" [{case.operation.label}]"
        key = (failure.title, f"HTTP {response.status_code}", what)
        routes, _ = self.failures.setdefault(key, (set(), _describe(failure, case, response)))
        routes.add(case.operation.label)

    def report(self) -> str:
        return "\n\n".join(
            f"### {title} ({status}, {what}) on {len(routes)} operations: "
            f"{', '.join(sorted(routes))}\n{example}"
            for (title, status, what), (routes, example) in sorted(self.failures.items()))


def _describe(failure: Any, case: Case, response: Any) -> str:
    message = " ".join(str(failure.message).split())[:300]
    curl = case.as_curl_command(headers={"Authorization": "Bearer ..."} if
                                "Authorization" in response.request.headers else {})
    return f"    {message}\n    response: {response.text[:300]}\n    e.g. {curl[:700]}"


def replay(server: ServerProcess, cases: dict[str, list[Case]], headers: dict[str, str],
           role: str, outcome: Outcome) -> None:
    checks = [not_a_server_error, no_422, envelope, rights_of(role)]
    with requests.Session() as session:
        for label, batch in cases.items():
            if label in OPS:  # no input to fuzz; /ready is a 503 by design while not ready
                continue
            for case in batch:
                response = case.call(base_url=server.base_url, session=session,
                                     headers=headers, timeout=30)
                outcome.requests += 1
                outcome.statuses[response.status_code] = (
                    outcome.statuses.get(response.status_code, 0) + 1)
                try:
                    case.validate_response(response, checks=checks, headers=headers)
                except FailureGroup as group:
                    for failure in group.exceptions:
                        outcome.add(failure, case, response)


@pytest.fixture
def fuzz_server(request: pytest.FixtureRequest,
                serve: Callable[..., ServerProcess]) -> Iterator[ServerProcess]:
    """A real server on a fresh database of the requested engine."""
    engine = request.param
    url = request.getfixturevalue("pg_url_factory")() if engine == "postgresql" else None
    yield serve(url)


ROLES = [
    pytest.param("sqlite", "admin", id="admin-sqlite"),
    pytest.param("postgresql", "admin", id="admin-postgresql"),
    pytest.param("sqlite", "learner", id="learner-sqlite"),
    pytest.param("sqlite", "anonymous", id="anonymous-sqlite"),
]


@pytest.mark.parametrize(("fuzz_server", "role"), ROLES, indirect=["fuzz_server"])
def test_schemathesis_finds_no_422_no_5xx(fuzz_server: ServerProcess, role: str) -> None:
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json",
                                           config=schemathesis.Config(seed=0), timeout=30)
    cases = corpus(schema)
    assert len(set(cases.fuzz) - OPS) >= 19, sorted(cases.fuzz)  # every route is fuzzed
    if role == "admin":
        headers = {"Authorization": f"Bearer {fuzz_server.api().token}"}
    elif role == "learner":
        headers = {"Authorization": f"Bearer {fuzz_server.api(LEARNER, 'learner').token}"}
    else:
        headers = {}
    outcome = Outcome()
    replay(fuzz_server, cases.fuzz, headers, role, outcome)
    if role == "learner":  # the same cases again, acting for itself
        own = {label: [acting_as_learner(c) for c in batch] for label, batch in cases.fuzz.items()}
        replay(fuzz_server, own, headers, role, outcome)
    if role == "admin":  # the coverage cases as the caller that gets past authorisation
        replay(fuzz_server, cases.coverage, headers, role, outcome)
    if outcome.failures:
        pytest.fail(f"{len(outcome.failures)} distinct failures as {role} in {outcome.requests} "
                    f"requests (statuses {dict(sorted(outcome.statuses.items()))}):\n\n"
                    f"{outcome.report()}", pytrace=False)
    assert outcome.requests > 500, outcome
    assert role == "anonymous" or outcome.statuses.get(200, 0) > 0, outcome.statuses
    print(f"{role}: {outcome.requests} requests in {time.monotonic() - started:.1f} s, "
          f"statuses {dict(sorted(outcome.statuses.items()))}")
