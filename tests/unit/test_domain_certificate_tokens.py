"""Certificate tokens' claims (domain/certificates.py): what is signed, what is shown."""

from __future__ import annotations

import pytest

from learnlog.domain.certificates import TOKEN_TYPE, certificate_claims, certified
from learnlog.domain.errors import InvalidInput

pytestmark = pytest.mark.unit


def test_a_certificate_token_carries_its_type_id_name_enrolment_and_issue_time() -> None:
    claims = certificate_claims("c1", "Maths", "default", "u1", "col", "ctx", 1_700_000)
    assert claims == {"typ": "certificate", "id": "c1", "name": "Maths", "dataset": "default",
                      "userId": "u1", "collectionId": "col", "contextId": "ctx",
                      "issuedOn": 1_700_000}
    assert TOKEN_TYPE == "certificate"


def test_a_verified_certificate_shows_its_claims_without_the_type() -> None:
    claims = certificate_claims("c1", "Maths", "default", "u1", "col", "ctx", 5)
    shown = certified(claims)
    assert shown == {"id": "c1", "name": "Maths", "dataset": "default", "userId": "u1",
                     "collectionId": "col", "contextId": "ctx", "issuedOn": 5}
    assert list(shown) == [k for k in claims if k != "typ"]
    assert claims["typ"] == "certificate"  # the claims themselves are left alone


@pytest.mark.parametrize("claims", [
    {"sub": "u1", "dataset": "default"}, {"typ": "access", "id": "c1"}, {"typ": None}, {}])
def test_a_token_that_is_not_a_certificate_is_refused(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as refused:
        certified(claims)
    assert refused.value.code == "CERTIFICATE_INVALID"
    assert refused.value.field == "token"
    assert refused.value.message == "The token is not a certificate."
