"""AWS Lambda adapter: API Gateway HTTP API (payload format 2.0) → the framework-free core.

The bundle ships inside the function's asset ("static stability": no data store on the read
path). It is read once per execution environment, at the first invocation:

- ``KEYOPS_BUNDLE``: the bundle directory or file (default ``$LAMBDA_TASK_ROOT/bundle``);
- ``KEYOPS_PINNED_JWKS``: optional JWKS JSON text the bundle must be signed by.

A missing, invalid or expired bundle answers 503 ``not-ready`` (so Route 53 fails the region
over) and is retried on the next invocation. Per-instance counters mean little on Lambda, so
each successful answer also logs one JSON line ``{"keyops":"served",client,credential,held}``
for CloudWatch metric filters; it never contains a token, key or secret.

:func:`handler` never raises: a malformed event is answered 400 ``bad-request`` and a bug 500
``internal-error``, both problem+json. Importing this module loads ``cryptography``'s EC, AES
and HMAC parts and keyops' small modules only: no JOSE library, no pulumi, no boto3.
"""

from __future__ import annotations

import json
import os
from typing import Any

from keyops.core import safejson
from keyops.core.errors import BundleError, ServiceError
from keyops.endpoint.core import (
    Endpoint,
    Request,
    Response,
    internal_error,
    log_unexpected,
    not_ready,
    problem,
)
from keyops.endpoint.emf import EmfLog
from keyops.endpoint.metrics import Metrics
from keyops.protocol.bundle import Bundle

_endpoint: Endpoint | None = None


def _bundle_path() -> str:
    explicit = os.environ.get("KEYOPS_BUNDLE")
    if explicit:
        return explicit
    return os.path.join(os.environ.get("LAMBDA_TASK_ROOT", "."), "bundle")


def _not_ready(reason: str) -> None:
    print(json.dumps({"keyops": "not-ready", "reason": reason}), flush=True)


def _load() -> Endpoint | None:
    global _endpoint
    if _endpoint is None:
        pinned = os.environ.get("KEYOPS_PINNED_JWKS")
        try:
            jwks = safejson.parse(pinned) if pinned else None
            if jwks is not None and not isinstance(jwks, dict):
                raise ValueError("KEYOPS_PINNED_JWKS is not a JSON object")
            bundle = Bundle.load(_bundle_path(), jwks=jwks)
        except BundleError as exc:
            _not_ready(str(exc))
            return None
        except ValueError as exc:
            _not_ready(f"KEYOPS_PINNED_JWKS is not a JWKS: {exc}")
            return None
        except Exception as exc:  # a bug while loading: not ready either, so Route 53 fails over
            log_unexpected("loading the bundle", exc)
            _not_ready(f"unexpected {type(exc).__name__} while loading the bundle")
            return None
        # Per-instance counters mean little on Lambda: every answer also writes one CloudWatch
        # EMF line (namespace keyops), which CloudWatch sums over instances and regions.
        _endpoint = Endpoint(
            bundle, metrics=Metrics(), emf=EmfLog(bundle.stack, bundle.install_salt)
        )
    return _endpoint


def _request(event: Any) -> Request:
    """The core's request from an HTTP API event; a malformed event is a 400."""
    if not isinstance(event, dict):
        raise ServiceError(400, "bad-request", "Malformed request: not an HTTP API event")
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    http = http if isinstance(http, dict) else {}
    method = http.get("method")
    path = event.get("rawPath") or http.get("path") or "/"
    headers: dict[str, str] = {}
    raw = event.get("headers")
    if isinstance(raw, dict):
        for name, value in raw.items():
            if isinstance(name, str) and isinstance(value, str):
                headers[name.lower()] = value
    return Request(
        method if isinstance(method, str) else "GET",
        path if isinstance(path, str) else "/",
        headers,
    )


def _to_event(response: Response) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": response.all_headers(),
        "body": response.body.decode("utf-8"),
        "isBase64Encoded": False,
    }


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """The Lambda entry point (``keyops.endpoint.lambda_handler.handler``)."""
    try:
        request = _request(event)
        endpoint = _load()
        if endpoint is None:
            return _to_event(problem(not_ready()))
        return _to_event(endpoint.handle(request))
    except ServiceError as error:
        return _to_event(problem(error))
    except Exception as exc:  # the last resort: Lambda would answer a bare 502 otherwise
        log_unexpected("the Lambda handler", exc)
        return _to_event(problem(internal_error()))


def reset() -> None:
    """Forget the loaded bundle (tests; a new execution environment does this naturally)."""
    global _endpoint
    _endpoint = None
