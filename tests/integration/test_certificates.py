"""Certificates (SPEC §2.6): issued once when an enrolment meets a template, verifiable.

The collection has a video and a quiz and two templates: "Completion" (status 2) and
"Merit" (status 2 and best score percent ≥ 60). Certificate issue may lag (SPEC §7), so
reads poll briefly.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from learnlog.bootstrap import Runtime
from tests.integration.test_viewer_rules import (
    ETS,
    USER,
    assert_facts_agree,
    attempt_events,
    eventually,
    settle,
)
from tests.support import Api, leaf, unit

pytestmark = pytest.mark.integration

COURSE = "course-cert"
VIDEO, QUIZ, EXTRA = "do_cert_video", "do_cert_quiz", "do_cert_extra"
TEMPLATES = [
    {"name": "Completion", "criteria": {"status": 2}},
    {"name": "Merit", "criteria": {"status": 2, "score": {">=": 60}}},
]


def register(api: Api, runtime: Runtime, *extra: dict[str, Any]) -> None:
    """Register (or change) the collection and wait until the change has been processed."""
    api.put_collection(COURSE, [unit("u1", leaf(VIDEO), leaf(QUIZ, kind="exercise"), *extra)],
                       certificates=TEMPLATES)
    settle(runtime)


def watch(api: Api) -> None:
    api.start(USER, VIDEO, COURSE)
    api.end(USER, VIDEO, COURSE)


def quiz(api: Api, attempt: str, *scores: float, ts: int = ETS) -> None:
    api.submit(USER, QUIZ, COURSE, attemptId=attempt, assessmentTs=ts,
               assessments=attempt_events(*scores, ets=ts))


def certificates(api: Api, expect: set[str] | None = None) -> list[dict[str, Any]]:
    """The enrolment's issued certificates (waiting up to a few seconds for `expect`)."""
    def names(found: list[dict[str, Any]]) -> bool:
        return expect is None or {c["name"] for c in found} == expect
    found: list[dict[str, Any]] = eventually(
        lambda: api.summary(USER, COURSE)["issuedCertificates"], names)
    return found


def by_name(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in found}


def tamper(token: str) -> str:
    """The same signature over other claims (another learner's name on the certificate)."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["userId"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_completion_is_issued_once_and_merit_only_with_a_high_score(api: Api,
                                                                    runtime: Runtime) -> None:
    register(api, runtime)
    quiz(api, "low", 1, 0, 0)  # 33 %
    assert certificates(api) == []  # not completed yet
    watch(api)

    assert api.summary(USER, COURSE)["status"] == 2
    (completion,) = certificates(api, {"Completion"})
    assert completion["name"] == "Completion"
    assert completion["token"].count(".") == 2  # a compact JWS
    assert completion["id"]
    assert isinstance(completion["lastIssuedOn"], int)

    # Completing again issues nothing more.
    watch(api)
    quiz(api, "low", 1, 0, 0, ts=ETS + 1)
    settle(runtime)
    assert certificates(api) == [completion]

    # A better attempt reaches 66 % ≥ 60: Merit is issued, Completion is untouched.
    quiz(api, "high", 1, 1, 0, ts=ETS + 60_000)
    issued = by_name(certificates(api, {"Completion", "Merit"}))
    assert issued["Completion"] == completion
    assert len(certificates(api)) == 2
    assert api.summaries(USER)[0]["issuedCertificates"] == certificates(api)
    assert_facts_agree(runtime)


def test_both_are_issued_when_completed_with_a_high_score(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    watch(api)
    quiz(api, "a1", 1, 1, 0)  # 66 %: the submission completes the quiz and the collection

    issued = by_name(certificates(api, {"Completion", "Merit"}))
    assert issued["Completion"]["id"] != issued["Merit"]["id"]
    assert issued["Completion"]["token"] != issued["Merit"]["token"]
    assert_facts_agree(runtime)


def test_merit_is_not_issued_below_the_threshold(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    quiz(api, "a1", 1, 0.5, 0.2)  # 56.67 %
    watch(api)

    assert [c["name"] for c in certificates(api, {"Completion"})] == ["Completion"]
    settle(runtime)
    assert [c["name"] for c in certificates(api)] == ["Completion"]
    assert_facts_agree(runtime)


def test_no_certificate_before_completion(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    quiz(api, "a1", 1, 1, 1)  # 100 % but the video is not done
    api.start(USER, VIDEO, COURSE)
    settle(runtime)

    summary = api.summary(USER, COURSE)
    assert (summary["status"], summary["progress"]) == (1, 50)
    assert summary["issuedCertificates"] == []
    assert_facts_agree(runtime)


def test_completion_through_a_structure_change_issues_the_certificate(api: Api,
                                                                      runtime: Runtime) -> None:
    register(api, runtime, leaf(EXTRA))
    watch(api)
    quiz(api, "a1", 1, 0, 0)
    assert certificates(api) == []

    register(api, runtime)  # the one content left to do is removed from the structure
    assert [c["name"] for c in certificates(api, {"Completion"})] == ["Completion"]
    assert api.summary(USER, COURSE)["status"] == 2
    assert_facts_agree(runtime)


def test_certificate_token_verifies(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    quiz(api, "a1", 1, 1, 1)
    watch(api)
    issued = by_name(certificates(api, {"Completion", "Merit"}))

    for name, cert in issued.items():
        response = api.call("GET", f"/v1/certificate/verify/{cert['token']}")
        assert response["params"]["status"] == "success"
        result = response["result"]
        assert result["valid"] is True
        shown = result["certificate"]
        assert shown["id"] == cert["id"]
        assert shown["name"] == name
        assert shown["userId"] == USER
        assert shown["collectionId"] == COURSE
        assert shown["issuedOn"] == cert["lastIssuedOn"]


def test_tampered_certificate_token_is_rejected(api: Api, runtime: Runtime) -> None:
    register(api, runtime)
    watch(api)
    quiz(api, "a1", 1, 0, 0)
    (cert,) = certificates(api, {"Completion"})

    token = cert["token"]
    other_signature = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    for bad in (tamper(token), other_signature, "not-a-token"):
        response = api.call("GET", f"/v1/certificate/verify/{bad}", status=400)
        assert response["params"]["err"] == "CERTIFICATE_INVALID"
        assert response["responseCode"] == "CLIENT_ERROR"
        assert "valid" not in response["result"]
