"""Shared helpers for the endpoint tests: a built dev stack, tokens, real servers on 127.0.0.1.

Imported by test_bundle*, test_endpoint*, test_serve* and test_lambda*. It holds no tests.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwe, jws, jwt
from joserfc.jwk import ECKey, KeySet, OctKey

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
