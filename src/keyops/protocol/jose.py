"""Compact JOSE for the serving side, on ``cryptography`` primitives, and nothing more.

The endpoint needs exactly three operations, each with one fixed algorithm:

- verify an ES256 JWS (the bundle and each payload in it) against pinned P-256 keys;
- verify an HS256 JWS (the app's token) with an HMAC key prepared once per bundle;
- encrypt an answer as a compact JWE, ``ECDH-ES+A256KW`` + ``A256GCM`` (RFC 7516 and RFC 7518
  sections 4.6 and 5.3), to the app's ephemeral P-256 key.

A general JOSE library costs the request path most of its time (key objects re-imported, every
header re-parsed, algorithm tables consulted) and its import dominates the Lambda cold start. With
one algorithm per job there is nothing to negotiate, so this module does each step directly.
Apps verify and decrypt with JOSE libraries (joserfc, ``jose``); the interop tests hold this
module to them.

Every function here treats its input as hostile: malformed input raises :class:`ValueError`
(never anything else), and callers map it to their own error.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from keyops.core import safejson
from keyops.core.b64 import decode_unpadded as b64decode
from keyops.core.b64 import encode as b64encode

P256 = ec.SECP256R1()
_ES256 = ec.ECDSA(SHA256())
_ECDH = ec.ECDH()
JWE_ALG, JWE_ENC = "ECDH-ES+A256KW", "A256GCM"


def _length_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


#: Concat KDF OtherInfo for ECDH-ES+A256KW without apu/apv: AlgorithmID, PartyUInfo,
#: PartyVInfo, SuppPubInfo (the key length in bits). Fixed, so computed once.
_KDF_OTHER_INFO = (
    _length_prefixed(JWE_ALG.encode())
    + _length_prefixed(b"")
    + _length_prefixed(b"")
    + (256).to_bytes(4, "big")
)
#: The protected header around the server's ephemeral public key coordinates.
_JWE_HEADER = (
    '{"alg":"' + JWE_ALG + '","enc":"' + JWE_ENC + '",'
    '"epk":{"kty":"EC","crv":"P-256","x":"%s","y":"%s"}}'
)


def json_segment(segment: str) -> Any:
    """A base64url segment holding JSON."""
    return safejson.parse(b64decode(segment))


def split_compact(token: str, parts: int) -> list[str]:
    pieces = token.split(".")
    if len(pieces) != parts:
        raise ValueError(f"not a compact serialization of {parts} parts")
    return pieces


# -- keys ----------------------------------------------------------------------------------------


def _coordinate(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 43:
        raise ValueError("a P-256 coordinate is 43 characters of base64url")
    raw = b64decode(value)
    if len(raw) != 32:
        raise ValueError("a P-256 coordinate is 32 bytes")
    return raw


def p256_public_key(jwk: Any) -> ec.EllipticCurvePublicKey:
    """A public P-256 key from its JWK (``kty`` EC, ``crv`` P-256, ``x``, ``y``; never ``d``).

    ``cryptography`` checks that the point is on the curve.
    """
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not an EC P-256 JWK")
    if "d" in jwk:
        raise ValueError("a private key where a public one is due")
    point = b"\x04" + _coordinate(jwk.get("x")) + _coordinate(jwk.get("y"))
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(P256, point)
    except ValueError:
        raise ValueError("the point is not on P-256") from None


def hmac_key(secret: bytes) -> hmac.HMAC:
    """An HS256 key prepared once: verifying copies it instead of re-keying per request."""
    return hmac.new(secret, digestmod=hashlib.sha256)


# -- JWS -----------------------------------------------------------------------------------------


def hs256_valid(key: hmac.HMAC, signing_input: bytes, signature: bytes) -> bool:
    """Constant-time check of an HS256 signature with a prepared key."""
    mac = key.copy()
    mac.update(signing_input)
    return hmac.compare_digest(mac.digest(), signature)


def verify_es256(
    token: str, keys: Mapping[str, ec.EllipticCurvePublicKey], what: str = "the JWS"
) -> tuple[dict[str, Any], bytes]:
    """(protected header, payload bytes) of a compact ES256 JWS signed by one of ``keys``.

    The header must say ``alg: ES256`` and name a ``kid`` of ``keys``; ``crit`` is refused.
    ``what`` names the token in the messages of the ValueError raised for anything else.
    """
    try:
        header_part, payload_part, signature_part = split_compact(token, 3)
        header = json_segment(header_part)
        payload = b64decode(payload_part)
        signature = b64decode(signature_part)
    except ValueError:
        raise ValueError(f"{what} is not a compact JWS") from None
    if not isinstance(header, dict):
        raise ValueError(f"{what} is not a compact JWS")
    if header.get("alg") != "ES256" or "crit" in header:
        raise ValueError(f"{what} is not signed with ES256")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise ValueError(f"{what} has a kid that is not a string")
    key = keys.get(kid)
    if key is None:
        raise ValueError(f"{what} is signed by kid {kid[:80]!r}, which is not pinned")
    if len(signature) != 64:
        raise ValueError(f"the signature of {what} does not verify")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, f"{header_part}.{payload_part}".encode("ascii"), _ES256)
    except InvalidSignature:
        raise ValueError(f"the signature of {what} does not verify") from None
    return header, payload


# -- JWE -----------------------------------------------------------------------------------------


def encrypt_ecdh_es_a256kw(plaintext: bytes, recipient: ec.EllipticCurvePublicKey) -> str:
    """The compact JWE of ``plaintext`` to ``recipient`` (ECDH-ES+A256KW, A256GCM)."""
    ephemeral = ec.generate_private_key(P256)
    shared = ephemeral.exchange(_ECDH, recipient)
    mine = ephemeral.public_key().public_numbers()
    x, y = b64encode(mine.x.to_bytes(32, "big")), b64encode(mine.y.to_bytes(32, "big"))
    protected = b64encode((_JWE_HEADER % (x, y)).encode())
    # Concat KDF (NIST SP 800-56A) with SHA-256: one round gives the 256-bit key-wrapping key.
    kek = hashlib.sha256(b"\x00\x00\x00\x01" + shared + _KDF_OTHER_INFO).digest()
    cek = os.urandom(32)
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode("ascii"))
    return ".".join(
        (
            protected,
            b64encode(aes_key_wrap(kek, cek)),
            b64encode(iv),
            b64encode(sealed[:-16]),
            b64encode(sealed[-16:]),
        )
    )
