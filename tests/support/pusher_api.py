"""A Pusher HTTP API on 127.0.0.1 whose answers a test scripts, for ``keyops verify``'s own tests.

It checks requests the way Pusher documents it: the app id in the path, ``auth_key`` looked up
among the key sets it holds (an app may hold several, as at Pusher), the timestamp, and the
signature, recomputed here from the query as received and compared with the official ``pusher``
library's ``signature.verify``. A valid request gets ``{"channels": {}}``; an invalid one a 401
with Pusher's kind of text. ``script`` replaces the answer for edge cases (5xx, slow, huge,
hostile), and ``seen`` records every request line and header for the leak checks. The end-to-end
tests use a real Pusher-protocol server (soketi) instead: see ``support.soketi``.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pusher.signature
import pytest

from support.repo import KeyRepo

#: A scripted answer: (status, body), or None for the normal one. It may sleep first.
Script = Callable[["Seen"], "tuple[int, bytes] | None"]


@dataclass(frozen=True)
class Seen:
    line: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class KeySet:
    app_id: str
    secret: str


@dataclass
class PusherApi:
    keys: dict[str, KeySet] = field(default_factory=dict)
    script: Script | None = None
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, seen: Seen) -> tuple[int, bytes]:
        if self.script is not None:
            scripted = self.script(seen)
            if scripted is not None:
                return scripted
        parts = seen.path.split("/")
        if len(parts) != 4 or parts[1] != "apps" or parts[3] != "channels":
            return 404, b"Not found"
        entry = self.keys.get(seen.query.get("auth_key", ""))
        if entry is None or entry.app_id != parts[2]:
            return 401, b"Unknown auth_key"
        if abs(int(seen.query.get("auth_timestamp", "0")) - time.time()) > 600:
            return 401, b"Timestamp expired"
        signed = {k: v for k, v in seen.query.items() if k != "auth_signature"}
        text = "\n".join(["GET", seen.path, "&".join(f"{k}={signed[k]}" for k in sorted(signed))])
        if not pusher.signature.verify(entry.secret, text, seen.query.get("auth_signature", "")):
            return 401, b"Invalid signature: you should have sent HmacSHA256Hex(...)"
        return 200, b'{"channels": {}}'


def _handler(api: PusherApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            seen = Seen(
                self.requestline,
                parts.path,
                dict(parse_qsl(parts.query)),
                {k: v for k, v in self.headers.items()},
            )
            with api.lock:
                api.seen.append(seen)
            try:
                status, body = api.answer(seen)
            except (BrokenPipeError, ConnectionResetError):
                return
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serving(api: PusherApi, tls: tuple[Path, Path] | None = None) -> Iterator[PusherApi]:
    """Serve ``api`` on a free loopback port (HTTPS with ``tls`` = (cert, key)) until exit."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    httpd.daemon_threads = True  # a scripted slow answer must not hold the teardown
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    api.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=30)


@pytest.fixture
def pusher_api() -> Iterator[PusherApi]:
    with serving(PusherApi()) as api:
        yield api


@dataclass(frozen=True)
class Cred:
    client: str
    id: str
    state: str
    app_id: str
    key: str
    secret: str


def stack_creds(repo: KeyRepo, stack: str = "dev") -> list[Cred]:
    """Every credential of the stack's client files, decrypted with real sops."""
    found: list[Cred] = []
    for path in sorted(repo.path(f"credentials/{stack}").glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        document = repo.decrypt(f"credentials/{stack}/{path.name}")
        for item in document["credentials"]:
            found.append(
                Cred(
                    document["client"],
                    item["id"],
                    item["state"],
                    document["pusher"]["app_id"],
                    item["key"],
                    item["secret"],
                )
            )
    return found


def hold(api: PusherApi, creds: list[Cred]) -> None:
    """The server accepts exactly these key sets (as the Pusher dashboard would list them)."""
    api.keys = {c.key: KeySet(c.app_id, c.secret) for c in creds}
