"""The framework-free endpoint: one request in, one response out (docs/protocol.md).

Routes: ``GET /v1/credentials`` (token → selection → JWE of the prebuilt JWS to ``epk``),
``GET /healthz`` and ``GET /metrics``. Errors are ``application/problem+json`` with the codes of
the table in docs/protocol.md; unknown paths answer 404 ``not-found`` and other methods 405
``method-not-allowed`` (both extensions, documented in openapi.yaml).

The endpoint holds no signing key: it hands out payloads signed at build time. Nothing it logs or
answers contains a secret, a token or a key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from joserfc import jwe
from joserfc.errors import JoseError

from keyops.core.errors import ServiceError
from keyops.endpoint import claims as tokens
from keyops.endpoint.metrics import CONTENT_TYPE as METRICS_TYPE
from keyops.endpoint.metrics import Metrics
from keyops.protocol import selection
from keyops.protocol.bundle import Bundle

log = logging.getLogger("keyops.endpoint")

CREDENTIALS_PATH = "/v1/credentials"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
JOSE = "application/jose"
PROBLEM = "application/problem+json"
JWE_HEADER = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM"}
PROBLEM_BASE = "https://keyops.invalid/problems/"
ROUTES = {CREDENTIALS_PATH: ("GET",), HEALTH_PATH: ("GET", "HEAD"), METRICS_PATH: ("GET",)}


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)

    def all_headers(self) -> dict[str, str]:
        return {"content-type": self.content_type, **self.headers}


def problem(error: ServiceError) -> Response:
    body = {
        "type": PROBLEM_BASE + error.code,
        "title": error.title,
        "status": error.status,
        "code": error.code,
    }
    headers = {"cache-control": "no-store"}
    if error.status == 401:
        headers["www-authenticate"] = 'Bearer error="invalid_token"'
    return Response(error.status, json.dumps(body).encode(), PROBLEM, headers)


def not_ready() -> ServiceError:
    return ServiceError(503, "not-ready", "No valid bundle is loaded")


class Endpoint:
    """Answers requests from the bundle currently set; swapping ``bundle`` is atomic."""

    def __init__(
        self,
        bundle: Bundle | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bundle = bundle
        self.metrics = metrics or Metrics()
        self.clock = clock

    def current(self, now: float) -> Bundle | None:
        bundle = self.bundle
        return bundle if bundle is not None and not bundle.expired(now) else None

    def handle(self, method: str, path: str, authorization: str | None = None) -> Response:
        allowed = ROUTES.get(path)
        if allowed is None:
            return problem(ServiceError(404, "not-found", "No such resource"))
        if method.upper() not in allowed:
            response = problem(ServiceError(405, "method-not-allowed", "Method not allowed"))
            response.headers["allow"] = ", ".join(allowed)
            return response
        now = self.clock()
        if path == HEALTH_PATH:
            return self.health(now)
        if path == METRICS_PATH:
            text = self.metrics.render(self.bundle, now)
            return Response(200, text.encode(), METRICS_TYPE, {"cache-control": "no-store"})
        return self.credentials(authorization, now)

    def health(self, now: float) -> Response:
        bundle = self.current(now)
        if bundle is None:
            return problem(not_ready())
        body = {
            "status": "ok",
            "stack": bundle.stack,
            "bundle_version": bundle.bundle_version,
            "expires_in": int(bundle.exp - now),
        }
        return Response(
            200, json.dumps(body).encode(), "application/json", {"cache-control": "no-store"}
        )

    def credentials(self, authorization: str | None, now: float) -> Response:
        try:
            response = self._serve(authorization, now)
        except ServiceError as error:
            self.metrics.count_response(error.status, error.code)
            return problem(error)
        self.metrics.count_response(200, "ok")
        return response

    def _serve(self, authorization: str | None, now: float) -> Response:
        bundle = self.current(now)
        if bundle is None:
            raise not_ready()
        claims = tokens.verify(authorization, bundle, now)
        client = bundle.clients[claims.client]
        chosen = selection.select(client, claims.install_id, claims.app_version)
        if chosen is None:
            raise ServiceError(426, "upgrade-required", "No credential for this app_version")
        try:
            body = jwe.encrypt_compact(
                JWE_HEADER, chosen.jws, claims.epk, algorithms=[JWE_HEADER["alg"], "A256GCM"]
            )
        except (JoseError, ValueError) as exc:
            # epk passed the curve check; a failure here is a key the library still refuses.
            log.info("JWE to the request's epk failed: %s", type(exc).__name__)
            raise tokens.bad_request("epk cannot be used for ECDH-ES") from None
        held = claims.held
        if held is None:
            held = "none"
        elif held not in client.credential_ids:
            held = "other"
        self.metrics.count_served(claims.client, chosen.id, held)
        return Response(200, body.encode(), JOSE, {"cache-control": "no-store"})
