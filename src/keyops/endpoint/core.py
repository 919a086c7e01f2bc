"""The framework-free endpoint: one request in, one response out (docs/protocol.md).

Routes: ``GET /v1/credentials`` (token → selection → JWE of the prebuilt JWS to ``epk``),
``GET /healthz`` and ``GET /metrics``. Errors are ``application/problem+json`` with the codes of
the table in docs/protocol.md; unknown paths answer 404 ``not-found`` and other methods 405
``method-not-allowed`` (both extensions, documented in openapi.yaml).

:meth:`Endpoint.handle` never raises: whatever escapes the routes (a bug) is answered 500
``internal-error`` as problem+json and logged as one line naming the exception's type and where
it was raised, never its message or the request's headers.

The endpoint holds no signing key: it hands out payloads signed at build time. Nothing it logs or
answers contains a secret, a token or a key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from keyops.core.errors import ServiceError
from keyops.endpoint import cors, installs
from keyops.endpoint.claims import Verifier, bad_request
from keyops.endpoint.emf import EmfLog
from keyops.endpoint.metrics import CONTENT_TYPE as METRICS_TYPE
from keyops.endpoint.metrics import Metrics
from keyops.endpoint.replay import ReplayCache
from keyops.protocol import jose, selection
from keyops.protocol.bundle import Bundle

CREDENTIALS_PATH = "/v1/credentials"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
JOSE = "application/jose"
PROBLEM = "application/problem+json"
PROBLEM_BASE = "https://keyops.invalid/problems/"
ROUTES = {CREDENTIALS_PATH: ("GET",), HEALTH_PATH: ("GET", "HEAD"), METRICS_PATH: ("GET",)}
NO_STORE = "no-store"
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class Request:
    """One HTTP request as the core sees it: method, path and headers (names lower-case)."""

    __slots__ = ("headers", "method", "path")

    def __init__(self, method: str, path: str, headers: Mapping[str, str] = _NO_HEADERS) -> None:
        self.method = method
        self.path = path
        self.headers = headers

    @classmethod
    def get(cls, path: str, authorization: str | None = None) -> Request:
        """A GET with an optional Authorization header (tests, benchmarks)."""
        headers = {} if authorization is None else {"authorization": authorization}
        return cls("GET", path, headers)


class Response:
    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = {} if headers is None else headers

    def all_headers(self) -> dict[str, str]:
        if not self.content_type:  # a 204 preflight answer has no body and no type
            return dict(self.headers)
        return {"content-type": self.content_type, **self.headers}


def problem(error: ServiceError) -> Response:
    body = {
        "type": PROBLEM_BASE + error.code,
        "title": error.title,
        "status": error.status,
        "code": error.code,
    }
    headers = {"cache-control": NO_STORE}
    if error.retry_after is not None:
        headers["retry-after"] = str(error.retry_after)
    if error.status == 401:
        headers["www-authenticate"] = 'Bearer error="invalid_token"'
    return Response(error.status, json.dumps(body).encode(), PROBLEM, headers)


def not_ready() -> ServiceError:
    return ServiceError(503, "not-ready", "No valid bundle is loaded")


def internal_error() -> ServiceError:
    return ServiceError(500, "internal-error", "The endpoint failed to answer")


def upgrade_required() -> ServiceError:
    return ServiceError(426, "upgrade-required", "No credential for this app_version")


def log_unexpected(where: str, exc: BaseException) -> None:
    """One line for a bug: the exception's type and innermost frame, never a value."""
    import logging  # only on this path: the Lambda cold start imports nothing it may not need

    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    at = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"
    logging.getLogger("keyops.endpoint").error("%s failed: %s at %s", where, type(exc).__name__, at)


class _Loaded(NamedTuple):
    """What a bundle needs prepared before it serves: its keys, its CORS origins and the hasher
    of install ids under its salt. Swapped as one, so a request never mixes two bundles."""

    verifier: Verifier
    origins: cors.AllowedOrigins
    hasher: installs.InstallHasher | None

    @classmethod
    def of(cls, bundle: Bundle) -> _Loaded:
        salt = bundle.install_salt
        return cls(
            Verifier(bundle),
            cors.AllowedOrigins.of(bundle.allowed_origins()),
            installs.InstallHasher(salt) if salt is not None else None,
        )


class Endpoint:
    """Answers requests from the bundle currently set; swapping ``bundle`` is atomic.

    Setting ``bundle`` prepares its keys (:class:`~keyops.endpoint.claims.Verifier`) and its CORS
    origins before the swap, so requests never see a bundle without them and never import a key.

    Each accepted token's ``jti`` is remembered by ``replay`` (per process: Lambda execution
    environments do not share it) and refused a second time; ``emf``, when given (the Lambda),
    writes one CloudWatch metric line per answer.
    """

    def __init__(
        self,
        bundle: Bundle | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        replay: ReplayCache | None = None,
        emf: EmfLog | None = None,
    ) -> None:
        self._loaded: _Loaded | None = None
        self.bundle = bundle
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.replay = replay or ReplayCache()
        self.emf = emf

    @property
    def bundle(self) -> Bundle | None:
        loaded = self._loaded
        return loaded.verifier.bundle if loaded is not None else None

    @bundle.setter
    def bundle(self, bundle: Bundle | None) -> None:
        self._loaded = _Loaded.of(bundle) if bundle is not None else None

    def origins(self) -> cors.AllowedOrigins:
        """The CORS origins of the bundle set (expired or not: a page may read the 503 too)."""
        loaded = self._loaded
        return loaded.origins if loaded is not None else cors.NO_ORIGINS

    def handle(self, request: Request) -> Response:
        """Answer ``request``; CORS headers are added here, so every adapter behaves alike."""
        origin = request.headers.get("origin")
        allowed = self.origins()
        preflight = cors.preflight(request.method, request.path, origin, allowed)
        if preflight is not None:
            return Response(preflight.status, b"", "", dict(preflight.headers))
        try:
            response = self.route(request)
        except Exception as exc:  # the last resort: a bug must still answer problem+json
            path = request.path if request.path in ROUTES else "an unknown path"
            log_unexpected(f"answering {path}", exc)
            try:
                self.metrics.count_response(500, "internal-error")
            except Exception:  # noqa: S110 - counting must not turn a 500 into a raise
                pass
            response = problem(internal_error())
        if origin is not None and allowed:
            response.headers = cors.with_cors(response.headers, origin, allowed)
        return response

    def route(self, request: Request) -> Response:
        allowed = ROUTES.get(request.path)
        if allowed is None:
            return problem(ServiceError(404, "not-found", "No such resource"))
        if request.method.upper() not in allowed:
            response = problem(ServiceError(405, "method-not-allowed", "Method not allowed"))
            response.headers["allow"] = ", ".join(allowed)
            return response
        now = self.clock()
        if request.path == HEALTH_PATH:
            return self.health(now)
        if request.path == METRICS_PATH:
            text = self.metrics.render(self.bundle, now)
            return Response(200, text.encode(), METRICS_TYPE, {"cache-control": NO_STORE})
        return self.credentials(request.headers.get("authorization"), now)

    def current(self, now: float) -> _Loaded | None:
        """What the bundle set prepared, read once per request (a swap may happen meanwhile);
        None when there is none or it expired."""
        loaded = self._loaded
        if loaded is None or loaded.verifier.bundle.expired(now):
            return None
        return loaded

    def health(self, now: float) -> Response:
        loaded = self.current(now)
        if loaded is None:
            return problem(not_ready())
        bundle = loaded.verifier.bundle
        body = {
            "status": "ok",
            "stack": bundle.stack,
            "bundle_version": bundle.bundle_version,
            "expires_in": int(bundle.exp - now),
        }
        return Response(
            200, json.dumps(body).encode(), "application/json", {"cache-control": NO_STORE}
        )

    def credentials(self, authorization: str | None, now: float) -> Response:
        try:
            response = self._serve(authorization, now)
        except ServiceError as error:
            self.metrics.count_response(error.status, error.code)
            if self.emf is not None:
                self.emf.error(error.status, error.code)
            return problem(error)
        self.metrics.count_response(200, "ok")
        return response

    def _serve(self, authorization: str | None, now: float) -> Response:
        loaded = self.current(now)
        if loaded is None:
            raise not_ready()
        claims = loaded.verifier.verify(authorization, now)
        self.replay.check(claims.client, claims.jti, now, claims.iat)
        bundle = loaded.verifier.bundle
        client = bundle.clients[claims.client]
        chosen = selection.select(client, claims.install_id, claims.app_version)
        if chosen is None:
            raise upgrade_required()
        try:
            body = jose.encrypt_ecdh_es_a256kw(chosen.jws.encode("ascii"), claims.epk)
        except ValueError:
            # epk passed the curve check; a failure here is a key OpenSSL still refuses.
            raise bad_request("epk cannot be used for ECDH-ES") from None
        held = installs.held_label(claims.held, client.credential_ids)
        self.metrics.count_served(claims.client, chosen.id, held)
        hasher = loaded.hasher
        digest = hasher(claims.install_id) if hasher is not None else None
        if digest is not None:
            self.metrics.count_install(claims.client, held, digest, now)
        if self.emf is not None:
            self.emf.served(claims.client, chosen.id, held, claims.install_id, digest)
        return Response(200, body.encode("ascii"), JOSE, {"cache-control": NO_STORE})
