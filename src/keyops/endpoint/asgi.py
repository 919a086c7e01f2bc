"""The Starlette adapter behind ``keyops serve``: every request goes to the framework-free core.

Uvicorn starts it through :func:`app_from_env` (a factory, so that ``--workers N`` can import it
in each worker process). Configuration comes from the environment ``keyops serve`` sets:

- ``KEYOPS_BUNDLE``: the bundle directory or file (required);
- ``KEYOPS_PINNED_JWKS``: a JWKS file the bundle must be signed by (optional);
- ``KEYOPS_PIN_FIXED``: non-empty to keep that pin; else each accepted bundle's keys take over;
- ``KEYOPS_POLL_SECONDS``: how often to look for a new bundle (default 1);
- ``KEYOPS_METRICS_DIR``: where workers share counters (optional, set with several workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from keyops.endpoint.core import Endpoint
from keyops.endpoint.metrics import Metrics
from keyops.endpoint.reload import BundleWatcher

log = logging.getLogger("keyops.serve")
DEFAULT_POLL_SECONDS = 1.0


def create_app(
    bundle_path: Path,
    *,
    jwks: dict[str, Any] | None = None,
    pin_fixed: bool = True,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    metrics_dir: Path | None = None,
) -> Starlette:
    endpoint = Endpoint(metrics=Metrics(metrics_dir))
    watcher = BundleWatcher(bundle_path, endpoint, jwks=jwks, fixed=pin_fixed)
    watcher.check()

    async def poll() -> None:
        while True:
            await asyncio.sleep(poll_seconds)
            try:
                watcher.check()
                endpoint.metrics.flush()
            except Exception:  # the watcher must outlive any surprise; the core keeps serving
                log.exception("bundle watcher failed; retrying")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(poll())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            endpoint.metrics.flush()

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        # Mounted at "/" so that every method and path reaches the core, which owns 404/405.
        request = Request(scope, receive)
        answer = endpoint.handle(
            request.method, request.url.path, request.headers.get("authorization")
        )
        await Response(answer.body, answer.status, headers=answer.all_headers())(
            scope, receive, send
        )

    app = Starlette(routes=[Mount("/", app=handle)], lifespan=lifespan)
    app.state.endpoint = endpoint
    app.state.watcher = watcher
    return app


def configure_logging() -> None:
    """keyops log lines on stderr (uvicorn configures only its own loggers)."""
    logger = logging.getLogger("keyops")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def app_from_env() -> Starlette:
    configure_logging()
    bundle = os.environ.get("KEYOPS_BUNDLE")
    if not bundle:
        raise RuntimeError("KEYOPS_BUNDLE is not set; start the server with keyops serve")
    pinned = os.environ.get("KEYOPS_PINNED_JWKS")
    metrics_dir = os.environ.get("KEYOPS_METRICS_DIR")
    return create_app(
        Path(bundle),
        jwks=json.loads(Path(pinned).read_text()) if pinned else None,
        pin_fixed=bool(os.environ.get("KEYOPS_PIN_FIXED")),
        poll_seconds=float(os.environ.get("KEYOPS_POLL_SECONDS") or DEFAULT_POLL_SECONDS),
        metrics_dir=Path(metrics_dir) if metrics_dir else None,
    )
