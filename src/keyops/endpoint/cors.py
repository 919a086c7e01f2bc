"""CORS: which web pages a browser lets call the endpoint, and the headers that say so.

A browser sends ``Authorization`` only after a preflight (``OPTIONS``) that the endpoint answers
for the page's origin, and lets the page read an answer (and its ``Date`` header, which the
client needs to recover from ``stale-token``) only when the answer names that origin. The
origins come from the ``allowed_origins`` of the stack's served web clients, through the signed
bundle, so ``keyops serve`` and the Lambda handler answer alike and API Gateway configures
nothing of its own.

A preflight carries no token, so an origin is allowed when ANY served client of the stack lists
it. CORS is not authentication: a request from an origin that is not allowed is answered as
before, only without CORS headers (a browser then hides the answer from the page).

The entries of ``allowed_origins`` (docs/protocol.md, "Web pages (CORS)"):

- an exact origin as browsers write it in the ``Origin`` header: ``https://host`` or
  ``https://host:port``, lowercase, no path, no trailing ``/``, no default port (``:443``);
- in a dev stack only, ``http://`` for a loopback host (``localhost``, ``127.0.0.1``, ``[::1]``),
  with an exact port or the port wildcard ``:*``. ``http://localhost:*`` matches
  ``http://localhost`` (port 80, which browsers leave out) and ``http://localhost:N`` for every
  N from 1 to 65535 written in decimal without leading zeros; never another host or scheme;
- never ``*``, ``null``, a wildcard in the host, or a port wildcard on anything else.

``entry_problem`` checks an entry for the policy rule; :class:`AllowedOrigins` matches a request's
``Origin``; :func:`preflight` and :func:`response_headers` give the headers. Pure functions over
strings: no framework, no I/O, so the Lambda asset ships this module as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

#: The one path a web page calls with a token, hence the one path that answers preflights.
PREFLIGHT_PATH = "/v1/credentials"
#: Seconds a browser may reuse a preflight answer. Chromium caps it at 7200 and Firefox at
#: 86400; a removed origin still stops at once, because every answer re-checks the origin.
MAX_AGE_SECONDS = 7200
ALLOW_METHODS = "GET"
ALLOW_HEADERS = "Authorization"
EXPOSE_HEADERS = "Date"
PREFLIGHT_STATUS = 204

ANY_PORT = "*"
#: Hosts whose ``http://`` origins a dev stack may list (the developer's own machine).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_PORTS = {"https": 443, "http": 80}
#: An entry longer than this is refused: a real origin is well under it (253 for the host).
MAX_ENTRY_LENGTH = 300

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
_EXAMPLE = "https://app.example.com"


def entry_problem(entry: object, *, dev: bool) -> str | None:
    """What is wrong with one ``allowed_origins`` entry, or None when it is valid.

    ``dev`` is True for a dev stack, where ``http://`` loopback origins and ``:*`` are allowed.
    The message quotes the entry (an origin is not a secret) and says how to write it.
    """
    if not isinstance(entry, str):
        return f"must be a string such as {_EXAMPLE!r}"
    problem = _syntax_problem(entry)
    if problem is not None:
        return f"{entry[:MAX_ENTRY_LENGTH]!r} {problem}"
    scheme, _, hostport = entry.partition("://")
    if scheme == "https":
        return None
    if not dev:
        return (
            f"{entry!r}: http:// origins are allowed only in a dev stack (test_stacks in "
            "policies/keyops.yaml); a deployed page must use https://"
        )
    if _split_port(hostport)[0] not in LOOPBACK_HOSTS:
        return (
            f"{entry!r}: http:// is allowed only for localhost, 127.0.0.1 and [::1] (pages on "
            "the developer's machine); use https://"
        )
    return None


def _syntax_problem(entry: str) -> str | None:
    """The problem of an entry whatever its stack, or None (it is a valid entry somewhere)."""
    if len(entry) > MAX_ENTRY_LENGTH:
        return f"is longer than {MAX_ENTRY_LENGTH} characters; an origin is scheme://host[:port]"
    if entry == "*":
        return (
            "would let every web page call the endpoint from a browser; list each origin "
            f"exactly, e.g. {_EXAMPLE!r}"
        )
    if entry == "null":
        return "is the origin of sandboxed and file:// pages, which cannot be told apart; remove it"
    scheme, sep, rest = entry.partition("://")
    if not sep:
        return f"is not an origin: write scheme://host[:port], e.g. {_EXAMPLE!r}"
    if scheme.lower() != scheme:
        return f"must be lowercase, as browsers send it: {entry.lower()!r}"
    if scheme not in DEFAULT_PORTS:
        return f"has the scheme {scheme!r}; use https:// (or http:// for localhost in a dev stack)"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        fix = f"{scheme}://{authority.rsplit('@', 1)[1]}"
        return f"has a user name, which an origin never has: write {fix!r}"
    for mark, what in (("/", "a path"), ("?", "a query"), ("#", "a fragment")):
        if rest.startswith(authority + mark):
            return f"has {what}, which an origin never has: write {f'{scheme}://{authority}'!r}"
    host, port = _split_port(rest)
    if host.lower() != host:
        return f"must be lowercase, as browsers send it: {entry.lower()!r}"
    problem = _host_problem(host)
    if problem is not None:
        return problem
    if port is None:
        return None
    if port == ANY_PORT:
        if scheme != "http" or host not in LOOPBACK_HOSTS:
            return (
                "uses the port wildcard ':*', which only http://localhost:* (or 127.0.0.1, "
                "[::1]) may use, in a dev stack; list each origin with its port"
            )
        return None
    if _PORT.fullmatch(port) is None or int(port) > 65535:
        return f"has the port {port!r}; a port is a number from 1 to 65535 without leading zeros"
    if int(port) == DEFAULT_PORTS[scheme]:
        return (
            f"names the default port :{port}, which browsers leave out of the Origin header, "
            f"so it would never match: write {f'{scheme}://{host}'!r}"
        )
    return None


def _split_port(hostport: str) -> tuple[str, str | None]:
    """``host`` and ``port`` (None when absent); an IPv6 literal keeps its brackets."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end != -1 and hostport[end + 1 :].startswith(":"):
            return hostport[: end + 1], hostport[end + 2 :]
        return hostport, None
    host, sep, port = hostport.rpartition(":")
    return (host, port) if sep else (hostport, None)


def _host_problem(host: str) -> str | None:
    if not host:
        return "has no host"
    if "*" in host:
        return "has a wildcard in the host; list each origin exactly"
    if host.startswith("["):
        if host == "[::1]":
            return None
        return "is an IPv6 literal; only [::1] is supported, use a host name"
    if not host.isascii():
        return "has a non-ASCII host; write it in punycode (xn--...), as browsers send it"
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "has an invalid host name (letters, digits and '-' in dot-separated labels)"
    return None


def redundant(entries: Iterable[str]) -> list[tuple[int, str]]:
    """``(index, message)`` for each entry listed twice or covered by a port wildcard.

    An exact loopback origin is covered by its host's ``:*`` entry, wherever that appears.
    """
    listed = list(entries)
    wildcards = {e[: -len(":*")] for e in listed if e.endswith(":*")}
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    for index, entry in enumerate(listed):
        if entry in seen:
            out.append((index, f"{entry!r} is listed twice; remove one"))
        elif not entry.endswith(":*") and _covered(entry, frozenset(wildcards)):
            base = _split_port(entry.partition("://")[2])[0]
            out.append((index, f"{entry!r} is already allowed by 'http://{base}:*'; remove it"))
        seen.add(entry)
    return out


def _covered(origin: str, any_port: frozenset[str]) -> bool:
    """Whether ``origin`` is matched by the port wildcard of one of ``any_port``'s bases.

    Only as browsers write an origin: the default port left out, any other port in decimal
    without leading zeros (so ``:80``, ``:080`` or ``:0`` never match).
    """
    if origin in any_port:
        return True  # the default port, which browsers leave out
    base, sep, port = origin.rpartition(":")
    if not sep or base not in any_port or _PORT.fullmatch(port) is None:
        return False
    return int(port) <= 65535 and int(port) != DEFAULT_PORTS[base.partition(":")[0]]


class AllowedOrigins:
    """The compiled ``allowed_origins`` of a stack's served clients; matches ``Origin`` headers.

    Entries that are not valid anywhere (``*``, ``null``, paths, wildcards in hosts…) are
    dropped, so a bundle can never make the endpoint allow them, whatever it holds.
    (A plain class, not a dataclass: the Lambda's cold start imports nothing it can avoid.)
    """

    __slots__ = ("any_port", "exact")

    def __init__(
        self, exact: frozenset[str] = frozenset(), any_port: frozenset[str] = frozenset()
    ) -> None:
        self.exact = exact
        #: ``scheme://host`` of each ``scheme://host:*`` entry.
        self.any_port = any_port

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AllowedOrigins):
            return NotImplemented
        return (self.exact, self.any_port) == (other.exact, other.any_port)

    def __hash__(self) -> int:
        return hash((self.exact, self.any_port))

    def __repr__(self) -> str:
        return f"AllowedOrigins(exact={set(self.exact)!r}, any_port={set(self.any_port)!r})"

    @classmethod
    def of(cls, entries: Iterable[object]) -> AllowedOrigins:
        exact: set[str] = set()
        any_port: set[str] = set()
        for entry in entries:
            if not isinstance(entry, str) or _syntax_problem(entry) is not None:
                continue
            if entry.endswith(":" + ANY_PORT):
                any_port.add(entry[: -len(":" + ANY_PORT)])
            else:
                exact.add(entry)
        return cls(frozenset(exact), frozenset(any_port))

    def allows(self, origin: str | None) -> bool:
        """Whether a request's ``Origin`` header value is allowed (None: no header)."""
        if not origin:
            return False
        return origin in self.exact or _covered(origin, self.any_port)

    def __bool__(self) -> bool:
        return bool(self.exact or self.any_port)


NO_ORIGINS = AllowedOrigins()


class Preflight(NamedTuple):
    """The answer to a preflight: a status with these headers and an empty body."""

    status: int
    headers: Mapping[str, str]


def preflight(
    method: str, path: str, origin: str | None, allowed: AllowedOrigins
) -> Preflight | None:
    """The answer to ``OPTIONS /v1/credentials`` from an allowed origin; None for any other.

    None means: answer the request as usual (an ``OPTIONS`` from an origin that is not allowed
    gets the usual 405, without CORS headers, and the browser refuses the call).
    """
    if method.upper() != "OPTIONS" or path != PREFLIGHT_PATH or not allowed.allows(origin):
        return None
    assert origin is not None  # allows() is False without one
    return Preflight(
        PREFLIGHT_STATUS,
        {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": ALLOW_METHODS,
            "access-control-allow-headers": ALLOW_HEADERS,
            "access-control-max-age": str(MAX_AGE_SECONDS),
            "vary": "Origin",
        },
    )


def response_headers(origin: str | None, allowed: AllowedOrigins) -> dict[str, str]:
    """The headers to add to any other answer (errors included); empty for other origins."""
    if not allowed.allows(origin):
        return {}
    assert origin is not None
    return {
        "access-control-allow-origin": origin,
        "access-control-expose-headers": EXPOSE_HEADERS,
        "vary": "Origin",
    }


def with_cors(
    headers: Mapping[str, str], origin: str | None, allowed: AllowedOrigins
) -> dict[str, str]:
    """``headers`` (lowercase names) plus :func:`response_headers`, merging any ``vary``."""
    merged = dict(headers)
    for name, value in response_headers(origin, allowed).items():
        if name == "vary" and merged.get("vary"):
            present = {v.strip().lower() for v in merged["vary"].split(",")}
            if value.lower() not in present:
                merged["vary"] = f"{merged['vary']}, {value}"
        else:
            merged[name] = value
    return merged
