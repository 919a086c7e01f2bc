"""The standard-library transport against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from keyops.client.transport import MAX_BODY, Request, http_transport
from keyops.core.errors import TransportError


class Handler(BaseHTTPRequestHandler):
    release = threading.Event()

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
            for _ in range(100):
                if self.release.wait(0.05):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
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
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        Handler.release.set()
        httpd.shutdown()
        httpd.server_close()


def test_a_request_round_trips(server: str) -> None:
    response = http_transport(
        Request("GET", server + "/ok", {"Authorization": "Bearer t"}, timeout=5)
    )
    assert (response.status, response.body) == (200, b"Bearer t")
    assert response.header("content-type") == "application/jose"


def test_error_statuses_are_answers_not_exceptions(server: str) -> None:
    assert http_transport(Request("GET", server + "/nope", {}, timeout=5)).status == 404


def test_the_timeout_bounds_the_whole_attempt(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        http_transport(Request("GET", server + "/trickle", {}, timeout=0.3))
    assert str(info.value) == "timed out after 0.3 s"
    # Not a timing assertion on speed: the trickle would last 5 s; the deadline must cut it.
    assert time.monotonic() - started < 4.5


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
