"""The standard-library transport against real HTTP servers on 127.0.0.1.

The attempt's deadline is checked by behaviour, never by the clock: a server that trickles its
answer sees the client hang up while it still had bytes to send, and a client that waited past
the deadline would instead have heard the server out (or hung up only when the server did).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from keyops.client.transport import MAX_BODY, Request, http_transport
from keyops.core.errors import TransportError
from support.client import document, loopback, serve_live, slow_headers
from support.fetch import run_fetch
from support.net import http_server


class Handler(BaseHTTPRequestHandler):
    release = threading.Event()
    #: Set when the client hung up on /trickle while the server still had bytes to send.
    abandoned = threading.Event()

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path == "/ok":
            body = self.headers.get("Authorization", "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/jose")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/trickle":
            # Headers at once, then a body that never completes: only a whole-attempt deadline
            # (not a per-read socket timeout) bounds this.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(100):
                    if self.release.wait(0.05):
                        return
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except OSError:  # the client hung up: a write reaches a closed connection
                self.abandoned.set()
        elif self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(MAX_BODY + 1))
            self.end_headers()
            self.wfile.write(b"y" * (MAX_BODY + 1))
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture
def server() -> Iterator[str]:
    Handler.release.clear()
    Handler.abandoned.clear()
    with http_server(Handler) as url:
        try:
            yield url
        finally:
            Handler.release.set()


def test_a_request_round_trips(server: str) -> None:
    response = http_transport(
        Request("GET", server + "/ok", {"Authorization": "Bearer t"}, timeout=5)
    )
    assert (response.status, response.body) == (200, b"Bearer t")
    assert response.header("content-type") == "application/jose"


def test_error_statuses_are_answers_not_exceptions(server: str) -> None:
    assert http_transport(Request("GET", server + "/nope", {}, timeout=5)).status == 404


def test_the_timeout_bounds_the_whole_body(server: str) -> None:
    with pytest.raises(TransportError) as info:
        http_transport(Request("GET", server + "/trickle", {}, timeout=0.3))
    assert str(info.value) == "timed out after 0.3 s"
    # The trickle lasts 5 s: the client hung up on it while it was still sending.
    assert Handler.abandoned.wait(timeout=30)


def test_the_timeout_bounds_the_headers_too() -> None:
    # One header byte a second, never a complete header block: each read returns in time, so
    # only a deadline over the whole exchange ends the attempt.
    # (A per-read timeout of 2 s never trips on a byte a second.)
    with slow_headers(interval=1.0, limit=30) as slow:
        with pytest.raises(TransportError) as info:
            http_transport(Request("GET", slow.url + "/v1/credentials", {}, timeout=2))
        assert slow.abandoned.wait(timeout=30)
    assert str(info.value) == "timed out after 2 s"


def test_fetch_leaves_a_slow_endpoint_at_the_deadline_and_the_next_one_serves(
    tmp_path: Path,
) -> None:
    with slow_headers(interval=1.0, limit=30) as slow, loopback(serve_live) as endpoint:
        (fast,) = endpoint.routes
        (tmp_path / "c.json").write_text(json.dumps(document([slow.url, fast])))
        # A real process, so that the generous timeout stops it even if the deadline fails.
        proc = run_fetch(
            tmp_path, "--config", "c.json", "--timeout", "2", "--rounds", "1", process=True
        )
        assert slow.abandoned.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == f"attempt failed: {slow.url}: unreachable (timed out after 2 s)\n"
    assert f"source         {fast}\n" in proc.stdout
    assert slow.connections == 1


def test_an_oversized_answer_is_refused(server: str) -> None:
    with pytest.raises(TransportError) as info:
        http_transport(Request("GET", server + "/huge", {}, timeout=5))
    assert str(info.value) == f"answer larger than {MAX_BODY} bytes"


def test_a_closed_port_is_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError) as info:
        http_transport(Request("GET", f"http://127.0.0.1:{port}/v1/credentials", {}, timeout=2))
    assert str(info.value) == "connection refused"
