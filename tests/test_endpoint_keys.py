"""Key objects are prepared once per bundle: answering never imports a key, whatever the case.

Unknown client, unknown kid and bad signature must cost the same as each other: each runs one
HMAC verification with a prepared key and answers the same 401. (The bench prints the median
time of the three side by side; here the work itself is compared, not the clock.)
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey

from keyops.endpoint.core import Endpoint, Request
from keyops.protocol import jose
from keyops.protocol.bundle import Bundle
from support.endpoint import app_auth, claims, mint
from support.repo import KeyRepo

NOW = int(time.time())


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path) -> Bundle:
    return Bundle.load(bundle_dir)


def cases(served_repo: KeyRepo) -> dict[str, str]:
    kid, secret = app_auth(served_repo)
    return {
        "valid": mint(kid, secret, claims(iat=NOW)),
        "unknown client": mint(kid, secret, claims(iat=NOW, sub="watch")),
        "unknown kid": mint("no-such-kid", secret, claims(iat=NOW)),
        "bad signature": mint(kid, b"not the key" * 3, claims(iat=NOW)),
    }


def forbid(monkeypatch: pytest.MonkeyPatch, target: Any, name: str) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{name} was called while answering a request")

    monkeypatch.setattr(target, name, refuse)


def test_no_key_is_imported_while_answering(
    bundle: Bundle, served_repo: KeyRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = cases(served_repo)
    endpoint = Endpoint(bundle, clock=lambda: NOW)  # the bundle's keys are prepared here
    # From now on, any way of making an HMAC or JOSE key object fails the request loudly.
    forbid(monkeypatch, hmac, "new")
    forbid(monkeypatch, jose, "hmac_key")
    forbid(monkeypatch, OctKey, "import_key")
    forbid(monkeypatch, ECKey, "import_key")
    statuses = {
        name: endpoint.handle(Request.get("/v1/credentials", f"Bearer {token}")).status
        for name, token in tokens.items()
    }
    assert statuses == {
        "valid": 200,
        "unknown client": 401,
        "unknown kid": 401,
        "bad signature": 401,
    }


def test_unknown_client_kid_and_bad_signature_do_the_same_work(
    bundle: Bundle, served_repo: KeyRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = Endpoint(bundle, clock=lambda: NOW)
    calls: list[tuple[str, int, int]] = []
    real = jose.hs256_valid

    def counting(key: hmac.HMAC, signing_input: bytes, signature: bytes) -> bool:
        calls.append((type(key).__name__, key.digest_size, len(signature)))
        return real(key, signing_input, signature)

    monkeypatch.setattr(jose, "hs256_valid", counting)
    answers = {}
    for name, token in cases(served_repo).items():
        calls.clear()
        answer = endpoint.handle(Request.get("/v1/credentials", f"Bearer {token}"))
        answers[name] = (answer.status, answer.body, list(calls))
    refused = [answers[n] for n in ("unknown client", "unknown kid", "bad signature")]
    # One HMAC verification each, with the same kind of prepared key, and the same answer.
    assert all(a == refused[0] for a in refused)
    assert refused[0][0] == 401 and refused[0][2] == [("HMAC", 32, 32)]
    assert answers["valid"][2] == refused[0][2]


def test_swapping_the_bundle_prepares_its_keys(bundle: Bundle, served_repo: KeyRepo) -> None:
    endpoint = Endpoint(None, clock=lambda: NOW)
    token = cases(served_repo)["valid"]
    assert endpoint.handle(Request.get("/v1/credentials", f"Bearer {token}")).status == 503
    endpoint.bundle = bundle
    assert endpoint.bundle is bundle
    assert endpoint.handle(Request.get("/v1/credentials", f"Bearer {token}")).status == 200
