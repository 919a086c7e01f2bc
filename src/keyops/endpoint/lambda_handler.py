"""AWS Lambda adapter: API Gateway HTTP API (payload format 2.0) → the framework-free core.

The bundle ships inside the function's asset ("static stability": no data store on the read
path). It is read once per execution environment, at the first invocation:

- ``KEYOPS_BUNDLE``: the bundle directory or file (default ``$LAMBDA_TASK_ROOT/bundle``);
- ``KEYOPS_PINNED_JWKS``: optional JWKS JSON text the bundle must be signed by.

A missing, invalid or expired bundle answers 503 ``not-ready`` (so Route 53 fails the region
over) and is retried on the next invocation. Per-instance counters mean little on Lambda, so
each successful answer also logs one JSON line ``{"keyops":"served",client,credential,held}``
for CloudWatch metric filters; it never contains a token, key or secret.

Importing this module loads joserfc and keyops' small modules only: no pulumi, no boto3.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from keyops.core.errors import BundleError
from keyops.endpoint.core import Endpoint, Response, not_ready, problem
from keyops.endpoint.metrics import Metrics
from keyops.protocol.bundle import Bundle

_endpoint: Endpoint | None = None


class _LoggingMetrics(Metrics):
    def count_served(self, client: str, credential: str, held: str) -> None:
        super().count_served(client, credential, held)
        line = {"keyops": "served", "client": client, "credential": credential, "held": held}
        print(json.dumps(line), flush=True)


def _bundle_path() -> Path:
    explicit = os.environ.get("KEYOPS_BUNDLE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("LAMBDA_TASK_ROOT", ".")) / "bundle"


def _load() -> Endpoint | None:
    global _endpoint
    if _endpoint is None:
        pinned = os.environ.get("KEYOPS_PINNED_JWKS")
        try:
            bundle = Bundle.load(_bundle_path(), jwks=json.loads(pinned) if pinned else None)
        except (BundleError, ValueError) as exc:
            print(json.dumps({"keyops": "not-ready", "reason": str(exc)}), flush=True)
            return None
        _endpoint = Endpoint(bundle, metrics=_LoggingMetrics())
    return _endpoint


def _header(event: dict[str, Any], name: str) -> str | None:
    headers = event.get("headers") or {}
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def _to_event(response: Response) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": response.all_headers(),
        "body": response.body.decode("utf-8"),
        "isBase64Encoded": False,
    }


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point (``keyops.endpoint.lambda_handler.handler``)."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or "GET")
    path = str(event.get("rawPath") or http.get("path") or "/")
    endpoint = _load()
    if endpoint is None:
        return _to_event(problem(not_ready()))
    return _to_event(endpoint.handle(method, path, _header(event, "authorization")))


def reset() -> None:
    """Forget the loaded bundle (tests; a new execution environment does this naturally)."""
    global _endpoint
    _endpoint = None
