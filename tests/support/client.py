"""Helpers for the client tests: a scripted endpoint behind the client's ``transport`` seam.

``FakeEndpoint`` is a test double of a protocol v1 server, used only for unit tests of the client
(the integration tests run the real ``keyops serve``). It checks each request's token the way
the protocol says (HS256 with the app_auth key, claims, epk) and answers with a payload signed
by a test ES256 key and encrypted to the request's ``epk`` with joserfc, so the client under test
does real decryption and real signature checks.
"""

from __future__ import annotations

import base64
import email.utils
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwe, jws, jwt
from joserfc.jwk import ECKey, OctKey

from keyops.client import config as client_config
from keyops.client.config import ClientConfig
from keyops.client.transport import Request, Response
from keyops.core.errors import TransportError

NOW = 1_795_000_000.0  # 2026-11-19, inside the sample's lifetime
SECRET = secrets.token_bytes(32)
SECRET_B64 = base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode()
SIGNER = ECKey.generate_key("P-256", parameters={"kid": "dev-sign-a"}, private=True)
NEXT_SIGNER = ECKey.generate_key("P-256", parameters={"kid": "dev-sign-b"}, private=True)
ROGUE = ECKey.generate_key("P-256", parameters={"kid": "dev-sign-a"}, private=True)
KEY_A = "0123456789abcdef0123"
KEY_B = "fedcba9876543210fedc"
A = "https://a.example.test"
B = "https://b.example.test"


def jwk_public(key: ECKey, kid: str) -> dict[str, Any]:
    data = dict(key.as_dict(private=False))
    data.update({"kid": kid, "use": "sig", "alg": "ES256"})
    return data


def document(
    endpoints: list[str] | None = None, *, bundled: dict[str, str] | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "stack": "dev",
        "client": "ios",
        "endpoints": endpoints or [A, B],
        "request_auth": {"kid": "ios-build-2026a", "alg": "HS256", "secret": SECRET_B64},
        "pinned_keys": {
            "keys": [jwk_public(SIGNER, "dev-sign-a"), jwk_public(NEXT_SIGNER, "dev-sign-b")]
        },
    }
    if bundled is not None:
        doc["bundled_fallback"] = bundled
    return doc


def make_config(endpoints: list[str] | None = None, **kw: Any) -> ClientConfig:
    return client_config.parse(document(endpoints, **kw))


def payload(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "stack": "dev",
        "client": "ios",
        "credential_id": "ios-2026-11",
        "key": KEY_A,
        "cluster": "eu",
        "bundle_version": 17,
        "iat": int(NOW) - 3600,
        "exp": int(NOW) + 30 * 86400,
        "refresh_after": 3600,
    }
    data.update(overrides)
    return data


def sign(data: dict[str, Any], key: ECKey = SIGNER, kid: str = "dev-sign-a") -> str:
    return jws.serialize_compact(
        {"alg": "ES256", "kid": kid}, json.dumps(data).encode(), key, algorithms=["ES256"]
    )


def encrypt_to(epk: dict[str, Any], plaintext: str, alg: str = "ECDH-ES+A256KW") -> str:
    public = ECKey.import_key(epk)
    return jwe.encrypt_compact(
        {"alg": alg, "enc": "A256GCM", "cty": "JWT"}, plaintext, public, algorithms=[alg, "A256GCM"]
    )


def jose(body: str) -> Response:
    return Response(
        200, {"Content-Type": "application/jose", "Cache-Control": "no-store"}, body.encode()
    )


def problem(
    status: int, code: str, title: str = "", headers: dict[str, str] | None = None
) -> Response:
    body = {"type": "about:blank", "title": title or code, "status": status, "code": code}
    return Response(
        status,
        {"Content-Type": "application/problem+json", **(headers or {})},
        json.dumps(body).encode(),
    )


@dataclass
class Seen:
    url: str
    header: dict[str, Any]
    claims: dict[str, Any]
    request: Request


Handler = Callable[[Request, dict[str, Any]], Response]


def serve_signed(signed: str) -> Handler:
    """A handler answering with ``signed`` encrypted to the request's epk."""
    return lambda request, claims: jose(encrypt_to(claims["epk"], signed))


def down(message: str = "connection refused") -> Handler:
    def handler(request: Request, claims: dict[str, Any]) -> Response:
        raise TransportError(message)

    return handler


@dataclass
class FakeEndpoint:
    """Route by base URL to a handler; verify every token first, as a protocol v1 server does."""

    routes: dict[str, Handler]
    seen: list[Seen] = field(default_factory=list)
    #: The server's clock; the tests' ``fetcher`` helper shares the client's unless set.
    clock: Callable[[], float] | None = None

    def __call__(self, request: Request) -> Response:
        base = next(b for b in self.routes if request.url.startswith(b))
        assert request.url == base + "/v1/credentials"
        assert request.method == "GET"
        assert request.headers["Accept"] == "application/jose"
        token = request.headers["Authorization"].removeprefix("Bearer ")
        decoded = jwt.decode(token, OctKey.import_key(SECRET), algorithms=["HS256"])
        self.seen.append(Seen(base, dict(decoded.header), dict(decoded.claims), request))
        server_now = self.clock() if self.clock else NOW
        if abs(decoded.claims["iat"] - server_now) > 300:
            date = email.utils.formatdate(server_now, usegmt=True)
            return problem(401, "stale-token", "token iat outside the window", {"Date": date})
        return self.routes[base](request, dict(decoded.claims))

    def urls(self) -> list[str]:
        return [s.url for s in self.seen]


class Clock:
    """Injectable wall clock and sleep: sleeping advances the clock and is recorded."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
