"""Authentication: HS256 secret, RS256 PEM keys, an ES256 JWKS, expiry and offline grace."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from learnlog.api.app import create_app
from learnlog.bootstrap import bootstrap
from learnlog.settings import Settings
from tests.support import Api, keys

pytestmark = pytest.mark.parametrize("engine", ["sqlite"])

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _pem(key: Any) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _client(settings: Settings) -> Iterator[TestClient]:
    rt = bootstrap(settings)
    rt.start()
    try:
        with TestClient(create_app(settings, rt)) as client:
            yield client
    finally:
        rt.close()


def _token(key: Any, alg: str, **claims: Any) -> str:
    return jwt.encode({"sub": "priya", "roles": ["learner"], **claims}, key, algorithm=alg)


def _start(client: TestClient, token: str) -> int:
    response = client.post("/v1/view/start", headers={"Authorization": f"Bearer {token}"},
                           json={"request": keys("priya", "c1")})
    return response.status_code


@pytest.fixture
def pem_client(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "keys.pem"
    path.write_text(_pem(RSA_KEY) + _pem(EC_KEY))
    yield from _client(settings.model_copy(update={"jwt_public_keys": str(path)}))


def test_rs256_and_es256_tokens_verify_with_pem_keys(pem_client: TestClient) -> None:
    assert _start(pem_client, _token(RSA_KEY, "RS256")) == 200
    assert _start(pem_client, _token(EC_KEY, "ES256")) == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _start(pem_client, _token(other, "RS256")) == 401


@pytest.fixture
def jwks_client(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES256"}]}))
    yield from _client(settings.model_copy(update={"jwt_public_keys": str(path)}))


def test_es256_tokens_verify_with_a_jwks_file(jwks_client: TestClient) -> None:
    assert _start(jwks_client, _token(EC_KEY, "ES256")) == 200
    assert _start(jwks_client, _token(RSA_KEY, "RS256")) == 401


def test_expired_tokens_are_rejected(api: Api) -> None:
    expired = jwt.encode({"sub": "priya", "exp": int(time.time()) - 10}, api.secret,
                         algorithm="HS256")
    body = api.call("POST", "/v1/view/start", {"request": keys("priya", "c1")}, status=401,
                    token=expired)
    assert body["params"]["err"] == "UNAUTHORIZED_USER"


@pytest.fixture
def grace_api(settings: Settings) -> Iterator[Api]:
    settings = settings.model_copy(update={"offline_grace": 7 * 24 * 3600})
    for client in _client(settings):
        yield Api(client, "unused", settings.jwt_secret)


def test_offline_grace_lets_an_expired_token_write_but_not_read(grace_api: Api) -> None:
    week_ago = jwt.encode({"sub": "priya", "exp": int(time.time()) - 6 * 24 * 3600},
                          grace_api.secret, algorithm="HS256")
    grace_api.call("POST", "/v1/view/start", {"request": keys("priya", "c1")}, token=week_ago)
    grace_api.call("POST", "/v1/view/read",
                   {"request": {"userId": "priya", "contentId": ["c1"]}}, status=401,
                   token=week_ago)
    too_old = jwt.encode({"sub": "priya", "exp": int(time.time()) - 8 * 24 * 3600},
                         grace_api.secret, algorithm="HS256")
    grace_api.call("POST", "/v1/view/start", {"request": keys("priya", "c2")}, status=401,
                   token=too_old)


def test_tokens_of_another_dataset_see_nothing(api: Api) -> None:
    api.start("priya", "c1")
    api.end("priya", "c1")
    other = jwt.encode({"sub": "admin", "dataset": "other-school", "roles": ["admin"]},
                       api.secret, algorithm="HS256")
    rows = api.call("POST", "/v1/view/read",
                    {"request": {"userId": "priya", "contentId": ["c1"]}}, token=other)
    assert rows["result"]["contents"][0]["status"] == 0
    assert api.one("priya", "c1")["status"] == 2
