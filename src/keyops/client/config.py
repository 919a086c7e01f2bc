"""The bootstrap configuration an app build carries (``keyops client-config``).

Parsing is strict: an app that ships a broken configuration should fail in its first test run,
not in the field. Every problem names the JSON path that is wrong and how to fix it; the HMAC
secret itself never appears in a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from joserfc.jwk import ECKey

from keyops.core import b64, patterns, safejson
from keyops.core.errors import ClientConfigError, InputError

# Used with fullmatch, and anchored with \A and \Z (never "$", which also matches before a
# final newline), so that "0123456789abcdef0123\n" is not a key.
KEY_RE = patterns.PUSHER_HEX
ID_RE = patterns.CREDENTIAL_ID
#: Shortest HMAC key accepted (docs/file-format.md: at least 32 random bytes).
MIN_SECRET_BYTES = 32
FIX = ClientConfigError.FIX


@dataclass(frozen=True)
class BundledKey:
    """The optional key compiled into the app, used only when there is neither network nor cache."""

    credential_id: str
    key: str
    cluster: str


@dataclass(frozen=True)
class ClientConfig:
    stack: str
    client: str
    endpoints: tuple[str, ...]
    kid: str
    #: The raw HMAC key bytes (decoded from the base64url ``secret``), never printed.
    secret: bytes = field(repr=False)
    #: Public ES256 keys by kid: the only keys a payload may be signed with.
    pinned: dict[str, ECKey] = field(repr=False)
    bundled: BundledKey | None = None


def _string(data: dict[str, Any], name: str, where: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ClientConfigError(f"{where}.{name}", "missing or not a non-empty string")
    return value


def _endpoints(data: dict[str, Any]) -> tuple[str, ...]:
    value = data.get("endpoints")
    if not isinstance(value, list) or not value:
        raise ClientConfigError("$.endpoints", "must be a non-empty list of base URLs")
    out: list[str] = []
    for i, url in enumerate(value):
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientConfigError(f"$.endpoints[{i}]", "not an http(s) base URL")
        out.append(url.rstrip("/"))
    return tuple(out)


def _request_auth(data: dict[str, Any]) -> tuple[str, bytes]:
    auth = data.get("request_auth")
    if not isinstance(auth, dict):
        raise ClientConfigError("$.request_auth", "missing or not an object")
    kid = _string(auth, "kid", "$.request_auth")
    if auth.get("alg") != "HS256":
        raise ClientConfigError("$.request_auth.alg", 'must be "HS256"')
    raw = _string(auth, "secret", "$.request_auth")
    try:
        secret = b64.decode(raw)
    except ValueError:
        raise ClientConfigError("$.request_auth.secret", "is not base64url") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ClientConfigError(
            "$.request_auth.secret", f"decodes to fewer than {MIN_SECRET_BYTES} bytes"
        )
    return kid, secret


def _pinned(data: dict[str, Any]) -> dict[str, ECKey]:
    jwks = data.get("pinned_keys")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ClientConfigError("$.pinned_keys", "must be a JWKS with at least one key")
    pinned: dict[str, ECKey] = {}
    for i, item in enumerate(keys):
        where = f"$.pinned_keys.keys[{i}]"
        if not isinstance(item, dict) or item.get("kty") != "EC" or item.get("crv") != "P-256":
            raise ClientConfigError(where, "must be an EC P-256 public key (ES256)")
        if "d" in item:
            # A private signing key in an app build would let anyone who unpacks the app sign.
            raise ClientConfigError(where, "holds a private key ('d'); pin public keys only")
        kid = _string(item, "kid", where)
        if kid in pinned:
            raise ClientConfigError(f"{where}.kid", f"{kid!r} is pinned twice")
        try:
            pinned[kid] = ECKey.import_key(dict(item))
        except Exception:  # joserfc and cryptography raise several types for a bad point
            raise ClientConfigError(where, "is not a valid P-256 public key") from None
    return pinned


def _bundled(data: dict[str, Any]) -> BundledKey | None:
    value = data.get("bundled_fallback")
    if value is None:
        return None
    where = "$.bundled_fallback"
    if not isinstance(value, dict):
        raise ClientConfigError(where, "must be an object {credential_id, key, cluster}")
    cred = _string(value, "credential_id", where)
    key = _string(value, "key", where)
    cluster = _string(value, "cluster", where)
    if not ID_RE.fullmatch(cred):
        raise ClientConfigError(f"{where}.credential_id", "is not a credential id")
    if not KEY_RE.fullmatch(key):
        raise ClientConfigError(f"{where}.key", "is not 20 lowercase hex characters")
    return BundledKey(cred, key, cluster)


def parse(data: Any) -> ClientConfig:
    """Validate a decoded bootstrap document into a :class:`ClientConfig`."""
    if not isinstance(data, dict):
        raise ClientConfigError("$", "must be a JSON object")
    kid, secret = _request_auth(data)
    pinned = _pinned(data)
    return ClientConfig(
        stack=_string(data, "stack", "$"),
        client=_string(data, "client", "$"),
        endpoints=_endpoints(data),
        kid=kid,
        secret=secret,
        pinned=pinned,
        bundled=_bundled(data),
    )


def load(path: Path) -> ClientConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"client config {path} does not exist", FIX) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise InputError(f"client config {path} cannot be read ({reason})", FIX) from None
    try:
        data = safejson.parse(text)
    except ValueError as exc:
        syntax = exc.__cause__
        where = (
            f"{path} line {syntax.lineno} column {syntax.colno}"
            if isinstance(syntax, json.JSONDecodeError)
            else str(path)
        )
        raise ClientConfigError(where, str(exc)) from None
    return parse(data)
