"""Hostile requests against the core and the Lambda handler: only documented 4xx, never a raise.

Every answer here is problem+json with ``Cache-Control: no-store``; a bug behind a route is a
problem+json 500 logged as one line without the token. The same cases go through the Lambda
handler, which must never raise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyops.endpoint import lambda_handler
from keyops.endpoint.core import Endpoint, Request
from keyops.protocol.bundle import Bundle
from support.endpoint import app_auth, b64, claims, json_values, mint
from support.repo import KeyRepo

NOW = int(time.time())
DEEP = 2000


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path) -> Bundle:
    return Bundle.load(bundle_dir)


@pytest.fixture(scope="module")
def auth(served_repo: KeyRepo) -> tuple[str, bytes]:
    return app_auth(served_repo)


@pytest.fixture
def deployed(bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KEYOPS_BUNDLE", str(bundle_dir))
    monkeypatch.delenv("KEYOPS_PINNED_JWKS", raising=False)
    lambda_handler.reset()
    yield
    lambda_handler.reset()


#: Stands for an array nested DEEP levels in JSON texts (json.dumps itself cannot go so deep).
NESTED = "<nested>"


def text(value: Any) -> bytes:
    """JSON text of ``value`` (bytes pass as they are), with NESTED spliced in."""
    if isinstance(value, bytes):
        return value
    deep = b"[" * DEEP + b"1" + b"]" * DEEP
    return json.dumps(value).encode().replace(json.dumps(NESTED).encode(), deep)


def raw_token(header: Any, payload: Any, signature: bytes = b"s" * 32) -> str:
    """A token with exactly these JSON texts, unsigned (any structure at all)."""
    return f"{b64(text(header))}.{b64(text(payload))}.{b64(signature)}"


def hs256(secret: bytes, header: Any, payload: Any) -> str:
    """A correctly signed HS256 token over any JSON texts (joserfc refuses odd headers)."""
    signing_input = f"{b64(text(header))}.{b64(text(payload))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def via_core(bundle: Bundle, token: str) -> tuple[int, dict[str, str], bytes]:
    endpoint = Endpoint(bundle, clock=lambda: NOW)
    answer = endpoint.handle(Request.get("/v1/credentials", f"Bearer {token}"))
    return answer.status, answer.all_headers(), answer.body


def via_lambda(token: str) -> tuple[int, dict[str, str], bytes]:
    event = {
        "version": "2.0",
        "rawPath": "/v1/credentials",
        "headers": {"authorization": f"Bearer {token}"},
        "requestContext": {"http": {"method": "GET", "path": "/v1/credentials"}},
    }
    answer = lambda_handler.handler(event, None)
    return answer["statusCode"], answer["headers"], answer["body"].encode()


def assert_problem(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got_status, headers, body = answer
    assert (got_status, json.loads(body)["code"]) == (status, code)
    assert headers["content-type"] == "application/problem+json"
    assert headers["cache-control"] == "no-store"


def signed_cases(kid: str) -> list[tuple[str, Any, Any, int, str]]:
    """(why, header, payload, status, code): each token correctly signed."""
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    bad, invalid, stale = (400, "bad-request"), (401, "invalid-token"), (401, "stale-token")

    def body(**changes: Any) -> dict[str, Any]:
        return claims(**{"iat": NOW, **changes})

    point = {"kty": "EC", "crv": "P-256", "x": 1, "y": 2}
    infinite = json.dumps(body(iat=1)).encode().replace(b'"iat": 1', b'"iat": 1e400')
    return [
        # A payload that does not parse names no client: like an unknown client, 401.
        ("payload nested 2,000 deep", header, {"sub": "ios", "x": NESTED}, *invalid),
        ("iat 10**400", header, body(iat=10**400), *stale),
        ("iat -10**400", header, body(iat=-(10**400)), *stale),
        ("iat a float", header, body(iat=NOW + 0.5), *bad),
        ("iat 1e400 (infinity)", header, infinite, *bad),
        ("iat true", header, body(iat=True), *bad),
        ("iat a list", header, body(iat=[NOW]), *bad),
        ("aud a list holding the stack", header, body(aud=["dev"]), *invalid),
        ("aud an object", header, body(aud={"dev": 1}), *invalid),
        ("jti a float", header, body(jti=1.5), *bad),
        ("jti a list", header, body(jti=["a" * 20]), *bad),
        ("app_version a list", header, body(app_version=["5.2.0"]), *bad),
        ("app_version with a newline", header, body(app_version="5.2.0\n"), *bad),
        ("app_version with other digits", header, body(app_version="5.2.\u0661"), *bad),
        ("install_id with a newline", header, body(install_id="install-0001\n"), *bad),
        ("install_id a dict", header, body(install_id={"a": 1}), *bad),
        ("held with a newline", header, body(held="ios-2026-11\n"), *bad),
        ("held a list", header, body(held=["ios-2026-11"]), *bad),
        ("held a float", header, body(held=1.0), *bad),
        ("epk a list", header, body(epk=[1, 2]), *bad),
        ("epk nested 2,000 deep", header, body(epk=NESTED), *invalid),
        ("epk nested 50 deep", header, body(epk=json.loads("[" * 50 + "]" * 50)), *bad),
        ("epk x a number", header, body(epk=point), *bad),
        ("payload a list", header, [1, 2, 3], *invalid),
        ("payload not JSON", header, b"{not json", *invalid),
        ("typ jwt in lower case", {**header, "typ": "jwt"}, body(), *invalid),
        ("typ a list", {**header, "typ": ["JWT"]}, body(), *invalid),
        ("kid a list", {**header, "kid": [kid]}, body(), *invalid),
        ("alg a list", {**header, "alg": ["HS256"]}, body(), *invalid),
        ("header nested 2,000 deep", {**header, "x": NESTED}, body(), *invalid),
    ]


CASES = signed_cases("kid")


def test_the_signed_cases_fit_the_token_limit(auth: tuple[str, bytes]) -> None:
    for why, header, payload, _, _ in signed_cases(auth[0]):
        assert len(hs256(auth[1], header, payload)) < 8192, why


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_signed_hostile_tokens_get_documented_answers(
    bundle: Bundle, deployed: None, auth: tuple[str, bytes], index: int
) -> None:
    _, header, payload, status, code = signed_cases(auth[0])[index]
    token = hs256(auth[1], header, payload)
    assert_problem(via_core(bundle, token), status, code)
    assert_problem(via_lambda(token), status, code)


UNSIGNED: list[tuple[str, Any, Any]] = [
    ("header nested 2,000 deep", NESTED, {"sub": "ios"}),
    ("payload nested 2,000 deep", {"alg": "HS256", "kid": "k"}, NESTED),
    ("sub a list", {"alg": "HS256", "kid": "k"}, {"sub": ["ios"]}),
    ("sub nested", {"alg": "HS256", "kid": "k"}, {"sub": NESTED}),
    ("kid a dict", {"alg": "HS256", "kid": {"a": "b"}}, {"sub": "ios"}),
    ("header a number", 10**400, {"sub": "ios"}),
]


@pytest.mark.parametrize(("why", "header", "payload"), UNSIGNED, ids=[u[0] for u in UNSIGNED])
def test_unsigned_hostile_tokens_are_401(
    bundle: Bundle, deployed: None, why: str, header: Any, payload: Any
) -> None:
    token = raw_token(header, payload)
    assert len(token) < 8192
    assert_problem(via_core(bundle, token), 401, "invalid-token")
    assert_problem(via_lambda(token), 401, "invalid-token")


def test_a_token_with_the_stack_as_a_string_is_still_served(
    bundle: Bundle, auth: tuple[str, bytes]
) -> None:
    status, headers, _ = via_core(bundle, mint(*auth, claims(iat=NOW, aud="dev")))
    assert (status, headers["content-type"]) == (200, "application/jose")


def test_a_bug_behind_a_route_is_a_logged_problem_500(
    bundle: Bundle,
    auth: tuple[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("a message that may hold a value: SECRET-VALUE")

    monkeypatch.setattr("keyops.protocol.selection.select", broken)
    token = mint(*auth, claims(iat=NOW))
    endpoint = Endpoint(bundle, clock=lambda: NOW)
    with caplog.at_level(logging.ERROR, logger="keyops"):
        answer = endpoint.handle(Request.get("/v1/credentials", f"Bearer {token}"))
    assert answer.status == 500
    assert answer.all_headers() == {
        "content-type": "application/problem+json",
        "cache-control": "no-store",
    }
    assert json.loads(answer.body) == {
        "type": "https://keyops.invalid/problems/internal-error",
        "title": "The endpoint failed to answer",
        "status": 500,
        "code": "internal-error",
    }
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith("answering /v1/credentials failed: RuntimeError at ")
    assert token not in caplog.text and "SECRET-VALUE" not in caplog.text
    assert 'keyops_responses_total{status="500",code="internal-error"} 1' in (
        endpoint.handle(Request.get("/metrics")).body.decode()
    )


def test_the_lambda_handler_never_raises(
    deployed: None, auth: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    token = mint(*auth, claims())
    monkeypatch.setattr("keyops.protocol.selection.select", broken)
    assert_problem(via_lambda(token), 500, "internal-error")
    monkeypatch.setattr("keyops.endpoint.core.Endpoint.handle", broken)
    assert_problem(via_lambda(token), 500, "internal-error")


EVENTS: list[Any] = [
    None,
    [],
    "GET /",
    {"rawPath": ["/v1/credentials"]},
    {"rawPath": "/healthz", "requestContext": []},
    {"rawPath": "/healthz", "requestContext": {"http": {"method": ["GET"]}}},
    {"rawPath": "/v1/credentials", "headers": [["authorization", "Bearer x"]]},
    {"rawPath": "/v1/credentials", "headers": {"authorization": ["Bearer x.y.z"]}},
    {"rawPath": "/v1/credentials", "headers": {"Authorization": 12}},
]


@pytest.mark.parametrize("event", EVENTS)
def test_malformed_events_are_answered(deployed: None, event: Any) -> None:
    answer = lambda_handler.handler(event, None)
    assert answer["statusCode"] in (200, 400, 401, 404, 405)
    assert answer["headers"]["cache-control"] == "no-store"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    claim=st.sampled_from(
        ["sub", "aud", "iat", "jti", "app_version", "install_id", "epk", "held", "junk"]
    ),
    value=json_values(),
)
def test_any_claim_value_is_a_documented_answer(
    bundle: Bundle, auth: tuple[str, bytes], claim: str, value: Any
) -> None:
    body = claims(iat=NOW)
    body[claim] = value
    status, headers, _ = via_core(bundle, hs256(auth[1], {"alg": "HS256", "kid": auth[0]}, body))
    assert status in (200, 400, 401), (claim, value)
    assert headers["cache-control"] == "no-store"
