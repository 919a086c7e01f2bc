"""keyops.pusher.api: the official libraries' request signing, and how an answer is judged."""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qsl, urlsplit

import pusher
import pusher.pusher_client
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyops.pusher import api

KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"


def official_request(app_id: str, key: str, secret: str, prefix: str) -> tuple[str, dict[str, str]]:
    """What the official ``pusher`` library would send for GET /apps/{id}/channels."""
    client = pusher.pusher_client.PusherClient(app_id=app_id, key=key, secret=secret, cluster="eu")
    # make_request builds (and signs) the request the library would send, without sending it.
    request = client.channels_info.make_request(prefix_filter=prefix)
    return request.path, dict(request.query_params)


@settings(max_examples=80, deadline=None)
@given(
    app_id=st.integers(1, 10**12 - 1).map(str),
    key=st.binary(min_size=10, max_size=10).map(bytes.hex),
    secret=st.binary(min_size=10, max_size=10).map(bytes.hex),
)
def test_the_signed_channels_request_is_the_official_librarys(
    app_id: str, key: str, secret: str
) -> None:
    path, official = official_request(app_id, key, secret, api.VERIFY_PREFIX)
    mine = api.channels_request(
        app_id, key=key, secret=secret, timestamp=int(official["auth_timestamp"])
    )
    parts = urlsplit(mine)
    assert parts.path == path == f"/apps/{app_id}/channels"
    assert dict(parse_qsl(parts.query, strict_parsing=True)) == official
    # The query is sent exactly as it was signed: sorted, nothing percent-encoded.
    assert "%" not in parts.query
    assert [name for name, _ in parse_qsl(parts.query)] == sorted(official)


def test_the_string_to_sign_and_the_signature() -> None:
    params = {"auth_key": KEY, "auth_timestamp": "1353088179", "auth_version": "1.0"}
    text = api.string_to_sign("GET", "/apps/3/channels", params)
    assert text == (
        "GET\n/apps/3/channels\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179"
        "&auth_version=1.0"
    )
    assert api.signature(SECRET, text) == pusher.signature.sign(SECRET, text)


def test_the_secret_never_reaches_the_request() -> None:
    for _ in range(20):
        secret = secrets.token_hex(10)
        request = api.channels_request("1874221", key=KEY, secret=secret, timestamp=1700000000)
        assert secret not in request
        assert f"auth_key={KEY}" in request


@pytest.mark.parametrize(
    ("params", "app_id"),
    [({"filter_by_prefix": "a b"}, "1"), ({"x&y": "1"}, "1"), ({}, "12a"), ({}, "")],
)
def test_values_that_would_need_encoding_are_refused(params: dict[str, str], app_id: str) -> None:
    with pytest.raises(ValueError):
        if app_id == "1":
            api.signed_params("GET", "/p", params, key=KEY, secret=SECRET, timestamp=1)
        else:
            api.channels_request(app_id, key=KEY, secret=SECRET, timestamp=1)


@pytest.mark.parametrize(
    ("status", "body", "word", "detail"),
    [
        (200, b'{"channels": {}}', "live", "HTTP 200, channels listed"),
        (200, b'{"channels": {"keyops-verify-x": {}}}', "live", "HTTP 200, channels listed"),
        # soketi: errors with status 200 and the code in the body
        (
            200,
            b'{"error": "The secret authentication failed", "code": 401}',
            "rejected",
            "HTTP 200, error 401: The secret authentication failed",
        ),
        (401, b"Invalid signature: you should have sent ...\nmore", "rejected",
         "HTTP 401: Invalid signature: you should have sent ..."),
        (403, b"", "rejected", "HTTP 403"),
        (404, b'{"error": "The app 1 could not be found.", "code": 404}', "rejected",
         "HTTP 404, error 404: The app 1 could not be found."),
        (200, b'{"channels": {}, "error": "no"}', "rejected", "HTTP 200, error: no"),
        (429, b"slow down", "unreachable", "HTTP 429, rate limited: slow down"),
        (503, b'{"error": "down"}', "unreachable",
         "HTTP 503, a server error says nothing of the key: down"),
        (301, b"", "unreachable", "HTTP 301, a redirect (not followed): check the API URL"),
        (200, b"<html>captive portal</html>", "unreachable",
         "HTTP 200, not a Pusher API answer (no channels list)"),
        (200, b'{"channels": []}', "unreachable",
         "HTTP 200, not a Pusher API answer (no channels list)"),
        (200, b"[1, 2]", "unreachable", "HTTP 200, not a Pusher API answer (no channels list)"),
        (204, b"", "unreachable", "HTTP 204, not a Pusher API answer (no channels list)"),
    ],
)  # fmt: skip
def test_answers_are_judged(status: int, body: bytes, word: str, detail: str) -> None:
    assert api.judge(status, body) == api.Answer(word, detail)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser's recursion limit
        b'{"channels": {}, "x": ' + b"9" * 50_000 + b"}",  # a number past int's digit limit
        b"\xff\xfe\x00not utf-8",
        json.dumps({"error": ["not", "text"], "code": "401"}).encode(),
        json.dumps({"error": True, "code": True}).encode(),
    ],
)
def test_hostile_bodies_are_judged_without_an_exception(body: bytes) -> None:
    answer = api.judge(200, body)
    assert answer.word in ("rejected", "unreachable")
    assert answer.detail.startswith("HTTP 200")


def test_a_servers_words_are_printable_and_bounded() -> None:
    body = json.dumps({"error": "bad\x1b[31m" + "x" * 500, "code": 401}).encode()
    answer = api.judge(401, body)
    assert answer.detail == "HTTP 401, error 401: bad?[31m" + "x" * (api.MESSAGE_LIMIT - 8)
