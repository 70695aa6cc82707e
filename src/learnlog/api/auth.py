"""JWT bearer authentication (SPEC §3); who may do what is `access.py`.

Verified tokens are cached (bounded) by their exact text, so the hot path verifies a
learner's token once, not on every request; expiry is still checked on every use.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from ..domain.errors import Unauthorized

ROLES = ("admin", "coach", "learner", "device", "service")
_CACHE_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    user_id: str
    dataset: str
    roles: frozenset[str]
    expires_at: float | None
    # The sync partitions a device token is granted (its `partitions` claim, SPEC §3).
    partitions: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles or "service" in self.roles


def mint(secret: str, sub: str, roles: Sequence[str] = ("learner",), dataset: str = "default",
         ttl: int | None = 3600 * 24, now: float | None = None,
         partitions: Sequence[str] = ()) -> str:
    """A signed HS256 token for local use (`learnlog token`); `partitions` are a device's
    sync grants."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"sub": sub, "dataset": dataset, "roles": list(roles), "iat": issued}
    if partitions:
        claims["partitions"] = list(partitions)
    if ttl is not None:
        claims["exp"] = issued + ttl
    return jwt.encode(claims, secret, algorithm="HS256")


def _public_keys(path: str) -> list[tuple[Any, str]]:
    """(key, algorithm) pairs from a PEM file (one or more public keys) or a JWKS file."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = Path(path).read_text()
    if text.lstrip().startswith("{"):
        keys = [k.key for k in jwt.PyJWKSet.from_json(text).keys]
    else:
        blocks = text.split("-----END PUBLIC KEY-----")
        keys = [load_pem_public_key((b + "-----END PUBLIC KEY-----").strip().encode())
                for b in blocks if "BEGIN PUBLIC KEY" in b]
    pairs: list[tuple[Any, str]] = []
    for key in keys:
        if isinstance(key, rsa.RSAPublicKey):
            pairs.append((key, "RS256"))
        elif isinstance(key, ec.EllipticCurvePublicKey):
            pairs.append((key, "ES256"))
    return pairs


class Authenticator:
    """Verifies bearer tokens with the instance secret and any configured public keys."""

    def __init__(self, secret: str, public_keys_path: str = "", offline_grace: int = 0) -> None:
        self._secret = secret
        self._keys = _public_keys(public_keys_path) if public_keys_path else []
        self._grace = offline_grace
        self._cache: OrderedDict[str, Principal] = OrderedDict()

    def _verify(self, token: str) -> Principal:
        options: jwt.types.Options = {"verify_exp": False, "require": ["sub"]}
        claims: dict[str, Any] | None = None
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options=options)
        except jwt.InvalidTokenError:
            # Each key verifies only tokens of its own algorithm (no algorithm confusion).
            for key, algorithm in self._keys:
                try:
                    claims = jwt.decode(token, key, algorithms=[algorithm], options=options)
                    break
                except jwt.InvalidTokenError:
                    continue
        if claims is None:
            raise Unauthorized("You are not authorized: the token does not verify.",
                               code="UNAUTHORIZED_USER")
        sub, dataset = claims.get("sub"), claims.get("dataset", "default")
        roles = claims.get("roles", ["learner"])
        if isinstance(roles, str):
            roles = [roles]
        if claims.get("administrator") is True and isinstance(roles, list):
            roles = [*roles, "admin"]  # an Open edX JWT's global staff flag
        username = claims.get("preferred_username")
        if isinstance(username, str) and username:
            sub = username  # Open edX: `sub` is an anonymous id, the user is the username
        if not isinstance(sub, str) or not sub or not isinstance(dataset, str) or not (
                isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
            raise Unauthorized("You are not authorized: malformed token claims.",
                               code="UNAUTHORIZED_USER")
        partitions = claims.get("partitions", [])
        if not (isinstance(partitions, list) and all(isinstance(p, str) for p in partitions)):
            raise Unauthorized("You are not authorized: malformed token claims (partitions "
                               "must be a list of strings).", code="UNAUTHORIZED_USER")
        exp = claims.get("exp")
        return Principal(sub, dataset, frozenset(roles) & set(ROLES),
                         float(exp) if isinstance(exp, int | float) else None,
                         frozenset(partitions))

    def authenticate(self, header: str | None, *, write: bool = False) -> Principal:
        """The caller of a request, from its Authorization header."""
        if not header or not header.startswith("Bearer "):
            raise Unauthorized("You are not authorized: send Authorization: Bearer <token>.",
                               code="UNAUTHORIZED_USER")
        return self.authenticate_token(header[7:].strip(), write=write)

    def authenticate_cookies(self, cookies: dict[str, str]) -> Principal:
        """The caller from Open edX's split JWT cookies: `edx-jwt-cookie-header-payload`
        (header.payload) and `edx-jwt-cookie-signature`, joined back into one token."""
        head = cookies.get("edx-jwt-cookie-header-payload")
        signature = cookies.get("edx-jwt-cookie-signature")
        if not head or not signature:
            raise Unauthorized("You are not authorized: send Authorization: Bearer <token> "
                               "or the edx-jwt-cookie-header-payload and "
                               "edx-jwt-cookie-signature cookies.", code="UNAUTHORIZED_USER")
        return self.authenticate_token(f"{head}.{signature}")

    def authenticate_token(self, token: str, *, write: bool = False) -> Principal:
        """The caller a token names, once it verifies and has not expired."""
        principal = self._cache.get(token)
        if principal is None:
            principal = self._verify(token)
            self._cache[token] = principal
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        if principal.expires_at is not None:
            late = time.time() - principal.expires_at
            if late > 0 and not (write and late <= self._grace):
                raise Unauthorized("You are not authorized: the token has expired.",
                                   code="UNAUTHORIZED_USER")
        return principal
