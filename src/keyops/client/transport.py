"""The HTTP seam of the client: one request in, one response out.

A transport is any callable ``(Request) -> Response`` that raises :class:`TransportError` when no
HTTP answer arrived (refused, reset, DNS, timeout). Tests pass a function that answers from
memory, the way httpx's ``MockTransport`` does; the app (and ``keyops fetch``) uses
:func:`http_transport`, built on the standard library only so the reference client stays easy
to port and cheap to import.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from keyops.core.errors import TransportError

#: Larger answers are refused: a v1 credential response is about 1.5 KB.
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    #: Seconds the whole attempt may take: connect, send, and read the full body.
    timeout: float = 3.0


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


Transport = Callable[[Request], Response]


def http_transport(request: Request) -> Response:
    """Send ``request`` with http.client, enforcing its timeout over the whole exchange.

    A socket timeout alone bounds each read, so a server that trickles one byte a second (of
    the headers or of the body) could hold an attempt forever. Here one deadline covers it all:
    the connection and TLS handshake get the time left, and every read of the answer, from the
    status line to the last byte, first sets the socket timeout to the time left (or gives up).
    Name resolution is the one step the standard library cannot bound.
    """
    deadline = time.monotonic() + request.timeout
    parts = urlsplit(request.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(f"unsupported URL {request.url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: http.client.HTTPConnection | None = None
    resp: http.client.HTTPResponse | None = None
    try:
        conn = _connect(parts.scheme, parts.hostname, parts.port, deadline)
        conn.request(request.method, path, headers=request.headers)
        resp = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while chunk := resp.read1(16 * 1024):
            size += len(chunk)
            if size > MAX_BODY:
                raise TransportError(f"answer larger than {MAX_BODY} bytes")
            chunks.append(chunk)
        return Response(resp.status, dict(resp.getheaders()), b"".join(chunks))
    except TimeoutError:
        raise TransportError(f"timed out after {request.timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise TransportError(_describe(exc)) from None
    except ValueError:  # e.g. a host name IDNA cannot encode, or a header http.client refuses
        raise TransportError("the request could not be sent (invalid URL or header)") from None
    except TransportError:
        raise
    except Exception as exc:  # whatever else a malformed answer makes http.client raise
        raise TransportError(f"malformed HTTP answer ({type(exc).__name__})") from None
    finally:
        # Close both: once the server said "Connection: close", the socket lives on in the
        # response, and the server must see the client leave now, not when it is collected.
        if resp is not None:
            resp.close()
        if conn is not None:
            conn.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _connect(
    scheme: str, host: str, port: int | None, deadline: float
) -> http.client.HTTPConnection:
    """A connection whose socket is connected (and TLS set up) within the deadline."""
    https = scheme == "https"
    port = port or (443 if https else 80)
    sock = socket.create_connection((host, port), timeout=_left(deadline))
    conn: http.client.HTTPConnection
    try:
        if https:
            context = ssl.create_default_context()
            sock.settimeout(_left(deadline))  # the handshake, as a whole, gets the time left
            sock = context.wrap_socket(sock, server_hostname=host)
            conn = http.client.HTTPSConnection(host, port, context=context)
        else:
            conn = http.client.HTTPConnection(host, port)
        sock.settimeout(_left(deadline))  # sendall, like the handshake, counts from here
    except BaseException:
        sock.close()
        raise
    conn.sock = sock  # already connected: http.client uses it instead of connecting again
    conn.response_class = _response_class(deadline)
    return conn


class _DeadlineReader(io.RawIOBase):
    """The answer's bytes, each read allowed only the time left before the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        # Like http.client's own reader, it holds a reference that keeps the socket open
        # after the connection object lets go of it (an answer with "Connection: close").
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._sock.settimeout(_left(self._deadline))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _response_class(deadline: float) -> type[http.client.HTTPResponse]:
    class DeadlineResponse(http.client.HTTPResponse):
        def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
            super().__init__(sock, *args, **kwargs)
            self.fp.close()  # the plain reader, replaced before a single byte is read
            self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))

    return DeadlineResponse


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return "host name not resolved"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or 'handshake failed'})"
    if isinstance(exc, http.client.HTTPException):
        return f"malformed HTTP answer ({type(exc).__name__})"
    reason = exc.strerror if isinstance(exc, OSError) else None
    return f"network error ({reason or type(exc).__name__})"
