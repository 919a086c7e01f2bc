"""Helpers for the client tests: a scripted endpoint behind the client's ``transport`` seam.

``FakeEndpoint`` is a test double of a protocol v1 server, used only for unit tests of the client
(the integration tests run the real ``keyops serve``). It checks each request's token the way
the protocol says (HS256 with the app_auth key, claims, epk) and answers with a payload signed
by a test ES256 key and encrypted to the request's ``epk`` with joserfc, so the client under test
does real decryption and real signature checks.

``Resend`` stands in front of any transport (the fake, or the real one to a real server) and
sends an earlier request's token again, as a proxy that retries or an eavesdropper would.

``loopback`` puts the same handlers behind real HTTP servers on 127.0.0.1, for tests of the real
transport and of ``keyops fetch``; ``slow_headers`` is a server that trickles its answer's
headers one byte at a time; the builders at the end make answers no honest server sends.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import os
import secrets
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from joserfc import jwe, jws, jwt
from joserfc.jwk import ECKey, OctKey

from keyops.client import config as client_config
from keyops.client.backoff import Backoff
from keyops.client.cache import Cache
from keyops.client.config import ClientConfig
from keyops.client.fetcher import Fetcher, Policy
from keyops.client.token import Identity
from keyops.client.transport import Request, Response, Transport
from keyops.core.errors import TransportError
from support.net import http_server

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
    """Route by base URL to a handler; verify every token first, as a protocol v1 server does:
    its signature, its ``iat`` (401 ``stale-token``), then its ``jti``, which each base URL
    accepts once (401 ``replayed-token``)."""

    routes: dict[str, Handler]
    seen: list[Seen] = field(default_factory=list)
    #: The server's clock; the tests' ``fetcher`` helper shares the client's unless set.
    clock: Callable[[], float] | None = None
    #: ``(base URL, jti)`` of every token accepted so far: each server remembers its own.
    accepted: set[tuple[str, str]] = field(default_factory=set)

    def __call__(self, request: Request) -> Response:
        # "/" too: http://127.0.0.1:4000 must not route http://127.0.0.1:40001's requests.
        base = next(b for b in self.routes if request.url.startswith(b + "/"))
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
        if (base, decoded.claims["jti"]) in self.accepted:
            return problem(401, "replayed-token", "The token was already used")
        self.accepted.add((base, decoded.claims["jti"]))
        return self.routes[base](request, dict(decoded.claims))

    def urls(self) -> list[str]:
        return [s.url for s in self.seen]


@dataclass
class Resend:
    """A transport in front of ``inner`` that puts the first request's token (its whole
    ``Authorization`` header) in the request numbered ``at`` (0 is the first), as a proxy that
    retries or someone who captured the request would: the server sees that token twice.

    ``sent`` holds the ``Authorization`` each request carried on the wire, and ``answers``
    what came back, in order."""

    inner: Transport
    at: int = 1
    sent: list[str] = field(default_factory=list)
    answers: list[Response] = field(default_factory=list)

    def __call__(self, request: Request) -> Response:
        headers = dict(request.headers)
        if len(self.sent) == self.at:
            headers["Authorization"] = self.sent[0]
        self.sent.append(headers["Authorization"])
        answer = self.inner(Request(request.method, request.url, headers, request.timeout))
        self.answers.append(answer)
        return answer

    def claims(self, n: int) -> dict[str, Any]:
        """The claims of the token request ``n`` carried (read, not verified)."""
        body = self.sent[n].removeprefix("Bearer ").split(".")[1]
        data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return data


IDENTITY = Identity("5.2.0", "install-0001")


def fetcher(
    endpoint: FakeEndpoint,
    clock: Clock | None = None,
    *,
    cache: Cache | None = None,
    rounds: int = 3,
    random: float = 0.5,
    identity: Identity = IDENTITY,
    transport: Transport | None = None,
    **config: Any,
) -> Fetcher:
    """A client of ``endpoint`` (through ``transport`` when given, a wrapper of it) on an
    injected clock; ``config`` goes to :func:`make_config`."""
    clock = clock or Clock()
    endpoint.clock = endpoint.clock or clock
    return Fetcher(
        make_config(**config),
        identity,
        cache=cache,
        transport=transport or endpoint,
        policy=Policy(attempt_timeout=2.5, max_rounds=rounds, round_backoff=Backoff(0.25, 4.0)),
        clock=clock,
        sleep=clock.sleep,
        random=lambda: random,
    )


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


# -- real servers on 127.0.0.1 -------------------------------------------------------------------
def live_payload(**overrides: Any) -> dict[str, Any]:
    """A payload valid on the real clock (for tests where the client uses ``time.time``)."""
    now = int(time.time())
    return payload(**{"iat": now - 3600, "exp": now + 30 * 86400, **overrides})


def serve_live(request: Request, claims: dict[str, Any]) -> Response:
    """The honest answer: a payload valid on the real clock, encrypted to this request."""
    return jose(encrypt_to(claims["epk"], sign(live_payload())))


class _Answering(BaseHTTPRequestHandler):
    """Hands each GET to a :class:`FakeEndpoint`; a TransportError hangs up without an answer."""

    endpoint: FakeEndpoint

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        request = Request("GET", base + self.path, dict(self.headers.items()))
        try:
            response = self.endpoint(request)
        except TransportError:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)


@contextlib.contextmanager
def loopback(*handlers: Handler) -> Iterator[FakeEndpoint]:
    """One real HTTP server on 127.0.0.1 per handler, in order; the endpoint's clock is real.

    ``list(endpoint.routes)`` are the servers' base URLs, for a config's ``endpoints``.
    """
    endpoint = FakeEndpoint({}, clock=time.time)
    answering = type("Answering", (_Answering,), {"endpoint": endpoint})
    with contextlib.ExitStack() as stack:
        for handler in handlers:
            endpoint.routes[stack.enter_context(http_server(answering))] = handler
        yield endpoint


@dataclass
class Trickle:
    url: str
    #: Set when a client closed its connection before the server had sent everything.
    abandoned: threading.Event = field(default_factory=threading.Event)
    connections: int = 0


@contextlib.contextmanager
def slow_headers(interval: float = 1.0, limit: int = 30) -> Iterator[Trickle]:
    """A server on 127.0.0.1 that sends a status line, then one header byte every ``interval``.

    It never finishes the headers: after ``limit`` bytes it hangs up by itself, so a client
    without a deadline over the whole exchange waits ``limit * interval`` seconds and the
    server never sees it leave (``abandoned`` stays unset).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    trickle = Trickle(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stopping = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(limit):
                    # The wait between bytes doubles as the watch for the client leaving.
                    readable, _, _ = select.select([conn], [], [], interval)
                    if (readable and not conn.recv(1)) or stopping.is_set():
                        break
                    conn.sendall(b"a")
                else:
                    return  # sent everything: the client stayed to the end
            except OSError:
                pass
            if not stopping.is_set():
                trickle.abandoned.set()

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            trickle.connections += 1
            conn.settimeout(None)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield trickle
    finally:
        stopping.set()
        thread.join(timeout=5)
        listener.close()


# -- answers no honest server sends ------------------------------------------------------------
def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def nested(depth: int) -> str:
    """A JSON array nested ``depth`` deep: valid JSON that a recursive parser cannot read."""
    return "[" * depth + "]" * depth


def jwe_by_hand(
    recipient: dict[str, Any],
    plaintext: str,
    *,
    ephemeral: ECKey | None = None,
    epk: dict[str, Any] | None = None,
) -> str:
    """A compact ECDH-ES+A256KW / A256GCM JWE built from cryptography's primitives.

    Unlike a JOSE library, it lets the test choose the ``epk`` member of the header (e.g. one
    carrying the private ``d``), and it is still a JWE that really opens with the recipient's key.
    """
    ephemeral = ephemeral or ECKey.generate_key("P-256", private=True)
    alg = b"ECDH-ES+A256KW"
    private = ephemeral.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    peer = ECKey.import_key(recipient).public_key
    assert isinstance(peer, ec.EllipticCurvePublicKey)
    shared = private.exchange(ec.ECDH(), peer)
    # RFC 7518 section 4.6.2: AlgorithmID, empty PartyUInfo and PartyVInfo, key length in bits.
    other = struct.pack(">I", len(alg)) + alg + struct.pack(">III", 0, 0, 256)
    kek = ConcatKDFHash(hashes.SHA256(), 32, other).derive(shared)
    cek = os.urandom(32)
    header = {
        "alg": alg.decode(),
        "enc": "A256GCM",
        "epk": epk if epk is not None else ephemeral.as_dict(private=False),
    }
    protected = b64(json.dumps(header))
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext.encode(), protected.encode("ascii"))
    parts = [protected, b64(aes_key_wrap(kek, cek)), b64(iv), b64(sealed[:-16]), b64(sealed[-16:])]
    return ".".join(parts)


def with_header(compact: str, header: dict[str, Any] | str) -> str:
    """``compact`` with its protected header replaced (a dict is JSON-encoded, text taken as is)."""
    text = header if isinstance(header, str) else json.dumps(header)
    return ".".join([b64(text), *compact.split(".")[1:]])


def header_of(compact: str) -> dict[str, Any]:
    head = compact.split(".")[0]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return data
