"""Shared helpers for the endpoint tests: a built dev stack, tokens, real servers on 127.0.0.1.

Imported by test_bundle*, test_endpoint*, test_serve* and test_lambda*. It holds no tests.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwe, jws, jwt
from joserfc.jwk import ECKey, KeySet, OctKey

from keyops.protocol.bundle import BUNDLE_TYP
from support.repo import KeyRepo, new_repo
from support.serve import Server, start_serve

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served_repo(
    tmp_path_factory: pytest.TempPathFactory, _template: tuple[Path, str, str]
) -> KeyRepo:
    return new_repo(tmp_path_factory.mktemp("served"), _template)


@pytest.fixture(scope="module")
def bundle_dir(served_repo: KeyRepo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "b"
    proc = served_repo.run("build", "--stack", "dev", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def app_auth(repo: KeyRepo, client: str = "ios") -> tuple[str, bytes]:
    """The active app_auth kid and HMAC key bytes of a client, from its decrypted file."""
    doc = repo.decrypt(f"credentials/dev/{client}.yaml")
    entry = next(a for a in doc["app_auth"] if a["state"] == "active")
    secret = entry["secret"]
    return entry["kid"], base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))


def new_epk() -> ECKey:
    return ECKey.generate_key("P-256")


def claims(epk: ECKey | dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    public = epk.as_dict(private=False) if isinstance(epk, ECKey) else epk
    data: dict[str, Any] = {
        "sub": "ios",
        "aud": "dev",
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(16),
        "app_version": "5.2.0",
        "install_id": "install-0001",
        "epk": public if public is not None else new_epk().as_dict(private=False),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def mint(kid: str, secret: bytes, body: dict[str, Any], **header: Any) -> str:
    protected = {"alg": "HS256", "kid": kid, "typ": "JWT", **header}
    return jwt.encode(protected, body, OctKey.import_key(secret))


def open_answer(body: bytes | str, epk: ECKey, jwks: dict[str, Any]) -> dict[str, Any]:
    """Decrypt the JWE with the ephemeral key and verify the JWS against the pinned JWKS."""
    inner = jwe.decrypt_compact(body, epk, algorithms=["ECDH-ES+A256KW", "A256GCM"])
    signed = jws.deserialize_compact(
        inner.plaintext, KeySet.import_key_set(jwks), algorithms=["ES256"]
    )
    payload: dict[str, Any] = json.loads(signed.payload)
    return payload


def start_server(
    repo: KeyRepo, args: list[str], log: Path, *, wait_healthy: bool = True, timeout: float = 40
) -> Server:
    """``keyops serve`` on a free loopback port, as a real subprocess."""
    return start_serve(repo, args, log, wait=wait_healthy, timeout=timeout)


@pytest.fixture(scope="module")
def server(
    served_repo: KeyRepo, bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("log") / "serve.log"
    running = start_server(served_repo, ["--bundle", str(bundle_dir), "--poll", "0.2"], log)
    yield running
    running.stop()


def jwks_of(bundle: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bundle / "jwks.json").read_text())
    return data


# -- hand-made bundles: any header, any document, signed by a key the test holds ------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def es256(header: Any, payload: bytes, key: ec.EllipticCurvePrivateKey) -> str:
    """A compact ES256 JWS with exactly this header (any JSON, even a hostile one)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def public_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "alg": "ES256",
        "x": b64(numbers.x.to_bytes(32, "big")),
        "y": b64(numbers.y.to_bytes(32, "big")),
    }


@dataclass
class Forger:
    """Re-signs a real bundle's document (and every payload in it) with a key of its own."""

    doc: dict[str, Any]
    key: ec.EllipticCurvePrivateKey
    kid: str

    @classmethod
    def of(cls, raw: bytes, kid: str = "forger-sign-1") -> Forger:
        key = ec.generate_private_key(ec.SECP256R1())
        doc = b64json(raw.decode().split(".")[1])
        doc["jwks"] = {"keys": [public_jwk(key, kid)]}
        forger = cls(doc, key, kid)
        for client in doc["clients"].values():
            for item in client["serve"]:
                item["jws"] = forger.sign(b64json(item["jws"].split(".")[1]))
        return forger

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key, self.kid)]}

    def sign(self, payload: Any, header: Any = None) -> str:
        header = {"alg": "ES256", "kid": self.kid} if header is None else header
        return es256(header, json.dumps(payload).encode(), self.key)

    def bundle(self, doc: Any = None, header: Any = None) -> bytes:
        header = {"alg": "ES256", "kid": self.kid, "typ": BUNDLE_TYP} if header is None else header
        return self.sign(self.doc if doc is None else doc, header).encode()


def json_values(largest: int = 10**400) -> Any:
    """A hypothesis strategy: any JSON value, nested, huge integers and non-finite floats too."""
    from hypothesis import strategies as st

    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-largest, max_value=largest)
        | st.floats()
        | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )
