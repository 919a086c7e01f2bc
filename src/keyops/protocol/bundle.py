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

import json
import os
import re
import stat
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from keyops.core import b64, patterns, safejson
from keyops.core.errors import BundleError, BundleExpired
from keyops.protocol import jose

if TYPE_CHECKING:
    import datetime as dt

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
#: Names in a bundle (stack, client, app_auth kid): ASCII, as the schemas allow them.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CREDENTIAL_ID_RE = patterns.CREDENTIAL_ID
SEMVER_RE = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?"
)
STATES = ("active", "pending")
#: Longest semantic version accepted anywhere (a real one is a few characters).
MAX_VERSION = 256


# Immutable records as NamedTuples rather than dataclasses: importing ``dataclasses`` (and the
# ``inspect`` it pulls in) was a visible share of the Lambda's cold start. Each __repr__ leaves
# out what must not reach a log (signed payloads, HMAC keys, the raw bundle).


class ServedCredential(NamedTuple):
    """One signed payload the endpoint may hand out, with the rules for whom."""

    id: str
    state: str  # active | pending
    jws: str
    min_app_version: str | None = None
    rollout_percent: int | None = None

    def __repr__(self) -> str:
        return (
            f"ServedCredential(id={self.id!r}, state={self.state!r}, "
            f"min_app_version={self.min_app_version!r}, rollout_percent={self.rollout_percent!r})"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "credential_id": self.id,
            "state": self.state,
            "min_app_version": self.min_app_version,
            "rollout_percent": self.rollout_percent,
            "jws": self.jws,
        }


class ServedClient(NamedTuple):
    client: str
    #: app_auth kid -> HMAC key bytes (decoded from base64url); verification only.
    auth_keys: Mapping[str, bytes]
    #: Servable credentials in file order (newest first).
    credentials: tuple[ServedCredential, ...]
    #: Every credential id of the client, any state: the allowed ``held`` metric labels.
    credential_ids: tuple[str, ...]
    #: Web page origins a browser may call the endpoint from for this client (CORS).
    allowed_origins: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"ServedClient(client={self.client!r}, credentials={self.credentials!r}, "
            f"credential_ids={self.credential_ids!r})"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "app_auth": [
                {"kid": kid, "secret": b64.encode(key)} for kid, key in self.auth_keys.items()
            ],
            "credential_ids": list(self.credential_ids),
            "serve": [c.as_json() for c in self.credentials],
            # Absent when empty, as in bundles made before the field: older readers still load.
            **({"allowed_origins": list(self.allowed_origins)} if self.allowed_origins else {}),
        }


class Bundle(NamedTuple):
    stack: str
    bundle_version: int
    iat: int
    exp: int
    signing_kid: str
    clients: Mapping[str, ServedClient]
    jwks_doc: Mapping[str, Any]
    #: The signed compact JWS exactly as written to ``bundle.jws``.
    raw: bytes
    #: The stack's salt of install hashes in adoption metrics (None: the stack has none).
    install_salt: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"Bundle(stack={self.stack!r}, bundle_version={self.bundle_version}, "
            f"iat={self.iat}, exp={self.exp}, signing_kid={self.signing_kid!r}, "
            f"clients={sorted(self.clients)!r})"
        )

    def jwks(self) -> dict[str, Any]:
        """The stack's public signing keys, as pinned by apps."""
        copy: dict[str, Any] = json.loads(json.dumps(self.jwks_doc))  # callers may edit it
        return copy

    def allowed_origins(self) -> tuple[str, ...]:
        """Every served client's CORS origins: a preflight names no client, so any counts."""
        return tuple(o for client in self.clients.values() for o in client.allowed_origins)

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.exp

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
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
        file = os.fspath(path)
        if os.path.isdir(file):
            file = os.path.join(file, BUNDLE_FILE)
        data = read_regular_file(file, MAX_BUNDLE_BYTES + 1)
        return cls.from_bytes(data, label=file, now=now, jwks=jwks, allow_expired=allow_expired)

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


def read_regular_file(file: str | os.PathLike[str], limit: int) -> bytes:
    """At most ``limit`` bytes of ``file``, which must be a regular file.

    Opened non-blocking and checked with ``fstat`` before any read: a FIFO at the path would
    block ``open`` until a writer came, and a device would never end. Raises BundleError.
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BundleError(
            f"no bundle at {file}", "Build one: keyops build --stack S --out DIR."
        ) from None
    except OSError as exc:
        raise BundleError(
            f"cannot read the bundle {file}: {exc.strerror or exc}", "Check its permissions."
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BundleError(
                f"the bundle {file} is not a regular file",
                "Point keyops at the bundle.jws file (or its directory) that keyops build wrote.",
            )
        chunks: list[bytes] = []
        size = 0
        while size < limit and (chunk := os.read(fd, min(1 << 20, limit - size))):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise BundleError(
            f"cannot read the bundle {file}: {exc.strerror or exc}", "Check its permissions."
        ) from None
    finally:
        os.close(fd)


# -- verification ------------------------------------------------------------------------------


def _epoch(now: float | dt.datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, int | float):
        return float(now)
    import datetime  # only for a datetime ``now``: the Lambda path never needs the module

    return (now if now.tzinfo else now.replace(tzinfo=datetime.UTC)).timestamp()


def _bad(label: str, problem: str) -> BundleError:
    return BundleError(
        f"the bundle {label} is not valid: {problem}",
        "Rebuild it with keyops build; the last good bundle keeps serving meanwhile.",
    )


class _Malformed(ValueError):
    """A structural problem at a JSON path of the bundle (mapped to BundleError by _verify)."""


def _member(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise _Malformed(f"{where} is not a JSON object")
    if key not in obj:
        raise _Malformed(f"{where}.{key} is missing")
    return obj[key]


def _text(obj: Any, key: str, where: str, pattern: re.Pattern[str] | None = None) -> str:
    value = _member(obj, key, where)
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        raise _Malformed(f"{where}.{key} is not a valid string")
    return value


def _integer(obj: Any, key: str, where: str, low: int = 0, high: int = 2**53) -> int:
    value = _member(obj, key, where)
    if type(value) is not int or not low <= value <= high:
        raise _Malformed(f"{where}.{key} is not an integer in {low}..{high}")
    return value


def _array(obj: Any, key: str, where: str) -> list[Any]:
    value = _member(obj, key, where)
    if not isinstance(value, list):
        raise _Malformed(f"{where}.{key} is not an array")
    return value


def _keys_by_kid(doc: Any, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, item in enumerate(_array(doc, "keys", where)):
        entry = f"{where}.keys[{index}]"
        kid = _text(item, "kid", entry)
        try:
            out[kid] = jose.p256_public_key(item)
        except ValueError as exc:
            raise _Malformed(f"{entry} (kid {kid!r}) is not a public P-256 key: {exc}") from None
    return out


def _signed(token: Any, keys: Mapping[str, Any], what: str) -> tuple[dict[str, Any], Any]:
    """(header, JSON payload) of an ES256 JWS by one of ``keys``."""
    if not isinstance(token, str) or not token.isascii():
        raise _Malformed(f"{what} is not a compact JWS")
    try:
        header, payload = jose.verify_es256(token, keys, what)
    except ValueError as exc:
        raise _Malformed(str(exc)) from None
    try:
        return header, safejson.parse(payload)
    except ValueError:
        raise _Malformed(f"{what} does not hold JSON") from None


def _verify(
    data: bytes, label: str, now: float, pinned: Mapping[str, Any] | None, allow_expired: bool
) -> Bundle:
    if len(data) > MAX_BUNDLE_BYTES:
        raise _bad(label, f"it is larger than {MAX_BUNDLE_BYTES} bytes")
    raw = data.strip()
    try:
        bundle = _parse(raw, pinned)
    except _Malformed as exc:
        raise _bad(label, str(exc)) from None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError) as exc:
        # Each field is checked above; this is the net under them, for hostile input only.
        raise _bad(label, f"unexpected structure ({type(exc).__name__})") from None
    if not allow_expired and bundle.expired(now):
        import datetime

        when = datetime.datetime.fromtimestamp(bundle.exp, datetime.UTC).isoformat(
            timespec="seconds"
        )
        raise BundleExpired(
            f"the bundle {label} of stack {bundle.stack!r} (version {bundle.bundle_version}) "
            f"expired at {when}",
            f"Rebuild it: keyops build --stack {bundle.stack} --out DIR.",
        )
    return bundle


def _parse(raw: bytes, pinned: Mapping[str, Any] | None) -> Bundle:
    try:
        token = raw.decode("ascii")
        parts = jose.split_compact(token, 3)
        unverified = jose.json_segment(parts[1])
    except ValueError:
        raise _Malformed("it is not a compact JWS with a JSON payload (truncated?)") from None
    if not isinstance(unverified, dict):
        raise _Malformed("its payload is not a JSON object")
    if pinned is not None:
        trusted = _keys_by_kid(dict(pinned), "the pinned JWKS")
    else:
        trusted = _keys_by_kid(_member(unverified, "jwks", "$"), "$.jwks")
    header, doc = _signed(token, trusted, "the bundle")
    if header.get("typ") != BUNDLE_TYP:
        raise _Malformed(f"its JWS typ is {header.get('typ')!r}, expected {BUNDLE_TYP!r}")
    if _member(doc, "format", "$") != FORMAT:
        raise _Malformed(f"$.format is not {FORMAT!r}")
    stack = _text(doc, "stack", "$", NAME_RE)
    version = _integer(doc, "bundle_version", "$", low=1)
    iat, exp = _integer(doc, "iat", "$"), _integer(doc, "exp", "$")
    jwks_doc = _member(doc, "jwks", "$")
    _keys_by_kid(jwks_doc, "$.jwks")
    entries = _member(doc, "clients", "$")
    if not isinstance(entries, dict):
        raise _Malformed("$.clients is not a JSON object")
    clients: dict[str, ServedClient] = {}
    for name, entry in entries.items():
        where = f"$.clients[{name!r}]"
        if not NAME_RE.fullmatch(name):
            raise _Malformed(f"{where} is not a client name")
        expected = {"stack": stack, "client": name, "bundle_version": version}
        expected |= {"iat": iat, "exp": exp}
        served = tuple(
            _served(item, f"{where}.serve[{i}]", trusted, expected)
            for i, item in enumerate(_array(entry, "serve", where))
        )
        auth_keys: dict[str, bytes] = {}
        for i, item in enumerate(_array(entry, "app_auth", where)):
            kid = _text(item, "kid", f"{where}.app_auth[{i}]", NAME_RE)
            try:
                secret = b64.decode(_text(item, "secret", f"{where}.app_auth[{i}]"))
            except ValueError:
                raise _Malformed(f"{where}.app_auth[{i}].secret is not base64url") from None
            if not secret:
                raise _Malformed(f"{where}.app_auth[{i}].secret is empty")
            auth_keys[kid] = secret
        ids = _array(entry, "credential_ids", where)
        if not all(isinstance(i, str) and CREDENTIAL_ID_RE.fullmatch(i) for i in ids):
            raise _Malformed(f"{where}.credential_ids holds something that is not an id")
        origins = entry.get("allowed_origins", [])
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise _Malformed(f"{where}.allowed_origins is not a list of strings")
        clients[name] = ServedClient(
            client=name,
            auth_keys=auth_keys,
            credentials=served,
            credential_ids=tuple(ids),
            allowed_origins=tuple(origins),
        )
    kid = header["kid"]
    return Bundle(stack, version, iat, exp, kid, clients, jwks_doc, raw, _install_salt(doc))


def _install_salt(doc: dict[str, Any]) -> bytes | None:
    adoption = doc.get("adoption")
    if adoption is None:
        return None
    salt = _text(adoption, "install_salt", "$.adoption") if isinstance(adoption, dict) else None
    if salt is None:
        raise _Malformed("$.adoption is not a JSON object")
    try:
        decoded = b64.decode(salt)
    except ValueError:
        raise _Malformed("$.adoption.install_salt is not base64url") from None
    if len(decoded) < 16:
        raise _Malformed("$.adoption.install_salt is shorter than 16 bytes")
    return decoded


def _served(
    item: Any, where: str, trusted: Mapping[str, Any], expected: dict[str, Any]
) -> ServedCredential:
    cred = _text(item, "credential_id", where, CREDENTIAL_ID_RE)
    state = _text(item, "state", where)
    if state not in STATES:
        raise _Malformed(f"{where}.state is not one of {', '.join(STATES)}")
    minimum = _member(item, "min_app_version", where)
    if minimum is not None and not (
        isinstance(minimum, str) and len(minimum) <= MAX_VERSION and SEMVER_RE.fullmatch(minimum)
    ):
        raise _Malformed(f"{where}.min_app_version is not a semantic version")
    percent = _member(item, "rollout_percent", where)
    if percent is not None and (type(percent) is not int or not 0 <= percent <= 100):
        raise _Malformed(f"{where}.rollout_percent is not an integer in 0..100")
    token = _member(item, "jws", where)
    _, payload = _signed(token, trusted, f"the payload of {cred}")
    if not isinstance(payload, dict) or sorted(payload) != sorted(PAYLOAD_KEYS):
        raise _Malformed(f"the payload of {cred} does not have the payload fields")
    want = expected | {"credential_id": cred}
    if any(payload[k] != v or type(payload[k]) is not type(v) for k, v in want.items()):
        raise _Malformed(f"the payload of {cred} does not match the bundle")
    return ServedCredential(cred, state, token, minimum, percent)
