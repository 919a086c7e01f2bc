"""The HTTP/1.1 server behind ``keyops serve``: asyncio (uvloop when installed) and llhttp.

The endpoint answers three GET routes with small bodies and never reads a request body, so a
general web framework is all cost: measured on the serving benchmark (bench/), an ASGI server
spent more time per request than the whole credential exchange's cryptography. Here llhttp (the
``httptools`` binding, Node's parser) splits the stream, and each complete request is answered
synchronously by :meth:`Endpoint.handle` from the parser's callback.

What a client can hold is bounded, per worker process (the defaults are :class:`Limits`):

- the request head (request line and headers) is at most 16 KiB: past that the answer is 431
  ``headers-too-large`` and the connection closes; no more than one read past the limit is
  ever buffered;
- a connection must send a complete head within 10 s of opening (or of its previous answer),
  and one idle for 5 s after an answer is closed;
- at most ``limit_concurrency`` connections are open: a new one beyond that closes the one that
  has waited longest since its last answer, so an idle crowd can never lock out ``/healthz``;
- a request that announces a body, an upgrade or a malformed head is answered 400
  ``bad-request`` and the connection closes; a client that stops reading its answers (more
  than 1 MiB unsent) is disconnected.

Configuration comes from the environment ``keyops serve`` sets (``KEYOPS_BUNDLE``,
``KEYOPS_PINNED_JWKS``, ``KEYOPS_PIN_FIXED``, ``KEYOPS_POLL_SECONDS``, ``KEYOPS_METRICS_DIR``), so
that worker processes started with ``python -m keyops.endpoint.server`` read the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import json
import logging
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httptools

from keyops.core.errors import ServiceError
from keyops.core.text import printable
from keyops.endpoint.claims import bad_request
from keyops.endpoint.core import (
    Endpoint,
    Request,
    Response,
    internal_error,
    log_unexpected,
    problem,
)
from keyops.endpoint.metrics import Metrics
from keyops.endpoint.reload import BundleWatcher

log = logging.getLogger("keyops.serve")
DEFAULT_POLL_SECONDS = 1.0
#: Unsent answer bytes past which a client that does not read is disconnected.
MAX_WRITE_BUFFER = 1024 * 1024
BACKLOG = 2048
CRLF = "\r\n"
#: How often deadlines are checked (see Shared.sweep).
SWEEP_SECONDS = 0.25
#: File descriptors kept beyond the connection limit (listening socket, bundle, logs, threads).
SPARE_FDS = 64


@dataclass(frozen=True)
class Limits:
    max_head_bytes: int = 16 * 1024
    head_timeout: float = 10.0
    keep_alive: float = 5.0
    limit_concurrency: int = 1000
    access_log: bool = False


def too_large() -> ServiceError:
    return ServiceError(431, "headers-too-large", "Request headers are larger than 16 KiB")


def configure_logging() -> None:
    """keyops log lines on stderr."""
    logger = logging.getLogger("keyops")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


class _Clock:
    """The ``Date`` header, formatted once per second (apps correct their clock with it)."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def date(self) -> bytes:
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            self._value = email.utils.formatdate(now, usegmt=True).encode("ascii")
        return self._value


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")


_STATUS_LINES = {s: _status_line(s) for s in (200, 204, 400, 401, 404, 405, 426, 431, 500, 503)}


def encode_response(response: Response, date: bytes, *, head: bool, close: bool) -> bytes:
    status = _STATUS_LINES.get(response.status) or _status_line(response.status)
    fields = "".join(f"{name}: {value}\r\n" for name, value in response.headers.items())
    # A 204 preflight answer has no body and no content type.
    kind = f"content-type: {response.content_type}\r\n" if response.content_type else ""
    text = (
        f"{kind}{fields}"
        f"content-length: {len(response.body)}\r\n{'connection: close' + CRLF if close else ''}"
        "\r\n"
    )
    body = b"" if head else response.body
    return b"".join((status, b"date: ", date, b"\r\n", text.encode("latin-1"), body))


class Shared:
    """What every connection of one worker shares: the endpoint, the limits, the open set."""

    def __init__(self, endpoint: Endpoint, limits: Limits) -> None:
        self.endpoint = endpoint
        self.limits = limits
        self.clock = _Clock()
        #: Open connections, the one waiting longest since its last answer first.
        self.connections: dict[Connection, None] = {}

    def admit(self, connection: Connection) -> None:
        while len(self.connections) >= self.limits.limit_concurrency:
            oldest = next(iter(self.connections))
            oldest.close()
        self.connections[connection] = None

    def answered(self, connection: Connection) -> None:
        # Move to the back of the eviction order.
        self.connections.pop(connection, None)
        self.connections[connection] = None

    async def sweep(self) -> None:
        """Close every connection past its deadline, several times a second.

        One sweep instead of a timer per connection: arming and cancelling timers on every
        request cost more than the rest of the HTTP layer. A deadline is enforced at most one
        sweep interval late.
        """
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            for connection in [c for c in self.connections if c.deadline <= now]:
                connection.close()


class Connection(asyncio.Protocol):
    """One client connection: parse, answer each request in order, enforce the limits."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.limits = shared.limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        #: When the connection must have made progress (monotonic seconds); see Shared.sweep.
        self.deadline = math.inf
        self.waiting_since = 0.0
        self.head_bytes = 0
        self.head_done = False
        self.head_size = 0
        self.url = b""
        self.headers: dict[str, str] = {}
        self.has_body = False
        self.closing = False

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports do not derive from asyncio.Transport but have its methods.
        self.transport = transport  # type: ignore[assignment]
        self.shared.admit(self)
        self._wait_for_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.shared.connections.pop(self, None)
        self.closing = True

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.head_done = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            # A bug in a callback (the core itself never raises): answered like the core's.
            log_unexpected("answering a request", exc.__context__ or exc)
            self._refuse(internal_error())
            return
        except httptools.HttpParserUpgrade:
            if not self.closing:
                self._refuse(bad_request("upgrades are not supported"))
            return
        except httptools.HttpParserError:
            if not self.closing:  # a refusal inside a callback already answered
                self._refuse(bad_request("not HTTP/1.1"))
            return
        # A complete head is measured by the callbacks; here, count what was fed while no head
        # completed, so that a head that never ends is refused once it passes the limit,
        # holding at most one read beyond it.
        self.head_bytes = 0 if self.head_done else self.head_bytes + len(data)
        if not self.closing and self.head_bytes > self.limits.max_head_bytes:
            self._refuse(too_large())

    def pause_writing(self) -> None:
        pass  # answers are small; a client that stops reading is cut off at MAX_WRITE_BUFFER

    def resume_writing(self) -> None:
        pass

    # -- llhttp callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.closing:
            return
        self.url = b""
        self.headers = {}
        self.has_body = False
        self.head_size = 0
        # The rest of the head must arrive within the head timeout of the wait's start.
        self.deadline = self.waiting_since + self.limits.head_timeout

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"
        if key == "transfer-encoding" or (key == "content-length" and text.strip() != "0"):
            self.has_body = True

    def on_headers_complete(self) -> None:
        self.head_done = True
        self.head_bytes = 0
        self.deadline = math.inf
        if self.head_size > self.limits.max_head_bytes:
            self._refuse(too_large())
        elif self.parser.should_upgrade():
            self._refuse(bad_request("upgrades are not supported"))

    def on_message_complete(self) -> None:
        if self.closing or self.transport is None:
            return
        if self.has_body:
            self._refuse(bad_request("a request body is not accepted"))
            return
        method = self.parser.get_method().decode("ascii", "replace")
        path = self.url.partition(b"?")[0].decode("latin-1")
        response = self.shared.endpoint.handle(Request(method, path, self.headers))
        keep_alive = self.parser.should_keep_alive()
        self.transport.write(
            encode_response(
                response, self.shared.clock.date(), head=method == "HEAD", close=not keep_alive
            )
        )
        if self.limits.access_log:
            # One line per request: "METHOD PATH" STATUS. The path is the client's: printed
            # without control characters or quotes, and bounded.
            shown = printable(path, 200).replace('"', "%22")
            log.info('"%s %s" %d', method, shown, response.status)
        if not keep_alive:
            self.close()
        elif self.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.transport.abort()
            self.closing = True
        else:
            self.shared.answered(self)
            self._wait_for_request()

    # -- helpers ----------------------------------------------------------------------------
    def _wait_for_request(self) -> None:
        self.waiting_since = time.monotonic()
        self.deadline = self.waiting_since + min(self.limits.keep_alive, self.limits.head_timeout)

    def _refuse(self, error: ServiceError) -> None:
        if self.transport is not None and not self.closing:
            answer = problem(error)
            date = self.shared.clock.date()
            self.transport.write(encode_response(answer, date, head=False, close=True))
        self.close()

    def close(self) -> None:
        self.closing = True
        self.shared.connections.pop(self, None)
        if self.transport is not None:
            self.transport.close()


# -- one worker ------------------------------------------------------------------------------------


def endpoint_from_env() -> tuple[Endpoint, BundleWatcher, float]:
    bundle = os.environ.get("KEYOPS_BUNDLE")
    if not bundle:
        raise RuntimeError("KEYOPS_BUNDLE is not set; start the server with keyops serve")
    pinned = os.environ.get("KEYOPS_PINNED_JWKS")
    metrics_dir = os.environ.get("KEYOPS_METRICS_DIR")
    endpoint = Endpoint(metrics=Metrics(Path(metrics_dir) if metrics_dir else None))
    watcher = BundleWatcher(
        Path(bundle),
        endpoint,
        jwks=json.loads(Path(pinned).read_text()) if pinned else None,
        fixed=bool(os.environ.get("KEYOPS_PIN_FIXED")),
    )
    poll = float(os.environ.get("KEYOPS_POLL_SECONDS") or DEFAULT_POLL_SECONDS)
    return endpoint, watcher, poll


async def watch(watcher: BundleWatcher, endpoint: Endpoint, poll: float) -> None:
    """Check the bundle and share the counters every ``poll`` seconds, off the event loop.

    Reading and verifying a bundle blocks (file system, signatures), so it runs in a thread;
    nothing that goes wrong there stops the watch.
    """
    while True:
        await asyncio.sleep(poll)
        try:
            await asyncio.to_thread(watcher.check)
            await asyncio.to_thread(endpoint.metrics.flush)
        except Exception as exc:
            log_unexpected("the bundle watcher", exc)


def raise_fd_limit(connections: int) -> int:
    """Make room for ``connections`` sockets; returns the connection limit that fits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + SPARE_FDS
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < want:
        fitting = max(1, soft - SPARE_FDS)
        log.warning(
            "only %d file descriptors are allowed: at most %d connections per worker",
            soft,
            fitting,
        )
        return fitting
    return connections


async def serve_socket(sock: socket.socket, limits: Limits) -> None:
    """Serve on a listening socket until SIGINT or SIGTERM."""
    endpoint, watcher, poll = endpoint_from_env()
    await asyncio.to_thread(watcher.check)
    limits = Limits(
        max_head_bytes=limits.max_head_bytes,
        head_timeout=limits.head_timeout,
        keep_alive=limits.keep_alive,
        limit_concurrency=raise_fd_limit(limits.limit_concurrency),
        access_log=limits.access_log,
    )
    shared = Shared(endpoint, limits)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = await loop.create_server(lambda: Connection(shared), sock=sock)
    watching = asyncio.create_task(watch(watcher, endpoint, poll))
    sweeping = asyncio.create_task(shared.sweep())
    try:
        await stop.wait()
    finally:
        server.close()
        for connection in list(shared.connections):
            connection.close()
        for task in (watching, sweeping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        endpoint.metrics.flush()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # the plain asyncio loop works, only slower
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


# -- processes -------------------------------------------------------------------------------------


def bind(host: str, port: int, *, workers: int = 1, listen: bool = True) -> socket.socket:
    """A TCP socket bound to ``host:port``, listening unless ``listen`` is false.

    With several workers each one listens on a socket of its own with ``SO_REUSEPORT``, so the
    kernel spreads new connections over them; a single shared socket let whichever worker woke
    first accept a whole burst, leaving the other idle.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if workers > 1:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def listener(host: str, port: int, workers: int) -> socket.socket:
    """The socket ``keyops serve`` holds: binding first makes a port in use an error (OSError)
    before anything starts. With several workers it stays bound but does not listen (it receives
    no connection): the workers listen on sockets of their own."""
    return bind(host, port, workers=workers, listen=workers == 1)


def run(sock: socket.socket, workers: int, limits: Limits) -> None:
    """Serve on ``sock`` (from :func:`listener`) in this process, or in ``workers`` children.

    A child that dies is started again; SIGINT or SIGTERM stops them all.
    """
    if workers == 1:
        run_loop(serve_socket(sock, limits))
        return
    host, port = sock.getsockname()[:2]
    _supervise(host, port, workers, limits)


def _supervise(host: str, port: int, workers: int, limits: Limits) -> None:
    settings = json.dumps(dataclasses.asdict(limits))
    command = [sys.executable, "-m", "keyops.endpoint.server", host, str(port), str(workers)]
    command.append(settings)
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    children = [subprocess.Popen(command) for _ in range(workers)]
    try:
        while not stopping:
            time.sleep(1.0)  # also the pause before a restart: a crash loop stays slow
            for index, child in enumerate(children):
                if child.poll() is not None and not stopping:
                    log.warning(
                        "worker %d exited with %s; starting another", child.pid, child.returncode
                    )
                    children[index] = subprocess.Popen(command)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def worker_main(argv: list[str]) -> int:
    """A worker: ``python -m keyops.endpoint.server HOST PORT WORKERS SETTINGS_JSON``."""
    configure_logging()
    host, port, workers, settings = argv[0], int(argv[1]), int(argv[2]), json.loads(argv[3])
    with bind(host, port, workers=workers) as sock:
        run_loop(serve_socket(sock, Limits(**settings)))
    return 0


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
