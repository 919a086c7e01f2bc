"""CORS on every path: ``keyops serve`` and the Lambda handler answer browsers identically.

Both read the allowed origins from the same bundle (the sample's web client lists
``http://localhost:*`` and ``https://app.dev.example.com``); the core adds the CORS headers, so
the two adapters cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keyops.endpoint import lambda_handler
from support.apigw import http_api_event
from support.endpoint import app_auth, claims, mint
from support.repo import KeyRepo
from support.serve import Server

ALLOWED = "http://localhost:5173"
OTHER = "https://evil.example"
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "access-control-expose-headers",
    "vary",
)


@pytest.fixture
def via_lambda(bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KEYOPS_BUNDLE", str(bundle_dir))
    monkeypatch.delenv("KEYOPS_PINNED_JWKS", raising=False)
    lambda_handler.reset()
    yield
    lambda_handler.reset()


def both(
    server: Server, method: str, path: str, headers: dict[str, str]
) -> tuple[tuple[int, dict[str, str]], tuple[int, dict[str, str]]]:
    """(status, CORS headers) from keyops serve and from the Lambda handler, for one request."""
    served = httpx.request(method, server.url + path, headers=headers, timeout=30)
    answer = lambda_handler.handler(http_api_event(method, path, headers), None)
    from_lambda = {k.lower(): v for k, v in answer["headers"].items()}
    return (
        (served.status_code, {k: served.headers[k] for k in CORS_HEADERS if k in served.headers}),
        (answer["statusCode"], {k: from_lambda[k] for k in CORS_HEADERS if k in from_lambda}),
    )


def requests(repo: KeyRepo, origin: str) -> list[tuple[str, str, dict[str, str]]]:
    token = mint(*app_auth(repo, "web"), claims(sub="web"))
    preflight = {"origin": origin, "access-control-request-method": "GET"}
    preflight["access-control-request-headers"] = "authorization"
    return [
        ("OPTIONS", "/v1/credentials", preflight),
        ("GET", "/v1/credentials", {"origin": origin, "authorization": f"Bearer {token}"}),
        ("GET", "/v1/credentials", {"origin": origin}),  # 401 problem+json
        ("GET", "/healthz", {"origin": origin}),
        ("GET", "/nowhere", {"origin": origin}),  # 404 problem+json
    ]


def test_an_origin_that_is_not_allowed_gets_no_cors_headers_on_either_path(
    server: Server, served_repo: KeyRepo, via_lambda: None
) -> None:
    for method, path, headers in requests(served_repo, OTHER):
        served, from_lambda = both(server, method, path, headers)
        assert served == from_lambda, (method, path)
        assert served[1] == {}, (method, path)
    # The request itself is answered as before: CORS is not authentication.
    preflight, _ = both(server, *requests(served_repo, OTHER)[0])
    assert preflight[0] == 405


def test_an_allowed_origin_gets_the_same_cors_answers_from_serve_and_lambda(
    server: Server, served_repo: KeyRepo, via_lambda: None
) -> None:
    answers = [both(server, *request) for request in requests(served_repo, ALLOWED)]
    for (method, path, _), (served, from_lambda) in zip(
        requests(served_repo, ALLOWED), answers, strict=True
    ):
        assert served == from_lambda, (method, path)
    (preflight, _), (ok, _), (unauthorized, _), (health, _), (missing, _) = answers
    assert preflight == (
        204,
        {
            "access-control-allow-origin": ALLOWED,
            "access-control-allow-methods": "GET",
            "access-control-allow-headers": "Authorization",
            "access-control-max-age": "7200",
            "vary": "Origin",
        },
    )
    exposed = {
        "access-control-allow-origin": ALLOWED,
        "access-control-expose-headers": "Date",
        "vary": "Origin",
    }
    assert ok == (200, exposed)
    assert unauthorized == (401, exposed)  # errors too: the page can read the problem and Date
    assert health == (200, exposed)
    assert missing == (404, exposed)


def test_the_preflight_has_no_body_and_no_content_type(server: Server, via_lambda: None) -> None:
    headers = {"origin": "https://app.dev.example.com", "access-control-request-method": "GET"}
    served = httpx.request("OPTIONS", server.url + "/v1/credentials", headers=headers)
    assert (served.status_code, served.content) == (204, b"")
    assert "content-type" not in served.headers
    answer = lambda_handler.handler(http_api_event("OPTIONS", "/v1/credentials", headers), None)
    assert (answer["statusCode"], answer["body"]) == (204, "")
    assert "content-type" not in {k.lower() for k in answer["headers"]}
