"""App token verification: HS256 by app_auth kid, then the claims (docs/protocol.md).

Order, and why:

1. The ``Authorization`` header must be ``Bearer <compact JWS>`` of bounded size, with header
   ``alg: HS256`` (anything else, ``none`` included, is refused before any key is touched).
2. The key is looked up by the payload's ``sub`` and the header's ``kid``. An unknown client or
   kid still runs a full HMAC verification against a random key, so that "unknown" and "bad
   signature" cost the same and answer the same 401 ``invalid-token``. The HMAC comparison is
   joserfc's (``hmac.compare_digest``, constant-time).
3. Only a token that verified is examined further, so claim errors reveal nothing to a forger:
   wrong ``aud`` is 401 ``invalid-token``; ``iat`` outside ±300 s is 401 ``stale-token``; any
   other malformed claim (``jti``, ``app_version``, ``install_id``, ``epk``, ``held``) is 400
   ``bad-request``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey

from keyops.core.errors import ServiceError
from keyops.protocol.bundle import Bundle
from keyops.protocol.selection import SEMVER_RE

IAT_WINDOW_SECONDS = 300
#: Longer Authorization values are refused unparsed (a real token is well under 1 KiB).
MAX_TOKEN_BYTES = 8192
INSTALL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CREDENTIAL_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
MIN_JTI, MAX_JTI = 16, 256
MAX_APP_VERSION = 256
#: Verifying against this when the client or kid is unknown keeps timing and answer identical.
_DECOY_KEY = OctKey.import_key(secrets.token_bytes(32))


def invalid_token() -> ServiceError:
    return ServiceError(401, "invalid-token", "The token is not valid")


def stale_token() -> ServiceError:
    return ServiceError(401, "stale-token", "The token's iat is outside the accepted window")


def bad_request(what: str) -> ServiceError:
    # ``what`` names a claim, never a value: values may be secret or hostile.
    return ServiceError(400, "bad-request", f"Malformed request: {what}")


@dataclass(frozen=True)
class Claims:
    client: str
    kid: str
    jti: str
    app_version: str
    install_id: str
    epk: ECKey = field(repr=False)
    held: str | None = None


def _b64json(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def bearer_token(authorization: str | None) -> str:
    if authorization is None or len(authorization) > MAX_TOKEN_BYTES + 16:
        raise invalid_token()
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not TOKEN_RE.match(token):
        raise invalid_token()
    return token


def verify(authorization: str | None, bundle: Bundle, now: float) -> Claims:
    token = bearer_token(authorization)
    header_part, payload_part, _ = token.split(".")
    header = _b64json(header_part)
    unverified = _b64json(payload_part)
    if not isinstance(header, dict) or header.get("alg") != "HS256" or "crit" in header:
        raise invalid_token()
    if header.get("typ", "JWT") not in ("JWT", "jwt") or header.get("b64", True) is not True:
        raise invalid_token()
    kid = header.get("kid")
    sub = unverified.get("sub") if isinstance(unverified, dict) else None
    client = bundle.clients.get(sub) if isinstance(sub, str) else None
    secret = client.auth_keys.get(kid) if client is not None and isinstance(kid, str) else None
    key = OctKey.import_key(secret) if secret is not None else _DECOY_KEY
    try:
        verified = jws.deserialize_compact(token, key, algorithms=["HS256"])
    except (JoseError, ValueError, TypeError):
        raise invalid_token() from None
    if secret is None or client is None:
        raise invalid_token()
    try:
        claims = json.loads(verified.payload)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("the token payload is not JSON") from None
    if not isinstance(claims, dict):
        raise bad_request("the token payload is not a JSON object")
    return _check_claims(claims, client.client, str(kid), bundle.stack, now)


def _check_claims(claims: dict[str, Any], client: str, kid: str, stack: str, now: float) -> Claims:
    aud = claims.get("aud")
    if not (aud == stack or (isinstance(aud, list) and stack in aud)):
        raise invalid_token()
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)) or not math.isfinite(iat):
        raise bad_request("iat must be a number of seconds since the epoch")
    if abs(now - iat) > IAT_WINDOW_SECONDS:
        raise stale_token()
    jti = claims.get("jti")
    if not isinstance(jti, str) or not MIN_JTI <= len(jti) <= MAX_JTI:
        raise bad_request(f"jti must be a string of {MIN_JTI} to {MAX_JTI} characters")
    version = claims.get("app_version")
    if (
        not isinstance(version, str)
        or len(version) > MAX_APP_VERSION
        or not SEMVER_RE.match(version)
    ):
        raise bad_request("app_version must be a semantic version such as 5.2.0")
    install_id = claims.get("install_id")
    if not isinstance(install_id, str) or not INSTALL_ID_RE.match(install_id):
        raise bad_request("install_id must be 8-64 characters of [A-Za-z0-9_-]")
    held = claims.get("held")
    if held is not None and (not isinstance(held, str) or not CREDENTIAL_ID_RE.match(held)):
        raise bad_request("held must be a credential id")
    return Claims(client, kid, jti, version, install_id, parse_epk(claims.get("epk")), held)


def parse_epk(value: Any) -> ECKey:
    """The app's ephemeral P-256 public key; anything else (private, off-curve…) is a 400."""
    problem = bad_request("epk must be a public EC P-256 JWK with x and y")
    if not isinstance(value, dict) or value.get("kty") != "EC" or value.get("crv") != "P-256":
        raise problem
    if "d" in value:
        raise problem
    x, y = value.get("x"), value.get("y")
    if not (isinstance(x, str) and isinstance(y, str)):
        raise problem
    for coordinate in (x, y):
        try:
            raw = base64.urlsafe_b64decode(coordinate + "=" * (-len(coordinate) % 4))
        except (binascii.Error, ValueError):
            raise problem from None
        if len(raw) != 32 or not re.fullmatch(r"[A-Za-z0-9_-]{43}", coordinate):
            raise problem
    try:
        # cryptography checks that the point is on the curve.
        return ECKey.import_key({"kty": "EC", "crv": "P-256", "x": x, "y": y})
    except (JoseError, ValueError, TypeError):
        raise problem from None
