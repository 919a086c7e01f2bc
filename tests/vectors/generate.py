"""Write the shared client test vectors (tests/vectors/*.json) from the Python implementation.

Run from the repository root after a deliberate protocol change, then review the diff:

    .venv/bin/python tests/vectors/generate.py

Every expected value comes from running the reference code (``keyops.client``,
``keyops.protocol.selection``) on the inputs; nothing is typed in by hand. tests/test_vectors.py
checks the Python side against the files, and the JS client's unit tests read the same files,
so the two clients cannot drift apart silently.

The keys below are TEST-ONLY: made for these files, they sign and open nothing else. They are
fixed so that a regeneration keeps the config and the pinned kids; ES256 signatures and JWE
encryption are randomized, so those strings change on every run while meaning the same.
"""

from __future__ import annotations

import base64
import copy
import email.utils
import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

from joserfc import jwe, jws
from joserfc.jwk import ECKey, OctKey

from keyops.client import config as client_config
from keyops.client import token as tokens
from keyops.client.fetcher import Fetcher, Policy
from keyops.client.transport import Request, Response
from keyops.client.verify import open_response, verify_signed
from keyops.core.errors import (
    ClientConfigError,
    KeyopsError,
    NothingUsable,
    TransportError,
    VerifyError,
)
from keyops.protocol import selection

HERE = Path(__file__).resolve().parent

# -- TEST-ONLY key material ---------------------------------------------------------------------
KEYS = {
    "sign": {
        "x": "_lXL3HtnlS1xm0bfI6-lwio6L_TK5iXBEplM3YLPV7Q",
        "y": "LOdLtxi0zlPiIPeYnwHE8URpV4M3nxYKPbpfYCkr8B0",
        "d": "R04ASYGaimuj_ZLjWKA5PBMptwuq3qwX2QHiQk9cm4E",
    },
    "next": {
        "x": "V_cVyB-Zy6FlM66NjtcIpAzFP5LZeugcYtM0ZzG8VCk",
        "y": "Q4tNRoJdBfrFlVs_fSrABq8dJM6Ix8QwH8q_9BfWm0c",
        "d": "HfHE_cM4w1sivuwjMuSR2hJxTdMlWZnHqK_nsABt1mc",
    },
    "rogue": {
        "x": "Qh_bOGT1f5Qhtd3xD-dBVsn54kD4pvwYzF_Clfv0pCQ",
        "y": "xI_b6SxYU0nQdnIfADHUaePWU52D0UUNveOUuIiypSw",
        "d": "5cD8eynQu_jOCXQRNme7li9ewHolltFMRw_EuCAOvkg",
    },
    "ephemeral": {
        "x": "j3jW6rv7oiQ8K8EtDVajMI48ve504xyOnDPdAwoXb10",
        "y": "3QLy0tYoaRkouhhL-FfrpK4fqyGL7ZYlcBz2DFVwp_E",
        "d": "mxjU7N7OcoikPMJTxusdAi120q_HR0VP1X4d_GgAlgo",
    },
    "stranger": {
        "x": "ndH_WURuKsDUKDsyV77ClCKUw3mkcfFAagjTD6HGjOE",
        "y": "nOfxtB-0-fy8c42Q2vonJHnKKx9NBjKu4lXHef-MkzA",
        "d": "cnCiUefGT4GaO_3lOUeZgZFMUKHxrR75Yioh45FyTZQ",
    },
}
SECRET = "xH4qXEf_XpI0fQqIDUnUN5O5yC63kfKLDedMfnuVZ5E"
OTHER_SECRET = "go_pr_F_PmYgw0izcIFxkKCvZfkaKP3FTayYicpN4K0"
SIGN_KID, NEXT_KID = "vectors-sign-1", "vectors-sign-2"
#: The device clock of every vector (2026-11-25T18:13:20Z), in seconds since the epoch.
NOW = 1795630400
DAY = 86400


def private(name: str) -> dict[str, str]:
    return {"kty": "EC", "crv": "P-256", **KEYS[name]}


def public(name: str) -> dict[str, str]:
    key = KEYS[name]
    return {"kty": "EC", "crv": "P-256", "x": key["x"], "y": key["y"]}


def ec(name: str) -> ECKey:
    return ECKey.import_key(private(name))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


CONFIG: dict[str, Any] = {
    "stack": "dev",
    "client": "ios",
    "endpoints": ["https://keys-a.example.invalid", "https://keys-b.example.invalid"],
    "request_auth": {"kid": "ios-build-vectors", "alg": "HS256", "secret": SECRET},
    "pinned_keys": {
        "keys": [
            {**public("sign"), "kid": SIGN_KID, "use": "sig", "alg": "ES256"},
            {**public("next"), "kid": NEXT_KID, "use": "sig", "alg": "ES256"},
        ]
    },
}


def write(name: str, data: dict[str, Any]) -> None:
    (HERE / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote tests/vectors/{name}")


def error_of(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, VerifyError):
        out["reason"] = exc.reason
    if isinstance(exc, KeyopsError):
        out["message"] = exc.what
    return out


# -- config.json --------------------------------------------------------------------------------
def patched(doc: Any, patch: list[dict[str, Any]]) -> Any:
    """Apply a vector patch: set (or delete) the value at a path of keys and list indexes (the
    tests apply the same patches with this function)."""
    doc = copy.deepcopy(doc)
    for op in patch:
        if not op["path"]:
            doc = copy.deepcopy(op["value"])
            continue
        *parents, last = op["path"]
        target = doc
        for step in parents:
            target = target[step]
        if op.get("delete"):
            del target[last]
        else:
            target[last] = copy.deepcopy(op["value"])
    return doc


def set_(path: list[Any], value: Any) -> dict[str, Any]:
    return {"path": path, "value": value}


def delete(path: list[Any]) -> dict[str, Any]:
    return {"path": path, "delete": True}


def parsed_view(cfg: client_config.ClientConfig) -> dict[str, Any]:
    bundled = cfg.bundled
    return {
        "stack": cfg.stack,
        "client": cfg.client,
        "endpoints": list(cfg.endpoints),
        "kid": cfg.kid,
        "secret_hex": cfg.secret.hex(),
        "pinned_kids": sorted(cfg.pinned),
        "bundled": None
        if bundled is None
        else {
            "credential_id": bundled.credential_id,
            "key": bundled.key,
            "cluster": bundled.cluster,
        },
    }


def config_vectors() -> dict[str, Any]:
    base = {
        **CONFIG,
        "bundled_fallback": {
            "credential_id": "ios-2026-01",
            "key": "0123456789abcdef0123",
            "cluster": "eu",
        },
    }
    key0 = ["pinned_keys", "keys", 0]
    off_curve = KEYS["sign"]["y"][:-2] + ("AA" if KEYS["sign"]["y"][-2:] != "AA" else "AB")
    invalid = [
        ("the document is a list", [set_([], [CONFIG])], None),
        ("request_auth missing", [delete(["request_auth"])], None),
        ("request_auth is a string", [set_(["request_auth"], "HS256")], None),
        ("request_auth.kid missing", [delete(["request_auth", "kid"])], None),
        ("request_auth.kid empty", [set_(["request_auth", "kid"], "")], None),
        ("request_auth.alg HS512", [set_(["request_auth", "alg"], "HS512")], None),
        ("request_auth.alg missing", [delete(["request_auth", "alg"])], None),
        ("request_auth.secret missing", [delete(["request_auth", "secret"])], None),
        (
            "request_auth.secret in standard base64",
            [set_(["request_auth", "secret"], "ab+/" * 11)],
            None,
        ),
        (
            "request_auth.secret decodes to 31 bytes",
            [set_(["request_auth", "secret"], SECRET[:42])],
            None,
        ),
        (
            "request_auth.secret of 4n+1 characters",
            [set_(["request_auth", "secret"], SECRET + "A" * 2)],
            None,
        ),
        (
            "request_auth.secret with 3 padding characters",
            [set_(["request_auth", "secret"], SECRET + "===")],
            None,
        ),
        ("pinned_keys missing", [delete(["pinned_keys"])], None),
        ("pinned_keys.keys empty", [set_(["pinned_keys", "keys"], [])], None),
        ("pinned_keys is a list", [set_(["pinned_keys"], [public("sign")])], None),
        ("pinned key of kty RSA", [set_([*key0, "kty"], "RSA")], None),
        ("pinned key on P-384", [set_([*key0, "crv"], "P-384")], None),
        ("pinned key with a private part", [set_([*key0, "d"], KEYS["sign"]["d"])], None),
        ("pinned key without kid", [delete([*key0, "kid"])], None),
        ("pinned kid twice", [set_(["pinned_keys", "keys", 1, "kid"], SIGN_KID)], None),
        ("pinned key off the curve", [set_([*key0, "y"], off_curve)], None),
        ("pinned key x not base64url", [set_([*key0, "x"], "not base64url!")], None),
        ("pinned key without y", [delete([*key0, "y"])], None),
        ("stack missing", [delete(["stack"])], None),
        ("stack empty", [set_(["stack"], "")], None),
        ("client a number", [set_(["client"], 7)], None),
        ("endpoints missing", [delete(["endpoints"])], None),
        ("endpoints empty", [set_(["endpoints"], [])], None),
        ("endpoints a string", [set_(["endpoints"], "https://keys-a.example.invalid")], None),
        ("an ftp endpoint", [set_(["endpoints", 1], "ftp://keys-b.example.invalid")], None),
        ("an endpoint without a scheme", [set_(["endpoints", 0], "keys-a.example.invalid")], None),
        ("an endpoint without a host", [set_(["endpoints", 0], "https://")], None),
        ("an endpoint that is a number", [set_(["endpoints", 0], 443)], None),
        ("bundled_fallback a string", [set_(["bundled_fallback"], "ios-2026-01")], None),
        (
            "bundled key in upper case",
            [set_(["bundled_fallback", "key"], "0123456789ABCDEF0123")],
            None,
        ),
        (
            "bundled key of 19 characters",
            [set_(["bundled_fallback", "key"], "0123456789abcdef012")],
            None,
        ),
        (
            "bundled credential_id in upper case",
            [set_(["bundled_fallback", "credential_id"], "IOS-2026-01")],
            None,
        ),
        (
            "bundled credential_id too short",
            [set_(["bundled_fallback", "credential_id"], "io")],
            None,
        ),
        ("bundled cluster missing", [delete(["bundled_fallback", "cluster"])], None),
        (
            "bundled key with a trailing newline",
            [set_(["bundled_fallback", "key"], "0123456789abcdef0123\n")],
            None,
        ),
        (
            "bundled credential_id with a trailing newline",
            [set_(["bundled_fallback", "credential_id"], "ios-2026-01\n")],
            None,
        ),
    ]
    valid = [
        ("as client-config writes it", []),
        ("a padded secret", [set_(["request_auth", "secret"], SECRET + "=")]),
        (
            "trailing slashes are dropped",
            [set_(["endpoints"], ["https://keys-a.example.invalid/", "http://127.0.0.1:8787//"])],
        ),
        (
            "an upper-case scheme and a path",
            [set_(["endpoints"], ["HTTPS://keys-a.example.invalid/base"])],
        ),
        ("an IPv6 endpoint", [set_(["endpoints"], ["http://[::1]:8787"])]),
        ("bundled_fallback null", [set_(["bundled_fallback"], None)]),
        ("no bundled_fallback", [delete(["bundled_fallback"])]),
        (
            "unknown members are ignored",
            [set_(["comment"], "built 2026-11"), set_([*key0, "key_ops"], ["verify"])],
        ),
        ("one pinned key", [set_(["pinned_keys", "keys"], [{**public("next"), "kid": NEXT_KID}])]),
    ]
    out: dict[str, Any] = {"valid": base, "invalid": [], "accepted": []}
    for name, patch, _ in invalid:
        doc = patched(base, patch)
        try:
            client_config.parse(doc)
        except ClientConfigError as exc:
            where = exc.what.removeprefix("client config ").split(": ", 1)[0]
            out["invalid"].append({"name": name, "patch": patch, "where": where, **error_of(exc)})
            continue
        sys.exit(f"config vector {name!r} was accepted by the reference client")
    for name, patch in valid:
        cfg = client_config.parse(patched(base, patch))
        out["accepted"].append({"name": name, "patch": patch, "parsed": parsed_view(cfg)})
    return out


# -- token.json ---------------------------------------------------------------------------------
def token_vectors() -> dict[str, Any]:
    cfg = client_config.parse(CONFIG)
    cases = [
        ("no held credential", "5.2.0", "install-0001", None, NOW + 0.25, 0.0),
        ("with held", "5.2.0", "install-0001", "ios-2026-11", NOW + 0.75, 0.0),
        ("a device clock an hour fast, corrected", "5.2.0", "A1b2C3d4", None, NOW + 0.9, -3600.5),
        (
            "a pre-release with build metadata",
            "5.3.0-beta.1+build.7",
            "x" * 64,
            "ios-2026-12",
            NOW,
            12.0,
        ),
    ]
    out: dict[str, Any] = {
        "config": CONFIG,
        "ephemeral_private_jwk": private("ephemeral"),
        "cases": [],
        "invalid_identities": [],
    }
    for i, (name, version, install, held, now, skew) in enumerate(cases):
        jti = b64(hashlib.sha256(f"vectors-jti-{i}".encode()).digest()[:16])
        identity = tokens.Identity(version, install, held)
        # The reference client's own build(), with its two random inputs fixed for the vector.
        with (
            mock.patch.object(tokens.secrets, "token_urlsafe", return_value=jti),
            mock.patch.object(tokens.ECKey, "generate_key", return_value=ec("ephemeral")),
        ):
            signed = tokens.build(cfg, identity, now + skew)
        head, body, _ = signed.token.split(".")
        out["cases"].append(
            {
                "name": name,
                "identity": {"app_version": version, "install_id": install, "held": held},
                "now": now,
                "skew": skew,
                "jti": jti,
                "expected_header": json.loads(base64.urlsafe_b64decode(head + "==")),
                "expected_claims": json.loads(base64.urlsafe_b64decode(body + "==")),
                "expected_token": signed.token,
            }
        )
    bad = [
        ("5.2", "install-0001", None),
        ("05.2.0", "install-0001", None),
        ("v5.2.0", "install-0001", None),
        ("5.2.0-", "install-0001", None),
        ("5.2.0", "short", None),
        ("5.2.0", "has space 01", None),
        ("5.2.0", "x" * 65, None),
        ("5.2.0", "install-0001", "IOS-2026-11"),
        ("5.2.0", "install-0001", "io"),
        # A "$" would let each of these through with its trailing newline.
        ("5.2.0\n", "install-0001", None),
        ("5.2.0", "install-0001\n", None),
        ("5.2.0", "install-0001", "ios-2026-11\n"),
        # Digits are ASCII digits: not ARABIC-INDIC DIGIT FIVE, not FULLWIDTH DIGIT ONE.
        ("1\u0665.2.0", "install-0001", None),
        ("5.2.0-rc.1\uff11", "install-0001", None),
    ]
    for version, install, held in bad:
        try:
            tokens.Identity(version, install, held)
        except KeyopsError as exc:
            out["invalid_identities"].append(
                {"app_version": version, "install_id": install, "held": held, **error_of(exc)}
            )
            continue
        sys.exit(f"identity {(version, install, held)!r} was accepted")
    return out


# -- bucket.json --------------------------------------------------------------------------------
def bucket_vectors() -> dict[str, Any]:
    inputs = [
        ("ios", "ios-2026-12", "install-0001"),
        ("ios", "ios-2026-12", "A1b2C3d4"),
        ("android", "android-2026-12", "zzzzzzzz"),
        ("web", "web-2026-11", "keyops-smoke-probe"),
        ("ios", "ios-2026-11-2", "install-0001"),
        ("ios", "ios-2026-11-2", "kill-loop-install"),
        ("android", "android-2026-03", "_-_-_-_-"),
        ("web", "web-2026-06", "x" * 64),
    ] + [("ios", "ios-2026-12", f"install-{n:04d}") for n in range(2, 14)]
    buckets = [
        {
            "client": c,
            "credential_id": cid,
            "install_id": iid,
            "bucket": selection.bucket(c, cid, iid),
        }
        for c, cid, iid in inputs
    ]

    def cred(
        cid: str, state: str, rollout: int | None = None, min_version: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": cid,
            "state": state,
            "rollout_percent": rollout,
            "min_app_version": min_version,
        }

    active = cred("ios-2026-11", "active")
    scenarios = [
        ("the active credential alone", "install-0001", "5.2.0", [active]),
        (
            "a pending one at 0%",
            "install-0001",
            "5.2.0",
            [cred("ios-2026-12", "pending", 0), active],
        ),
        (
            "a pending one at 100%",
            "install-0001",
            "5.2.0",
            [cred("ios-2026-12", "pending", 100), active],
        ),
        (
            "bucket 22 is inside a 23% rollout",
            "install-0001",
            "5.2.0",
            [cred("ios-2026-12", "pending", 23), active],
        ),
        (
            "bucket 22 is outside a 22% rollout",
            "install-0001",
            "5.2.0",
            [cred("ios-2026-12", "pending", 22), active],
        ),
        (
            "bucket 53 is outside a 50% rollout",
            "A1b2C3d4",
            "5.2.0",
            [cred("ios-2026-12", "pending", 50), active],
        ),
        (
            "a pending one without a rollout share",
            "install-0001",
            "5.2.0",
            [cred("ios-2026-12", "pending"), active],
        ),
        (
            "the pending one needs a newer app",
            "install-0001",
            "5.2.0",
            [cred("ios-2026-12", "pending", 100, "5.3.0"), active],
        ),
        (
            "the pending one needs exactly this app",
            "install-0001",
            "5.3.0",
            [cred("ios-2026-12", "pending", 100, "5.3.0"), active],
        ),
        (
            "a pre-release is older than its release",
            "install-0001",
            "5.3.0-rc.1",
            [cred("ios-2026-12", "pending", 100, "5.3.0"), active],
        ),
        (
            "build metadata is ignored",
            "install-0001",
            "5.3.0+42",
            [cred("ios-2026-12", "pending", 100, "5.3.0"), active],
        ),
        (
            "numeric pre-release identifiers compare as numbers",
            "install-0001",
            "5.3.0-rc.10",
            [cred("ios-2026-12", "pending", 100, "5.3.0-rc.9"), active],
        ),
        (
            "nothing for this app version (426)",
            "install-0001",
            "4.9.9",
            [cred("ios-2026-11", "active", None, "5.0.0")],
        ),
        (
            "the active one needs a newer app; outside the rollout: nothing (426)",
            "install-0001",
            "5.2.0",
            [cred("ios-2026-12", "pending", 10), cred("ios-2026-11", "active", None, "6.0.0")],
        ),
        (
            "the active one needs a newer app; inside the rollout: the pending one",
            "install-0001",
            "5.2.0",
            [cred("ios-2026-12", "pending", 30), cred("ios-2026-11", "active", None, "6.0.0")],
        ),
    ]
    selections = []
    for name, install, version, creds in scenarios:
        client = SimpleNamespace(
            client="ios", credentials=tuple(SimpleNamespace(**c) for c in creds)
        )
        chosen = selection.select(client, install, version)  # type: ignore[arg-type]
        selections.append(
            {
                "name": name,
                "client": "ios",
                "install_id": install,
                "app_version": version,
                "credentials": creds,
                "buckets": {
                    c["id"]: selection.bucket("ios", c["id"], install)
                    for c in creds
                    if c["state"] == "pending"
                },
                "selected": None if chosen is None else chosen.id,
            }
        )
    return {"buckets": buckets, "selection": selections}


# -- payload.json -------------------------------------------------------------------------------
def payload_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "stack": "dev",
        "client": "ios",
        "credential_id": "ios-2026-11",
        "key": "a1b2c3d4e5f6a7b8c9d0",
        "cluster": "eu",
        "bundle_version": 17,
        "iat": NOW - DAY,
        "exp": NOW + 29 * DAY,
        "refresh_after": 3600,
    }
    for name, value in overrides.items():
        if value is DELETE:
            del doc[name]
        else:
            doc[name] = value
    return doc


DELETE = object()


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def es256(payload: bytes, key: str = "sign", kid: Any = SIGN_KID, **header: Any) -> str:
    protected: dict[str, Any] = {"alg": "ES256", **header}
    if kid is not None:
        protected["kid"] = kid
    return jws.serialize_compact(protected, payload, ec(key), algorithms=["ES256"])


def raw_jws(header: Any, payload: bytes, signature: bytes = b"") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(payload), b64(signature)])


def float_text(name: str, literal: str) -> bytes:
    """The canonical payload with one integer written as the given literal (17.0, 1e3...)."""
    doc = payload_doc()
    text = canonical(doc).decode()
    old = f'"{name}":{doc[name]}'
    assert old in text
    return text.replace(old, f'"{name}":{literal}').encode()


def signed_vectors() -> list[dict[str, Any]]:
    valid = es256(canonical(payload_doc()))
    head, body, sig = valid.split(".")
    other_body = b64(canonical(payload_doc(key="ffffffffffffffffffff")))
    hs256 = jws.serialize_compact(
        {"alg": "HS256", "kid": SIGN_KID},
        canonical(payload_doc()),
        OctKey.import_key(b"k" * 32),
        algorithms=["HS256"],
    )
    cases: list[tuple[str, str, int]] = [
        ("valid", valid, 10),
        ("valid at the watermark (equal is allowed)", valid, 17),
        ("signed by the next pinned key", es256(canonical(payload_doc()), "next", NEXT_KID), 0),
        ("unknown members are ignored", es256(canonical(payload_doc(note="x"))), 0),
        ("rollback: below the watermark", valid, 18),
        ("wrong stack", es256(canonical(payload_doc(stack="prod"))), 0),
        ("wrong client", es256(canonical(payload_doc(client="android"))), 0),
        (
            "wrong stack and expired: the stack is checked first",
            es256(canonical(payload_doc(stack="prod", exp=NOW - 1))),
            0,
        ),
        ("stack missing", es256(canonical(payload_doc(stack=DELETE))), 0),
        ("stack empty", es256(canonical(payload_doc(stack=""))), 0),
        ("client a number", es256(canonical(payload_doc(client=1))), 0),
        (
            "credential_id in upper case",
            es256(canonical(payload_doc(credential_id="IOS-2026-11"))),
            0,
        ),
        ("credential_id too short", es256(canonical(payload_doc(credential_id="io"))), 0),
        ("credential_id missing", es256(canonical(payload_doc(credential_id=DELETE))), 0),
        ("key in upper case", es256(canonical(payload_doc(key="A1B2C3D4E5F6A7B8C9D0"))), 0),
        ("key of 19 characters", es256(canonical(payload_doc(key="a1b2c3d4e5f6a7b8c9d"))), 0),
        ("key of 21 characters", es256(canonical(payload_doc(key="a1b2c3d4e5f6a7b8c9d0e"))), 0),
        ("key a number", es256(canonical(payload_doc(key=12345678901234567890))), 0),
        (
            "key with a trailing newline",
            es256(canonical(payload_doc(key="a1b2c3d4e5f6a7b8c9d0\n"))),
            0,
        ),
        (
            "credential_id with a trailing newline",
            es256(canonical(payload_doc(credential_id="ios-2026-11\n"))),
            0,
        ),
        ("cluster empty", es256(canonical(payload_doc(cluster=""))), 0),
        ("cluster missing", es256(canonical(payload_doc(cluster=DELETE))), 0),
        ("cluster a list", es256(canonical(payload_doc(cluster=["eu"]))), 0),
        ("expired now (exp == now)", es256(canonical(payload_doc(exp=NOW))), 0),
        ("expired a second ago", es256(canonical(payload_doc(exp=NOW - 1))), 0),
        ("exp written as a float", es256(float_text("exp", f"{NOW + DAY}.0")), 0),
        ("exp a string", es256(canonical(payload_doc(exp=str(NOW + DAY)))), 0),
        ("exp missing", es256(canonical(payload_doc(exp=DELETE))), 0),
        ("bundle_version true", es256(canonical(payload_doc(bundle_version=True))), 0),
        ("bundle_version negative", es256(canonical(payload_doc(bundle_version=-1))), 0),
        ("bundle_version written as 17.0", es256(float_text("bundle_version", "17.0")), 0),
        ("bundle_version written as 1.7e1", es256(float_text("bundle_version", "1.7e1")), 0),
        ("bundle_version a string", es256(canonical(payload_doc(bundle_version="17"))), 0),
        ("iat missing", es256(canonical(payload_doc(iat=DELETE))), 0),
        ("iat negative", es256(canonical(payload_doc(iat=-5))), 0),
        ("refresh_after written as 3.6E3", es256(float_text("refresh_after", "3.6E3")), 0),
        ("refresh_after null", es256(canonical(payload_doc(refresh_after=None))), 0),
        ("the payload is a list", es256(canonical([payload_doc()])), 0),
        ("the payload is not JSON", es256(b"not json"), 0),
        ("the payload is not UTF-8", es256(b'{"stack":"\xff"}'), 0),
        ("alg HS256", hs256, 0),
        ("alg none", raw_jws({"alg": "none", "kid": SIGN_KID}, canonical(payload_doc())), 0),
        (
            "alg ES384",
            raw_jws({"alg": "ES384", "kid": SIGN_KID}, canonical(payload_doc()), b"x" * 96),
            0,
        ),
        ("alg missing", raw_jws({"kid": SIGN_KID}, canonical(payload_doc()), b"x" * 64), 0),
        ("unknown kid", es256(canonical(payload_doc()), "rogue", "rogue-kid"), 0),
        ("no kid", es256(canonical(payload_doc()), kid=None), 0),
        (
            "kid a number",
            raw_jws({"alg": "ES256", "kid": 1}, canonical(payload_doc()), b"x" * 64),
            0,
        ),
        (
            "an unpinned key using a pinned kid",
            es256(canonical(payload_doc()), "rogue", SIGN_KID),
            0,
        ),
        (
            "signed by the next key but naming the first",
            es256(canonical(payload_doc()), "next", SIGN_KID),
            0,
        ),
        ("a payload swapped under a valid signature", f"{head}.{other_body}.{sig}", 0),
        ("a truncated signature", f"{head}.{body}.{sig[:-4]}", 0),
        ("no signature", f"{head}.{body}.", 0),
        ("four parts", f"{valid}.x", 0),
        ("two parts", f"{head}.{body}", 0),
        ("a header that is not base64url", f"{head}!.{body}.{sig}", 0),
        ("a header that is a JSON list", f"{b64(b'[1]')}.{body}.{sig}", 0),
    ]
    cfg = client_config.parse(CONFIG)
    out = []
    for name, signed, minimum in cases:
        try:
            v = verify_signed(signed, cfg, NOW, minimum)
        except VerifyError as exc:
            expect: dict[str, Any] = error_of(exc)
        else:
            expect = {"ok": verified_view(v)}
        out.append({"name": name, "jws": signed, "min_bundle_version": minimum, "expect": expect})
    return out


def verified_view(v: Any) -> dict[str, Any]:
    return {
        "stack": v.stack,
        "client": v.client,
        "credential_id": v.credential_id,
        "key": v.key,
        "cluster": v.cluster,
        "bundle_version": v.bundle_version,
        "iat": v.iat,
        "exp": v.exp,
        "refresh_after": v.refresh_after,
    }


def encrypt(
    plaintext: bytes, to: str = "ephemeral", alg: str = "ECDH-ES+A256KW", enc: str = "A256GCM"
) -> str:
    return jwe.encrypt_compact(
        {"alg": alg, "enc": enc}, plaintext, ECKey.import_key(public(to)), algorithms=[alg, enc]
    )


def response_vectors() -> list[dict[str, Any]]:
    valid_jws = es256(canonical(payload_doc()))
    answer = encrypt(valid_jws.encode())
    parts = answer.split(".")

    def flip(part: int) -> str:
        pieces = list(parts)
        raw = bytearray(base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4)))
        raw[0] ^= 1
        pieces[part] = b64(bytes(raw))
        return ".".join(pieces)

    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))

    def with_epk(epk: Any) -> str:
        changed = {k: v for k, v in header.items() if k != "epk"}
        if epk is not DELETE:
            changed["epk"] = epk
        return ".".join([b64(json.dumps(changed).encode()), *parts[1:]])

    p384 = ECKey.generate_key("P-384", private=False).as_dict(private=False)
    cases: list[tuple[str, str, int]] = [
        ("valid", answer, 10),
        ("valid, with a trailing newline", answer + "\r\n", 10),
        (
            "an epk holding a private key",
            with_epk({**header["epk"], "d": KEYS["stranger"]["d"]}),
            0,
        ),
        ("an epk off the curve", with_epk({**header["epk"], "y": header["epk"]["x"]}), 0),
        ("an epk on P-384", with_epk(dict(p384)), 0),
        ("an epk that is a string", with_epk("epk"), 0),
        ("no epk", with_epk(DELETE), 0),
        ("rollback inside a valid answer", answer, 18),
        (
            "a wrong stack inside a valid answer",
            encrypt(es256(canonical(payload_doc(stack="prod"))).encode()),
            0,
        ),
        (
            "an unpinned signer inside a valid answer",
            encrypt(es256(canonical(payload_doc()), "rogue", SIGN_KID).encode()),
            0,
        ),
        ("alg ECDH-ES (direct)", encrypt(valid_jws.encode(), alg="ECDH-ES"), 0),
        ("alg ECDH-ES+A128KW", encrypt(valid_jws.encode(), alg="ECDH-ES+A128KW"), 0),
        ("enc A128GCM", encrypt(valid_jws.encode(), enc="A128GCM"), 0),
        ("encrypted to another request's key", encrypt(valid_jws.encode(), to="stranger"), 0),
        ("a flipped ciphertext bit", flip(3), 0),
        ("a flipped tag bit", flip(4), 0),
        ("a flipped wrapped-key bit", flip(1), 0),
        ("an unencrypted JWS", valid_jws, 0),
        ("an empty body", "", 0),
        ("a body that is not ASCII", "\u00e9" + answer, 0),
        ("a header that is not JSON", "e30x." + ".".join(parts[1:]), 0),
        ("a plaintext that is not a JWS", encrypt(b"hello"), 0),
        ("a plaintext that is not ASCII", encrypt("\u00e9.\u00e9.\u00e9".encode()), 0),
    ]
    cfg = client_config.parse(CONFIG)
    key = ec("ephemeral")
    out = []
    for name, body, minimum in cases:
        try:
            v = open_response(body.encode("utf-8"), key, cfg, NOW, minimum)
        except VerifyError as exc:
            expect: dict[str, Any] = error_of(exc)
        else:
            expect = {"ok": verified_view(v)}
        out.append({"name": name, "body": body, "min_bundle_version": minimum, "expect": expect})
    return out


def payload_vectors() -> dict[str, Any]:
    return {
        "config": CONFIG,
        "now": NOW,
        "ephemeral_private_jwk": private("ephemeral"),
        "signed": signed_vectors(),
        "responses": response_vectors(),
    }


# -- answers.json -------------------------------------------------------------------------------
#: The server's clock in a stale-token answer: an hour behind the device's.
DATE = email.utils.formatdate(NOW - 3600, usegmt=True)


def problem(status: int, code: str, title: str) -> dict[str, Any]:
    body = {
        "type": f"https://keyops.invalid/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    return {
        "status": status,
        "headers": {"Content-Type": "application/problem+json"},
        "body": json.dumps(body),
    }


def run_answer(
    cfg: client_config.ClientConfig,
    spec: dict[str, Any] | None,
    first: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every endpoint answers ``spec`` (None: no answer), but the very first request gets
    ``first`` when one is given; what the reference client does."""
    sent: list[dict[str, Any]] = []
    sleeps: list[float] = []
    seen: set[str] = set()

    def transport(request: Request) -> Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        # A resend must carry a new token: neither its jti nor its epk was sent before.
        marks = {"jti:" + claims["jti"], "epk:" + claims["epk"]["x"] + "." + claims["epk"]["y"]}
        sent.append({"url": request.url, "iat": claims["iat"], "new_token": not marks & seen})
        seen.update(marks)
        answer = first if first is not None and len(sent) == 1 else spec
        if answer is None:
            raise TransportError("connection refused")
        return Response(answer["status"], dict(answer["headers"]), answer["body"].encode())

    fetcher = Fetcher(
        cfg,
        tokens.Identity("5.2.0", "install-0001"),
        transport=transport,
        policy=Policy(attempt_timeout=3.0, max_rounds=2),
        clock=lambda: float(NOW),
        sleep=sleeps.append,
        random=lambda: 0.5,
    )
    try:
        fetcher.refresh()
    except NothingUsable as exc:
        attempts = exc.attempts
    else:
        sys.exit(f"answer vector {spec!r} produced a key")
    return {
        "requests": sent,
        "sleeps": sleeps,
        "attempts": [
            {"url": a.url, "outcome": a.outcome, "detail": a.detail, "retryable": a.retryable}
            for a in attempts
        ],
        "error": "NothingUsable",
    }


def answer_vectors() -> dict[str, Any]:
    dated = problem(401, "stale-token", "The token's iat is outside the accepted window")
    dated["headers"]["Date"] = DATE
    undated = problem(401, "stale-token", "The token's iat is outside the accepted window")
    bad_date = copy.deepcopy(dated)
    bad_date["headers"]["Date"] = "yesterday"
    replayed = problem(401, "replayed-token", "The token was already used")
    full = problem(503, "replay-cache-full", "Too many tokens in flight; try again later")
    full["headers"]["Retry-After"] = "290"
    noisy = problem(400, "bad\x07request", "Malformed\x1b[31m request\u2028!")
    long_code = problem(400, "c" * 60, "t" * 200)
    cases: list[tuple[str, dict[str, Any] | None]] = [
        ("400 bad-request", problem(400, "bad-request", "Malformed request: install_id")),
        ("401 invalid-token", problem(401, "invalid-token", "The token is not valid")),
        ("401 stale-token with a Date header", dated),
        ("401 stale-token without a Date header", undated),
        ("401 stale-token with an unreadable Date header", bad_date),
        ("401 replayed-token", replayed),
        ("503 replay-cache-full with Retry-After", full),
        ("404 not-found", problem(404, "not-found", "No such resource")),
        ("405 method-not-allowed", problem(405, "method-not-allowed", "Method not allowed")),
        (
            "426 upgrade-required",
            problem(426, "upgrade-required", "No credential for this app_version"),
        ),
        ("409, a status the protocol does not use", problem(409, "conflict", "Conflict")),
        ("503 not-ready", problem(503, "not-ready", "No valid bundle is loaded")),
        (
            "500 in plain text",
            {"status": 500, "headers": {"Content-Type": "text/plain"}, "body": "oops"},
        ),
        ("502 with no body", {"status": 502, "headers": {}, "body": ""}),
        ("504", {"status": 504, "headers": {}, "body": ""}),
        ("599", {"status": 599, "headers": {}, "body": ""}),
        ("429", {"status": 429, "headers": {"Retry-After": "1"}, "body": ""}),
        ("408", {"status": 408, "headers": {}, "body": ""}),
        ("425", {"status": 425, "headers": {}, "body": ""}),
        (
            "301, not followed",
            {
                "status": 301,
                "headers": {"Location": "https://elsewhere.example.invalid/"},
                "body": "",
            },
        ),
        (
            "200 text/html (a captive portal)",
            {"status": 200, "headers": {"Content-Type": "text/html"}, "body": "<html>login</html>"},
        ),
        ("200 without a Content-Type", {"status": 200, "headers": {}, "body": "x"}),
        (
            "200 application/json",
            {"status": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"},
        ),
        (
            "200 application/jose with parameters, not a JWE",
            {
                "status": 200,
                "headers": {"content-type": "Application/JOSE; charset=us-ascii"},
                "body": "garbage",
            },
        ),
        ("a problem with control characters", noisy),
        ("a problem with an overlong code and title", long_code),
        (
            "a problem body that is not JSON",
            {"status": 400, "headers": {"Content-Type": "application/problem+json"}, "body": "{"},
        ),
        (
            "a problem body nested 30,000 deep",
            {
                "status": 400,
                "headers": {"Content-Type": "application/problem+json"},
                "body": '{"code":' + "[" * 30000 + "]" * 30000 + "}",
            },
        ),
        ("no answer (connection refused)", None),
    ]
    cfg = client_config.parse(CONFIG)
    out: dict[str, Any] = {
        "config": CONFIG,
        "identity": {"app_version": "5.2.0", "install_id": "install-0001", "held": None},
        "clock": NOW,
        "random": 0.5,
        "policy": {
            "attempt_timeout": 3.0,
            "max_rounds": 2,
            "round_backoff": {"base": 0.25, "cap": 4.0},
        },
        "cases": [],
    }
    for name, spec in cases:
        out["cases"].append({"name": name, "response": spec, "expect": run_answer(cfg, spec)})
    # The first request gets one answer, every later one another: what each resend is for.
    sequences = [
        ("401 replayed-token, then 503 replay-cache-full", replayed, full),
        (
            "401 replayed-token, then 401 invalid-token",
            replayed,
            problem(401, "invalid-token", "The token is not valid"),
        ),
        ("401 stale-token with a Date header, then 401 replayed-token", dated, replayed),
        ("401 replayed-token, then 401 stale-token with a Date header", replayed, dated),
    ]
    for name, first, spec in sequences:
        expect = run_answer(cfg, spec, first)
        out["cases"].append({"name": name, "first": first, "response": spec, "expect": expect})
    return out


def main() -> None:
    write("config.json", config_vectors())
    write("token.json", token_vectors())
    write("bucket.json", bucket_vectors())
    write("payload.json", payload_vectors())
    write("answers.json", answer_vectors())


if __name__ == "__main__":
    main()
