"""The Pusher Channels HTTP API: signing a request, and judging the answer to ``keyops verify``.

A request is signed as the official server libraries sign it. The query carries ``auth_key``,
``auth_timestamp`` (Unix seconds), ``auth_version=1.0`` and ``body_md5`` (the hex MD5 of the body,
empty for a GET, as the official Python library sends it). ``auth_signature`` is the hex
HMAC-SHA256, keyed with the secret, of ``"METHOD\\nPATH\\nQUERY"``, where QUERY is every other
parameter as ``name=value``, sorted by name and joined with ``&``. The signature travels in the
query; the secret never leaves this process.

Only values that need no percent-encoding are accepted. The string that is signed is then
byte for byte the string that is sent, so no server can read it differently.

:func:`judge` turns an answer into one of three words:

- ``live``: a 200 whose JSON body is an object with a ``channels`` object (and no ``error``);
- ``rejected``: a refusal (4xx other than 429), or a JSON body carrying an ``error``. Some
  Pusher-protocol servers answer errors with status 200 and the real code in the body;
- ``unreachable``: anything else (5xx, 429, a redirect, a body that is not the API's). Such an
  answer says nothing about the key, so it never counts as a rejection: a deleted key must be
  *refused* before keyops reports it gone.

Nothing here does I/O: the caller sends the request and hands the answer back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from keyops.core.text import printable

AUTH_VERSION = "1.0"
#: Unreserved URI characters only (RFC 3986): what is signed is exactly what is sent.
_PLAIN = re.compile(r"\A[A-Za-z0-9._~-]*\Z")
_APP_ID = re.compile(r"\A[0-9]{1,12}\Z")
#: ``keyops verify`` lists only channels with this prefix, so the answer stays a few bytes
#: however busy the app is, and no channel name of the app is ever read.
VERIFY_PREFIX = "keyops-verify-"
#: How much of a server's error message is kept for the report.
MESSAGE_LIMIT = 160

Word = Literal["live", "rejected", "unreachable"]


def string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    """``METHOD\\nPATH\\nname=value&...`` with the parameters sorted by name."""
    query = "&".join(f"{name}={params[name]}" for name in sorted(params))
    return f"{method}\n{path}\n{query}"


def signature(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def signed_params(
    method: str,
    path: str,
    params: Mapping[str, str],
    *,
    key: str,
    secret: str,
    timestamp: int,
    body: bytes = b"",
) -> dict[str, str]:
    """``params`` plus ``body_md5`` and the four ``auth_*`` parameters, sorted by name.

    Raises ValueError for a name or value that would need percent-encoding (keys and secrets
    come from validated files: this guards the request's own parameters).
    """
    query = {
        **params,
        "auth_key": key,
        "auth_timestamp": str(int(timestamp)),
        "auth_version": AUTH_VERSION,
        # MD5 is the protocol's body checksum, not a security measure: the HMAC is.
        "body_md5": hashlib.md5(body, usedforsecurity=False).hexdigest(),
    }
    for name, value in query.items():
        if not (_PLAIN.match(name) and _PLAIN.match(value)):
            raise ValueError(f"query parameter {name!r} needs encoding; refusing to sign it")
    query["auth_signature"] = signature(secret, string_to_sign(method, path, query))
    return {name: query[name] for name in sorted(query)}


def channels_request(app_id: str, *, key: str, secret: str, timestamp: int) -> str:
    """The path and query of the read-only ``GET /apps/{app_id}/channels`` that verify sends."""
    if not _APP_ID.match(app_id):
        raise ValueError("a Pusher app id is 1 to 12 digits")
    path = f"/apps/{app_id}/channels"
    query = signed_params(
        "GET",
        path,
        {"filter_by_prefix": VERIFY_PREFIX},
        key=key,
        secret=secret,
        timestamp=timestamp,
    )
    return path + "?" + "&".join(f"{name}={value}" for name, value in query.items())


@dataclass(frozen=True)
class Answer:
    word: Word
    #: Why, in a few words: the status and the server's own message where it gave one.
    detail: str


def _body(body: bytes) -> object:
    """The JSON body, or None when it is not JSON (or too deep or odd to parse)."""
    try:
        parsed: object = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return parsed


def _message(body: object, raw: bytes) -> str:
    """The server's error message: the JSON ``error``, else the first line of a text body."""
    if isinstance(body, dict):
        error = body.get("error")
        text = error if isinstance(error, str) else ""
    elif body is None:
        text = raw[: MESSAGE_LIMIT * 4].decode("utf-8", "replace").strip().split("\n", 1)[0]
    else:
        text = ""
    return printable(text.strip(), MESSAGE_LIMIT)


def judge(status: int, body: bytes) -> Answer:
    """What an HTTP answer to :func:`channels_request` says about the credential."""
    parsed = _body(body)
    message = _message(parsed, body)
    said = f": {message}" if message else ""
    if isinstance(parsed, dict) and "error" in parsed and status < 500:
        code = parsed.get("code")
        shown = f" {code}" if isinstance(code, int) and not isinstance(code, bool) else ""
        return Answer("rejected", f"HTTP {status}, error{shown}{said}")
    if 400 <= status < 500 and status != 429:
        return Answer("rejected", f"HTTP {status}{said}")
    if status == 200 and isinstance(parsed, dict) and isinstance(parsed.get("channels"), dict):
        return Answer("live", "HTTP 200, channels listed")
    if status == 429:
        return Answer("unreachable", f"HTTP 429, rate limited{said}")
    if status >= 500:
        return Answer("unreachable", f"HTTP {status}, a server error says nothing of the key{said}")
    if 300 <= status < 400:
        return Answer("unreachable", f"HTTP {status}, a redirect (not followed): check the API URL")
    return Answer("unreachable", f"HTTP {status}, not a Pusher API answer (no channels list)")
