"""Opening and checking a protocol v1 answer (docs/protocol.md).

Two layers, checked in this order:

1. the JWE (``ECDH-ES+A256KW`` / ``A256GCM``) must open with this request's ephemeral key;
   nothing else is accepted, so an answer meant for another request cannot be used;
2. the JWS inside must be ``ES256``, name a pinned ``kid`` and verify with that key. Its payload
   must be for this stack and this client, not be expired, and not carry a ``bundle_version``
   lower than the highest this app has already accepted (a rollback to an older signed bundle,
   e.g. one that still serves a revoked key, is refused).

The endpoint never holds the signing key, so these checks are what make a compromised endpoint
unable to hand out a key of its choosing.

An answer is hostile input: every way it can be malformed (JSON nested thousands deep, a point
off the curve, a type the JOSE library did not expect) ends in a :class:`VerifyError`, never in
another exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from joserfc import jwe, jws
from joserfc.jwk import ECKey

from keyops.client.config import ID_RE, KEY_RE, ClientConfig
from keyops.core import b64, safejson
from keyops.core.errors import VerifyError

JWE_ALGORITHMS = ("ECDH-ES+A256KW", "A256GCM")
JWS_ALGORITHMS = ("ES256",)
EPK_MESSAGE = "the JWE header's epk is not a P-256 public key"


@dataclass(frozen=True)
class Verified:
    """A credential from a signed payload that passed every check."""

    stack: str
    client: str
    credential_id: str
    key: str
    cluster: str
    bundle_version: int
    iat: int
    exp: int
    refresh_after: int
    #: The compact JWS itself, kept so the cache can be re-verified when it is read back.
    signed: str = field(repr=False)


def open_response(
    body: bytes, ephemeral: ECKey, config: ClientConfig, now: float, min_bundle_version: int
) -> Verified:
    """Decrypt an answer with the request's ephemeral key, then :func:`verify_signed` it."""
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise VerifyError("not-jwe", "the answer is not a compact JWE") from None
    header = _peek_header(text, parts=5, what="JWE")
    if (header.get("alg"), header.get("enc")) != JWE_ALGORITHMS:
        raise VerifyError(
            "wrong-alg", f"the answer is not encrypted with {' / '.join(JWE_ALGORITHMS)}"
        )
    _check_epk(header.get("epk"))
    try:
        opened = jwe.decrypt_compact(text, ephemeral, algorithms=list(JWE_ALGORITHMS))
    except Exception:  # joserfc and cryptography raise many types on hostile input
        raise VerifyError(
            "decrypt-failed", "the answer does not decrypt with this request's key"
        ) from None
    if opened.plaintext is None:
        raise VerifyError("decrypt-failed", "the answer decrypts to nothing")
    try:
        signed = opened.plaintext.decode("ascii")
    except UnicodeDecodeError:
        raise VerifyError("not-jws", "the decrypted answer is not a compact JWS") from None
    return verify_signed(signed, config, now, min_bundle_version)


def verify_signed(
    signed: str, config: ClientConfig, now: float, min_bundle_version: int
) -> Verified:
    """Check a compact JWS against the pinned keys and the payload rules."""
    header = _peek_header(signed, parts=3, what="JWS")
    if header.get("alg") not in JWS_ALGORITHMS:
        raise VerifyError(
            "wrong-alg", f"the payload is signed with {header.get('alg')!r}, not ES256"
        )
    kid = header.get("kid")
    key = config.pinned.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise VerifyError("unknown-kid", f"the payload is signed by {kid!r}, not a pinned key")
    try:
        payload_bytes = jws.deserialize_compact(
            signed, key, algorithms=list(JWS_ALGORITHMS)
        ).payload
    except Exception:  # JoseError, and whatever a malformed part makes the library raise
        raise VerifyError(
            "bad-signature", f"the signature does not verify with pinned key {kid!r}"
        ) from None
    try:
        payload = safejson.parse(payload_bytes)
    except ValueError:
        raise VerifyError("bad-payload", "the signed payload is not JSON") from None
    return _check_payload(payload, signed, config, now, min_bundle_version)


def _peek_header(compact: str, parts: int, what: str) -> dict[str, Any]:
    """The protected header, read before any key is used, so the algorithm is chosen by us."""
    reason = f"not-{what.lower()}"
    pieces = compact.split(".")
    if len(pieces) != parts:
        raise VerifyError(reason, f"the answer is not a compact {what}")
    try:
        header = safejson.parse(b64.decode(pieces[0]))
    except ValueError:
        raise VerifyError(reason, f"the {what} header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise VerifyError(reason, f"the {what} header is not a JSON object")
    return header


def _check_epk(epk: Any) -> None:
    """The sender's ephemeral key must be a P-256 public key, and only that.

    A JOSE library may accept an ``epk`` that carries a private ``d`` (and use its public half),
    or fail on a point off the curve with an exception of its own; both are refused here, before
    any key is used.
    """
    if isinstance(epk, dict) and "d" in epk:
        raise VerifyError("not-jwe", "the JWE header's epk holds a private key ('d')")
    if not isinstance(epk, dict) or epk.get("kty") != "EC" or epk.get("crv") != "P-256":
        raise VerifyError("not-jwe", EPK_MESSAGE)
    try:
        ECKey.import_key(dict(epk))  # checks that the point is on the curve
    except Exception:  # joserfc and cryptography raise several types for a bad point
        raise VerifyError("not-jwe", EPK_MESSAGE) from None


def _int(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    # bool is an int in Python; a JSON true must not pass as version 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerifyError("bad-payload", f"the payload's {name!r} is not a non-negative integer")
    return value


def _str(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise VerifyError("bad-payload", f"the payload's {name!r} is not a non-empty string")
    return value


def _check_payload(
    payload: Any, signed: str, config: ClientConfig, now: float, min_bundle_version: int
) -> Verified:
    if not isinstance(payload, dict):
        raise VerifyError("bad-payload", "the signed payload is not a JSON object")
    stack, client = _str(payload, "stack"), _str(payload, "client")
    if stack != config.stack:
        raise VerifyError(
            "wrong-stack", f"the payload is for stack {stack!r}, not {config.stack!r}"
        )
    if client != config.client:
        raise VerifyError(
            "wrong-client", f"the payload is for client {client!r}, not {config.client!r}"
        )
    credential_id, key = _str(payload, "credential_id"), _str(payload, "key")
    if not ID_RE.fullmatch(credential_id):
        raise VerifyError("bad-payload", "the payload's 'credential_id' is not a credential id")
    if not KEY_RE.fullmatch(key):
        raise VerifyError("bad-payload", "the payload's 'key' is not 20 lowercase hex characters")
    exp = _int(payload, "exp")
    if exp <= now:
        raise VerifyError("expired", f"the payload expired at {exp} (now {int(now)})")
    version = _int(payload, "bundle_version")
    if version < min_bundle_version:
        raise VerifyError(
            "rollback",
            f"bundle_version {version} is older than {min_bundle_version}, already accepted",
        )
    return Verified(
        stack=stack,
        client=client,
        credential_id=credential_id,
        key=key,
        cluster=_str(payload, "cluster"),
        bundle_version=version,
        iat=_int(payload, "iat"),
        exp=exp,
        refresh_after=_int(payload, "refresh_after"),
        signed=signed,
    )
