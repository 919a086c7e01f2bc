"""App token verification: HS256 by app_auth kid, then the claims (docs/protocol.md).

Order, and why:

1. The ``Authorization`` header must be ``Bearer <compact JWS>`` of bounded size, with header
   ``alg: HS256``, no ``crit``, and ``typ`` absent or exactly ``JWT`` (anything else, ``none``
   included, is refused before any key is touched).
2. The key is looked up by the payload's ``sub`` and the header's ``kid``. An unknown client or
   kid still runs a full HMAC verification against a decoy key, so that "unknown" and "bad
   signature" do the same work and answer the same 401 ``invalid-token``. Every HMAC key is
   prepared once, when a bundle loads (:class:`Verifier`): answering never imports a key.
3. Only a token that verified is examined further, so claim errors reveal nothing to a forger:
   ``aud`` other than the stack's name (a string) is 401 ``invalid-token``; ``iat`` outside
   ±300 s is 401 ``stale-token``; any other malformed claim (``iat`` not an integer, ``jti``,
   ``app_version``, ``install_id``, ``epk``, ``held``) is 400 ``bad-request``.

Every pattern is matched whole (``fullmatch``) with ASCII classes: ``$`` would let a trailing
newline through, and ``\\d`` other scripts' digits.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from keyops.core import b64, patterns
from keyops.core.errors import ServiceError
from keyops.protocol import jose
from keyops.protocol.bundle import CREDENTIAL_ID_RE, MAX_VERSION, SEMVER_RE, Bundle

IAT_WINDOW_SECONDS = 300
#: Longer Authorization values are refused unparsed (a real token is well under 1 KiB).
MAX_TOKEN_BYTES = 8192
INSTALL_ID_RE = patterns.INSTALL_ID
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MIN_JTI, MAX_JTI = 16, 256
MAX_APP_VERSION = MAX_VERSION
#: The documented token rules, as data: docs/protocol.md and openapi.yaml are tested against it.
TOKEN_RULES = {
    "header": {"alg": "HS256", "typ": "JWT"},
    "claims": {
        "sub": "string",
        "aud": "string",
        "iat": "integer",
        "jti": "string",
        "app_version": "string",
        "install_id": "string",
        "epk": "object",
        "held": "string",
    },
    "required": ["sub", "aud", "iat", "jti", "app_version", "install_id", "epk"],
}


def invalid_token() -> ServiceError:
    return ServiceError(401, "invalid-token", "The token is not valid")


def stale_token() -> ServiceError:
    return ServiceError(401, "stale-token", "The token's iat is outside the accepted window")


def bad_request(what: str) -> ServiceError:
    # ``what`` names a claim, never a value: values may be secret or hostile.
    return ServiceError(400, "bad-request", f"Malformed request: {what}")


class Claims(NamedTuple):
    client: str
    kid: str
    jti: str
    app_version: str
    install_id: str
    epk: EllipticCurvePublicKey
    held: str | None = None
    iat: int | None = None


def bearer_token(authorization: str | None) -> str:
    if authorization is None or len(authorization) > MAX_TOKEN_BYTES + 16:
        raise invalid_token()
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not TOKEN_RE.fullmatch(token):
        raise invalid_token()
    return token


def _json(segment: str) -> Any:
    try:
        return jose.json_segment(segment)
    except ValueError:
        return None


class Verifier:
    """Verifies tokens against one bundle, with every app_auth key prepared at construction."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.keys: Mapping[tuple[str, str], hmac.HMAC] = {
            (name, kid): jose.hmac_key(secret)
            for name, client in bundle.clients.items()
            for kid, secret in client.auth_keys.items()
        }
        #: Verifying against this when the client or kid is unknown keeps the work identical.
        self.decoy = jose.hmac_key(os.urandom(32))

    def verify(self, authorization: str | None, now: float) -> Claims:
        token = bearer_token(authorization)
        header_part, payload_part, signature_part = token.split(".")
        header = _json(header_part)
        unverified = _json(payload_part)
        if not isinstance(header, dict) or header.get("alg") != "HS256" or "crit" in header:
            raise invalid_token()
        if header.get("typ", "JWT") != "JWT" or header.get("b64", True) is not True:
            raise invalid_token()
        kid = header.get("kid")
        sub = unverified.get("sub") if isinstance(unverified, dict) else None
        key = None
        if isinstance(sub, str) and isinstance(kid, str):
            key = self.keys.get((sub, kid))
        try:
            signature = b64.decode_unpadded(signature_part)
        except ValueError:
            signature = b""
        signing_input = f"{header_part}.{payload_part}".encode("ascii")
        valid = jose.hs256_valid(key or self.decoy, signing_input, signature)
        if not valid or key is None:
            raise invalid_token()
        if not isinstance(unverified, dict):
            raise bad_request("the token payload is not a JSON object")
        return _check_claims(unverified, str(sub), str(kid), self.bundle.stack, now)


def _check_claims(claims: dict[str, Any], client: str, kid: str, stack: str, now: float) -> Claims:
    aud = claims.get("aud")
    if type(aud) is not str or aud != stack:
        raise invalid_token()
    iat = claims.get("iat")
    if type(iat) is not int:
        raise bad_request("iat must be an integer number of seconds since the epoch")
    # Integer arithmetic: a float would overflow on an iat of 10**400.
    if abs(int(now) - iat) > IAT_WINDOW_SECONDS:
        raise stale_token()
    jti = claims.get("jti")
    if not isinstance(jti, str) or not MIN_JTI <= len(jti) <= MAX_JTI:
        raise bad_request(f"jti must be a string of {MIN_JTI} to {MAX_JTI} characters")
    version = claims.get("app_version")
    if (
        not isinstance(version, str)
        or len(version) > MAX_APP_VERSION
        or not SEMVER_RE.fullmatch(version)
    ):
        raise bad_request("app_version must be a semantic version such as 5.2.0")
    install_id = claims.get("install_id")
    if not isinstance(install_id, str) or not INSTALL_ID_RE.fullmatch(install_id):
        raise bad_request("install_id must be 8-64 characters of [A-Za-z0-9_-]")
    held = claims.get("held")
    if held is not None and (not isinstance(held, str) or not CREDENTIAL_ID_RE.fullmatch(held)):
        raise bad_request("held must be a credential id")
    return Claims(client, kid, jti, version, install_id, parse_epk(claims.get("epk")), held, iat)


def parse_epk(value: Any) -> EllipticCurvePublicKey:
    """The app's ephemeral P-256 public key; anything else (private, off-curve…) is a 400."""
    try:
        return jose.p256_public_key(value)
    except ValueError:
        raise bad_request("epk must be a public EC P-256 JWK with x and y") from None
