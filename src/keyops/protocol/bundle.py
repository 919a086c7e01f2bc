"""The signed bundle as the endpoint reads it: everything it needs, and nothing it must not hold.

A bundle is a directory with two files:

- ``bundle.jws``: a compact JWS (ES256, ``typ: keyops-bundle+jws``) signed by the stack's active
  signing key over the bundle JSON. This one file is the whole bundle, so replacing it is atomic:
  a reader sees the old bundle or the new one, never half of either.
- ``jwks.json``: the stack's public signing keys (a convenience copy for pinning in app builds).

The bundle JSON holds, per *served* client: one ready-made payload JWS per servable credential
(the ``active`` one and every ``pending`` one with a ``rollout_percent``), signed at build time
(docs/protocol.md); the ``min_app_version`` and rollout rules; the ids of all the client's
credentials (labels for adoption metrics); and the client's ``app_auth`` HMAC keys, which the
endpoint needs to verify app tokens. It never holds a Pusher ``secret``, the
``encryption_master_key`` or a private signing key: the endpoint can choose among signed
payloads but cannot forge one.

This module is the read side, shipped in the Lambda asset; ``keyops.build.bundle`` makes them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from keyops.core import b64
from keyops.core.errors import BundleError, BundleExpired

FORMAT = "keyops-bundle/1"
BUNDLE_FILE = "bundle.jws"
JWKS_FILE = "jwks.json"
BUNDLE_TYP = "keyops-bundle+jws"
#: Seconds a client may keep a served key before asking again (the payload's ``refresh_after``).
REFRESH_AFTER = 3600
DEFAULT_TTL_DAYS = 30
#: A bundle file larger than this is refused before parsing (a real one is a few KiB).
MAX_BUNDLE_BYTES = 16 * 1024 * 1024
PAYLOAD_KEYS = (
    "stack",
    "client",
    "credential_id",
    "key",
    "cluster",
    "bundle_version",
    "iat",
    "exp",
    "refresh_after",
)
#: The payload fields that come from ``client_view`` (what the app may see).
VIEW_KEYS = PAYLOAD_KEYS[:5]


@dataclass(frozen=True)
class ServedCredential:
    """One signed payload the endpoint may hand out, with the rules for whom."""

    id: str
    state: str  # active | pending
    jws: str = field(repr=False)
    min_app_version: str | None = None
    rollout_percent: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "credential_id": self.id,
            "state": self.state,
            "min_app_version": self.min_app_version,
            "rollout_percent": self.rollout_percent,
            "jws": self.jws,
        }


@dataclass(frozen=True)
class ServedClient:
    client: str
    #: app_auth kid -> HMAC key bytes (decoded from base64url); verification only.
    auth_keys: Mapping[str, bytes] = field(repr=False)
    #: Servable credentials in file order (newest first).
    credentials: tuple[ServedCredential, ...]
    #: Every credential id of the client, any state: the allowed ``held`` metric labels.
    credential_ids: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "app_auth": [
                {"kid": kid, "secret": base64.urlsafe_b64encode(key).rstrip(b"=").decode()}
                for kid, key in self.auth_keys.items()
            ],
            "credential_ids": list(self.credential_ids),
            "serve": [c.as_json() for c in self.credentials],
        }


@dataclass(frozen=True)
class Bundle:
    stack: str
    bundle_version: int
    iat: int
    exp: int
    signing_kid: str
    clients: Mapping[str, ServedClient]
    jwks_doc: Mapping[str, Any]
    #: The signed compact JWS exactly as written to ``bundle.jws``.
    raw: bytes = field(repr=False)

    def jwks(self) -> dict[str, Any]:
        """The stack's public signing keys, as pinned by apps."""
        copy: dict[str, Any] = json.loads(json.dumps(self.jwks_doc))  # callers may edit it
        return copy

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.exp

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: Path,
        *,
        now: float | dt.datetime | None = None,
        jwks: Mapping[str, Any] | None = None,
        allow_expired: bool = False,
    ) -> Bundle:
        """Read and verify a bundle directory (or its ``bundle.jws``).

        Verified against ``jwks`` when given (a pin), else against the JWKS the bundle carries
        (which proves integrity, not origin). Raises :class:`BundleError` or
        :class:`BundleExpired`.
        """
        path = Path(path)
        file = path / BUNDLE_FILE if path.is_dir() else path
        try:
            with open(file, "rb") as handle:
                data = handle.read(MAX_BUNDLE_BYTES + 1)
        except FileNotFoundError:
            raise BundleError(
                f"no bundle at {file}", "Build one: keyops build --stack S --out DIR."
            ) from None
        except OSError as exc:
            raise BundleError(
                f"cannot read the bundle {file}: {exc.strerror or exc}", "Check its permissions."
            ) from None
        return cls.from_bytes(
            data, label=str(file), now=now, jwks=jwks, allow_expired=allow_expired
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        label: str = "bundle",
        now: float | dt.datetime | None = None,
        jwks: Mapping[str, Any] | None = None,
        allow_expired: bool = False,
    ) -> Bundle:
        return _verify(data, label, _epoch(now), jwks, allow_expired)


# -- verification ------------------------------------------------------------------------------


def _epoch(now: float | dt.datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, dt.datetime):
        return (now if now.tzinfo else now.replace(tzinfo=dt.UTC)).timestamp()
    return float(now)


def _bad(label: str, problem: str) -> BundleError:
    return BundleError(
        f"the bundle {label} is not valid: {problem}",
        "Rebuild it with keyops build; the last good bundle keeps serving meanwhile.",
    )


def _keys_by_kid(doc: Mapping[str, Any], label: str) -> dict[str, ECKey]:
    keys = doc.get("keys") if isinstance(doc, Mapping) else None
    if not isinstance(keys, list):
        raise _bad(label, "the JWKS has no 'keys' list")
    out: dict[str, ECKey] = {}
    for item in keys:
        if not isinstance(item, dict) or not isinstance(item.get("kid"), str):
            raise _bad(label, "a JWKS entry has no kid")
        if item.get("kty") != "EC" or item.get("crv") != "P-256" or "d" in item:
            raise _bad(label, f"JWKS key {item['kid']!r} is not a public P-256 key")
        try:
            out[item["kid"]] = ECKey.import_key(item)
        except (JoseError, ValueError, TypeError):
            raise _bad(label, f"JWKS key {item['kid']!r} cannot be imported") from None
    return out


def _verify_es256(token: str | bytes, keys: Mapping[str, ECKey], label: str, what: str) -> bytes:
    try:
        data = token if isinstance(token, bytes) else token.encode()
        header = jws.extract_compact(data).headers()
    except (JoseError, ValueError, TypeError, UnicodeDecodeError):
        raise _bad(label, f"{what} is not a compact JWS") from None
    if header.get("alg") != "ES256":
        raise _bad(label, f"{what} is not signed with ES256")
    key = keys.get(header.get("kid"))  # type: ignore[arg-type]
    if key is None:
        raise _bad(label, f"{what} is signed by kid {header.get('kid')!r}, which is not pinned")
    try:
        verified = jws.deserialize_compact(token, key, algorithms=["ES256"])
    except (JoseError, ValueError, TypeError):
        raise _bad(label, f"the signature of {what} does not verify") from None
    return verified.payload


def _verify(
    data: bytes, label: str, now: float, pinned: Mapping[str, Any] | None, allow_expired: bool
) -> Bundle:
    if len(data) > MAX_BUNDLE_BYTES:
        raise _bad(label, f"it is larger than {MAX_BUNDLE_BYTES} bytes")
    raw = data.strip()
    try:
        unverified = json.loads(jws.extract_compact(raw).payload)
    except (JoseError, ValueError, TypeError, UnicodeDecodeError):
        raise _bad(label, "it is not a compact JWS with a JSON payload (truncated?)") from None
    if not isinstance(unverified, dict):
        raise _bad(label, "its payload is not a JSON object")
    embedded = unverified.get("jwks")
    trusted = _keys_by_kid(pinned if pinned is not None else embedded or {}, label)
    header = jws.extract_compact(raw).headers()
    if header.get("typ") != BUNDLE_TYP:
        raise _bad(label, f"its JWS typ is {header.get('typ')!r}, expected {BUNDLE_TYP!r}")
    doc = json.loads(_verify_es256(raw, trusted, label, "the bundle"))
    try:
        bundle = _parse(doc, raw, label, trusted)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _bad(label, f"unexpected structure ({type(exc).__name__})") from None
    if not allow_expired and bundle.expired(now):
        when = dt.datetime.fromtimestamp(bundle.exp, dt.UTC).isoformat(timespec="seconds")
        raise BundleExpired(
            f"the bundle {label} of stack {bundle.stack!r} (version {bundle.bundle_version}) "
            f"expired at {when}",
            f"Rebuild it: keyops build --stack {bundle.stack} --out DIR.",
        )
    return bundle


def _parse(doc: dict[str, Any], raw: bytes, label: str, trusted: Mapping[str, ECKey]) -> Bundle:
    if doc.get("format") != FORMAT:
        raise _bad(label, f"format {doc.get('format')!r} is not {FORMAT!r}")
    stack, version, iat, exp = doc["stack"], doc["bundle_version"], doc["iat"], doc["exp"]
    if not (isinstance(stack, str) and all(type(v) is int for v in (version, iat, exp))):
        raise _bad(label, "stack, bundle_version, iat or exp has the wrong type")
    clients: dict[str, ServedClient] = {}
    for name, entry in doc["clients"].items():
        served = []
        for item in entry["serve"]:
            what = f"the payload of {item['credential_id']}"
            payload = json.loads(_verify_es256(item["jws"], trusted, label, what))
            expected = {"stack": stack, "client": name, "credential_id": item["credential_id"]}
            expected |= {"bundle_version": version, "iat": iat, "exp": exp}
            if sorted(payload) != sorted(PAYLOAD_KEYS) or any(
                payload[k] != v for k, v in expected.items()
            ):
                raise _bad(label, f"the payload of {item['credential_id']} does not match")
            served.append(
                ServedCredential(
                    id=item["credential_id"],
                    state=item["state"],
                    jws=item["jws"],
                    min_app_version=item.get("min_app_version"),
                    rollout_percent=item.get("rollout_percent"),
                )
            )
        clients[name] = ServedClient(
            client=name,
            auth_keys={a["kid"]: b64.decode(a["secret"]) for a in entry["app_auth"]},
            credentials=tuple(served),
            credential_ids=tuple(str(i) for i in entry["credential_ids"]),
        )
    jwks_doc = doc["jwks"]
    return Bundle(
        stack=stack,
        bundle_version=version,
        iat=iat,
        exp=exp,
        signing_kid=str(jws.extract_compact(raw).headers()["kid"]),
        clients=clients,
        jwks_doc=jwks_doc,
        raw=raw,
    )
