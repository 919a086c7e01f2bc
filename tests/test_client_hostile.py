"""Answers the reference client cannot use, from real HTTP servers on 127.0.0.1.

Whatever an endpoint sends, an answer the client cannot use is one failed attempt: ``keyops
fetch`` names it on stderr and goes on to the next endpoint, then to the cache, then to the
bundled key (docs/client.md, section 4). No parser may let an exception escape, so no answer can
end a fetch in a traceback or in keyops' "unexpected error".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from keyops.client import cache as caches
from keyops.client.cache import FORMAT, Cache
from keyops.client.transport import Request, Response
from keyops.core.errors import NothingUsable
from support.client import (
    SIGNER,
    A,
    B,
    FakeEndpoint,
    Handler,
    b64,
    document,
    down,
    encrypt_to,
    fetcher,
    header_of,
    jose,
    jwe_by_hand,
    live_payload,
    loopback,
    nested,
    payload,
    problem,
    serve_live,
    serve_signed,
    sign,
    with_header,
)
from support.fetch import run_fetch

#: Deep enough for any recursive parser, small enough for the 64 KiB answer limit.
DEEP = 30_000
#: A JWS inside a JWE is base64url-encoded twice (4/3 x 4/3), hence less deep.
DEEP_HEADER = 12_000
INSTALL = ("--install-id", "install-0001")


def answering(make: Callable[[dict[str, Any]], str]) -> Handler:
    """A 200 application/jose answer whose body ``make`` builds from the request's epk."""
    return lambda request, claims: jose(make(claims["epk"]))


def _deep_problem(request: Request, claims: dict[str, Any]) -> Response:
    body = '{"type":"about:blank","status":400,"code":' + nested(DEEP) + "}"
    return Response(400, {"Content-Type": "application/problem+json"}, body.encode())


def _deep_problem_503(request: Request, claims: dict[str, Any]) -> Response:
    return Response(503, {"Content-Type": "application/problem+json"}, nested(DEEP).encode())


def _stale_token_from_year_huge(request: Request, claims: dict[str, Any]) -> Response:
    date = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"
    return problem(401, "stale-token", "clock", {"Date": date})


def _deep_jwe_header(epk: dict[str, Any]) -> str:
    return ".".join([b64(nested(DEEP_HEADER)), "a", "b", "c", "d"])


def _deep_member_in_jwe_header(epk: dict[str, Any]) -> str:
    answer = encrypt_to(epk, sign(live_payload()))
    text = '{"alg":"ECDH-ES+A256KW","enc":"A256GCM","x":' + nested(DEEP_HEADER) + "}"
    return with_header(answer, text)


def _deep_jws_header(epk: dict[str, Any]) -> str:
    signed = ".".join([b64(nested(DEEP_HEADER)), b64(json.dumps(live_payload())), b64(b"x" * 64)])
    return encrypt_to(epk, signed)


def _deep_payload(epk: dict[str, Any]) -> str:
    signed = jws.serialize_compact(
        {"alg": "ES256", "kid": "dev-sign-a"},
        nested(DEEP_HEADER).encode(),
        SIGNER,
        algorithms=["ES256"],
    )
    return encrypt_to(epk, signed)


def _epk_with_d(epk: dict[str, Any]) -> str:
    # A JWE that really opens with the request's key, but whose header discloses the sender's
    # ephemeral private key: no honest server sends it, and a JOSE library may accept it.
    ephemeral = ECKey.generate_key("P-256", private=True)
    private_jwk = dict(ephemeral.as_dict(private=True))
    return jwe_by_hand(epk, sign(live_payload()), ephemeral=ephemeral, epk=private_jwk)


def _epk_off_the_curve(epk: dict[str, Any]) -> str:
    answer = encrypt_to(epk, sign(live_payload()))
    header = header_of(answer)
    header["epk"]["y"] = header["epk"]["x"]  # (x, x) is not a point of P-256
    return with_header(answer, header)


def _epk_a_string(epk: dict[str, Any]) -> str:
    answer = encrypt_to(epk, sign(live_payload()))
    return with_header(answer, {**header_of(answer), "epk": "x"})


def _epk_of_another_curve(epk: dict[str, Any]) -> str:
    answer = encrypt_to(epk, sign(live_payload()))
    other = ECKey.generate_key("P-384", private=False).as_dict(private=False)
    return with_header(answer, {**header_of(answer), "epk": dict(other)})


def _kid_a_list(epk: dict[str, Any]) -> str:
    head = b64(json.dumps({"alg": "ES256", "kid": ["dev-sign-a"]}))
    return encrypt_to(epk, ".".join([head, b64(json.dumps(live_payload())), b64(b"x" * 64)]))


def _payload_numbers_huge(epk: dict[str, Any]) -> str:
    text = json.dumps(live_payload()).replace('"bundle_version": 17', '"bundle_version": 1e400')
    signed = jws.serialize_compact(
        {"alg": "ES256", "kid": "dev-sign-a"}, text.encode(), SIGNER, algorithms=["ES256"]
    )
    return encrypt_to(epk, signed)


JWE_EPK = "the JWE header's epk is not a P-256 public key"
#: (name, the hostile endpoint's handler, the attempt line keyops fetch prints for it)
HOSTILE: list[tuple[str, Handler, str]] = [
    ("a problem body nested 30,000 deep", _deep_problem, "http-400 (HTTP 400)"),
    ("a 503 whose body is nested 30,000 deep", _deep_problem_503, "http-503 (HTTP 503)"),
    (
        "a stale-token Date no calendar holds",
        _stale_token_from_year_huge,
        "http-401:stale-token (HTTP 401 stale-token: clock)",
    ),
    (
        "a JWE header nested 12,000 deep",
        answering(_deep_jwe_header),
        "verify:not-jwe (the JWE header is not base64url JSON)",
    ),
    (
        "a JWE header with a member nested 12,000 deep",
        answering(_deep_member_in_jwe_header),
        "verify:not-jwe (the JWE header is not base64url JSON)",
    ),
    (
        "a JWS header nested 12,000 deep",
        answering(_deep_jws_header),
        "verify:not-jws (the JWS header is not base64url JSON)",
    ),
    (
        "a signed payload nested 12,000 deep",
        answering(_deep_payload),
        "verify:bad-payload (the signed payload is not JSON)",
    ),
    (
        "a signed payload with a number too large for a float",
        answering(_payload_numbers_huge),
        "verify:bad-payload (the payload's 'bundle_version' is not a non-negative integer)",
    ),
    (
        "an epk holding its private key",
        answering(_epk_with_d),
        "verify:not-jwe (the JWE header's epk holds a private key ('d'))",
    ),
    ("an epk off the curve", answering(_epk_off_the_curve), f"verify:not-jwe ({JWE_EPK})"),
    ("an epk that is a string", answering(_epk_a_string), f"verify:not-jwe ({JWE_EPK})"),
    ("an epk on P-384", answering(_epk_of_another_curve), f"verify:not-jwe ({JWE_EPK})"),
    (
        "a JWS kid that is a list",
        answering(_kid_a_list),
        "verify:unknown-kid (the payload is signed by ['dev-sign-a'], not a pinned key)",
    ),
]


def config_file(tmp_path: Path, endpoints: list[str], **kw: Any) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document(endpoints, **kw)))
    return path.name


@pytest.mark.parametrize(
    ("handler", "line"), [(h, line) for _, h, line in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_an_unusable_answer_is_one_failed_attempt_and_the_next_endpoint_serves(
    tmp_path: Path, handler: Handler, line: str
) -> None:
    with loopback(handler, serve_live) as endpoint:
        hostile, good = endpoint.routes
        config = config_file(tmp_path, [hostile, good])
        proc = run_fetch(tmp_path, "--config", config, "--rounds", "1", *INSTALL)
    assert proc.stderr == f"attempt failed: {hostile}: {line}\n"
    assert proc.returncode == 0
    assert f"source         {good}\n" in proc.stdout


def test_after_unusable_answers_the_cache_serves(tmp_path: Path) -> None:
    hostile = answering(_epk_with_d)
    with loopback(serve_live) as endpoint:
        config = config_file(tmp_path, list(endpoint.routes))
        first = run_fetch(tmp_path, "--config", config, "--cache", "cache.json", *INSTALL)
    assert first.returncode == 0, first.stderr
    with loopback(hostile, hostile) as endpoint:
        a, b = endpoint.routes
        config = config_file(tmp_path, [a, b])
        proc = run_fetch(
            tmp_path, "--config", config, "--cache", "cache.json", "--refresh", *INSTALL
        )
    assert proc.returncode == 0
    assert "source         cache (every endpoint failed)\n" in proc.stdout
    line = "verify:not-jwe (the JWE header's epk holds a private key ('d'))"
    assert proc.stderr == f"attempt failed: {a}: {line}\nattempt failed: {b}: {line}\n"


def test_without_a_cache_the_bundled_key_serves(tmp_path: Path) -> None:
    bundled = {"credential_id": "ios-2026-05", "key": "00112233445566778899", "cluster": "eu"}
    with loopback(answering(_deep_jwe_header)) as endpoint:
        (a,) = endpoint.routes
        config = config_file(tmp_path, [a], bundled=bundled)
        proc = run_fetch(tmp_path, "--config", config, *INSTALL)
    assert proc.returncode == 0
    assert "source         bundled (every endpoint failed)\n" in proc.stdout
    assert proc.stderr == (
        f"attempt failed: {a}: verify:not-jwe (the JWE header is not base64url JSON)\n"
    )


def test_with_nothing_else_the_fetch_fails_cleanly(tmp_path: Path) -> None:
    with loopback(_deep_problem, answering(_deep_jws_header)) as endpoint:
        a, b = endpoint.routes
        config = config_file(tmp_path, [a, b])
        proc = run_fetch(tmp_path, "--config", config, *INSTALL)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        f"attempt failed: {a}: http-400 (HTTP 400)\n"
        f"attempt failed: {b}: verify:not-jws (the JWS header is not base64url JSON)\n"
        "error: no usable Pusher key: every endpoint failed, and there is no cached or bundled "
        "key. See the attempts above; check the network and the endpoints' /healthz.\n"
    )


# -- the cache --------------------------------------------------------------------------------
def _good_cache(path: Path) -> dict[str, Any]:
    fetcher(FakeEndpoint({A: serve_signed(sign(payload()))}), cache=Cache(path)).get()
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _member(name: str, literal: str) -> Callable[[dict[str, Any]], str]:
    """The good cache document with one member's value written as ``literal`` (raw JSON)."""

    def make(doc: dict[str, Any]) -> str:
        return json.dumps({**doc, name: "@@"}).replace('"@@"', literal)

    return make


def _signed_deep(doc: dict[str, Any]) -> str:
    _head, body, sig = doc["signed"].split(".")
    return json.dumps({**doc, "signed": f"{b64(nested(DEEP_HEADER))}.{body}.{sig}"})


HW = "'high_water' is not a non-negative integer"
FA = "'fetched_at' is not a finite number"
UNREADABLE_CACHES: list[tuple[str, Callable[[dict[str, Any]], str], str]] = [
    ("nested 30,000 deep", lambda doc: nested(DEEP), "not JSON (nested too deeply)"),
    ("high_water 1e400", _member("high_water", "1e400"), HW),
    ("high_water a string", _member("high_water", '"17"'), HW),
    ("high_water true", _member("high_water", "true"), HW),
    ("high_water 17.5", _member("high_water", "17.5"), HW),
    ("high_water negative", _member("high_water", "-1"), HW),
    (
        "high_water with 5,000 digits",
        _member("high_water", "1" * 5000),
        "not JSON (a number longer than 4300 digits)",
    ),
    ("fetched_at a string", _member("fetched_at", '"now"'), FA),
    ("fetched_at 1e400", _member("fetched_at", "1e400"), FA),
    ("fetched_at with 400 digits", _member("fetched_at", "9" * 400), FA),
    ("fetched_at true", _member("fetched_at", "true"), FA),
    ("fetched_at NaN", _member("fetched_at", "NaN"), "not JSON (NaN)"),
    ("stack a list", _member("stack", '["dev"]'), "'stack' is not a string"),
    ("client null", _member("client", "null"), "'client' is not a string"),
    ("signed a number", _member("signed", "1"), "'signed' is not a string"),
    ("source an object", _member("source", "{}"), "'source' is not a string"),
    ("a list", lambda doc: json.dumps([doc]), "not a JSON object"),
    ("another format", _member("format", '"other/1"'), f"'format' is not {FORMAT!r}"),
    ("not JSON", lambda doc: "{not json", "not JSON (Expecting property name"),
]


@pytest.mark.parametrize(
    ("make", "why"),
    [(m, w) for _, m, w in UNREADABLE_CACHES],
    ids=[n for n, _, _ in UNREADABLE_CACHES],
)
def test_a_cache_that_cannot_be_parsed_is_ignored_with_a_note(
    tmp_path: Path, make: Callable[[dict[str, Any]], str], why: str
) -> None:
    path = tmp_path / "c.json"
    path.write_text(make(_good_cache(path)))
    client = fetcher(
        FakeEndpoint({A: serve_signed(sign(payload(bundle_version=3)))}), cache=Cache(path)
    )
    result = client.get()
    assert result.source == A  # nothing was taken from the cache: not even its watermark
    (note,) = result.notes
    assert note.startswith(f"ignoring the cache {path}: {why}")
    assert json.loads(path.read_text())["high_water"] == 3  # replaced by the new fetch


def test_a_cached_jws_with_a_deep_header_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(_signed_deep(_good_cache(path)))
    with pytest.raises(NothingUsable) as info:
        fetcher(FakeEndpoint({A: down(), B: down()}), cache=Cache(path), rounds=1).get()
    assert info.value.notes == (
        "the cached payload is not usable: the JWS header is not base64url JSON",
    )


def test_a_cache_that_is_not_a_regular_file_is_ignored_without_blocking(tmp_path: Path) -> None:
    # Reading a FIFO would wait for a writer forever: the fetch must not even open it blocking.
    os.mkfifo(tmp_path / "cache.json")
    with loopback(serve_live) as endpoint:
        config = config_file(tmp_path, list(endpoint.routes))
        proc = run_fetch(
            tmp_path, "--config", config, "--cache", "cache.json", *INSTALL, process=True
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "note: ignoring the cache cache.json: not a regular file\n"


def test_an_oversized_cache_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    limit = caches.MAX_CACHE_BYTES
    path.write_bytes(b" " * (limit + 1))
    cache = Cache(path)
    assert cache.load() is None
    assert cache.problem == f"ignoring the cache {path}: larger than {limit} bytes"
