"""The HTTP seam of the client: one request in, one response out.

A transport is any callable ``(Request) -> Response`` that raises :class:`TransportError` when no
HTTP answer arrived (refused, reset, DNS, timeout). Tests pass a function that answers from
memory, the way httpx's ``MockTransport`` does; the app (and ``keyops fetch``) uses
:func:`http_transport`, built on the standard library only so the reference client stays easy
to port and cheap to import.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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

    A socket timeout alone bounds each read, so a server that trickles one byte a second could
    hold an attempt forever; the deadline is re-applied before every read instead.
    """
    deadline = time.monotonic() + request.timeout
    parts = urlsplit(request.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(f"unsupported URL {request.url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname,
            parts.port,
            timeout=request.timeout,
            context=ssl.create_default_context(),
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=request.timeout)
    try:
        conn.request(request.method, path, headers=request.headers)
        _remaining(conn, deadline)
        resp = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            _remaining(conn, deadline)
            chunk = resp.read1(16 * 1024)
            if not chunk:
                break
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
    finally:
        conn.close()


def _remaining(conn: http.client.HTTPConnection, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    if conn.sock is not None:
        conn.sock.settimeout(left)


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
