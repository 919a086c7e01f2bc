"""The reference client's fetch logic, driven through its transport seam (no network)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import OctKey

from keyops.client.backoff import Backoff
from keyops.client.cache import Cache
from keyops.client.fetcher import Fetcher
from keyops.client.token import Identity
from keyops.client.transport import Request, Response
from keyops.core.errors import NothingUsable, UsageError
from support.client import (
    IDENTITY,
    KEY_A,
    KEY_B,
    NEXT_SIGNER,
    NOW,
    ROGUE,
    A,
    B,
    Clock,
    FakeEndpoint,
    Resend,
    down,
    encrypt_to,
    fetcher,
    jose,
    make_config,
    payload,
    problem,
    serve_signed,
    sign,
)

# -- the request ------------------------------------------------------------------------------


def test_request_token_carries_the_section_6_claims() -> None:
    endpoint = FakeEndpoint({A: serve_signed(sign(payload())), B: down()})
    result = fetcher(endpoint).refresh()
    assert (result.credential_id, result.key, result.cluster) == ("ios-2026-11", KEY_A, "eu")
    assert (result.bundle_version, result.source, result.stale) == (17, A, False)
    seen = endpoint.seen[0]
    assert seen.header == {"alg": "HS256", "kid": "ios-build-2026a", "typ": "JWT"}
    claims = seen.claims
    assert set(claims) == {"sub", "aud", "iat", "jti", "app_version", "install_id", "epk"}
    assert (claims["sub"], claims["aud"], claims["iat"]) == ("ios", "dev", int(NOW))
    assert len(claims["jti"]) >= 16
    assert (claims["app_version"], claims["install_id"]) == ("5.2.0", "install-0001")
    assert set(claims["epk"]) == {"kty", "crv", "x", "y"}
    assert (claims["epk"]["kty"], claims["epk"]["crv"]) == ("EC", "P-256")
    assert seen.request.timeout == 2.5


def test_every_request_gets_a_fresh_ephemeral_key_and_jti() -> None:
    endpoint = FakeEndpoint({A: serve_signed(sign(payload()))})
    client = fetcher(endpoint, endpoints=[A])
    client.refresh()
    client.refresh()
    first, second = (s.claims for s in endpoint.seen)
    assert first["epk"]["x"] != second["epk"]["x"]
    assert first["jti"] != second["jti"]


def test_held_is_the_credential_the_app_holds_after_the_first_fetch() -> None:
    endpoint = FakeEndpoint({A: serve_signed(sign(payload()))})
    client = fetcher(endpoint, endpoints=[A])
    client.refresh()
    client.refresh()
    assert "held" not in endpoint.seen[0].claims
    assert endpoint.seen[1].claims["held"] == "ios-2026-11"


def test_an_explicit_held_id_is_sent() -> None:
    endpoint = FakeEndpoint({A: serve_signed(sign(payload()))})
    fetcher(
        endpoint, endpoints=[A], identity=Identity("5.2.0", "install-0001", "ios-2026-05")
    ).refresh()
    assert endpoint.seen[0].claims["held"] == "ios-2026-05"


@pytest.mark.parametrize(
    ("version", "install", "message"),
    [
        ("5.2", "install-0001", "error: app version '5.2' is not a semantic version."),
        ("5.2.0", "short", "error: the install id must be 8-64 characters of A-Z a-z 0-9 _ -."),
        (
            "5.2.0",
            "has space in it",
            "error: the install id must be 8-64 characters of A-Z a-z 0-9 _ -.",
        ),
        # "$" matches before a final newline: each of these must still be refused.
        ("5.2.0\n", "install-0001", "error: app version '5.2.0\\n' is not a semantic version."),
        (
            "5.2.0",
            "install-0001\n",
            "error: the install id must be 8-64 characters of A-Z a-z 0-9 _ -.",
        ),
        # Only ASCII digits: "\d" would take ARABIC-INDIC DIGIT FIVE and FULLWIDTH DIGIT ONE.
        ("1\u0665.2.0", "install-0001", "error: app version '1\u0665.2.0' is not a semantic"),
        ("5.2.0-rc.1\uff11", "install-0001", "error: app version '5.2.0-rc.1\uff11' is not"),
    ],
)
def test_identity_is_validated_before_any_request(version: str, install: str, message: str) -> None:
    with pytest.raises(Exception) as info:
        Identity(version, install)
    assert str(info.value).startswith(message)


def test_a_held_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(UsageError) as info:
        Identity("5.2.0", "install-0001", "ios-2026-05\n")
    assert (
        info.value.render() == "error: held credential id 'ios-2026-05\\n' is not a credential id."
    )


# -- order, failover, backoff -----------------------------------------------------------------


def test_endpoints_are_tried_in_order_and_the_second_serves_when_the_first_is_down() -> None:
    endpoint = FakeEndpoint({A: down(), B: serve_signed(sign(payload()))})
    clock = Clock()
    result = fetcher(endpoint, clock).refresh()
    assert result.source == B
    assert endpoint.urls() == [A, B]
    assert [(a.url, a.outcome) for a in result.attempts] == [(A, "unreachable"), (B, "ok")]
    assert clock.sleeps == []  # failover to another endpoint does not wait


def test_retryable_failures_back_off_between_rounds_with_full_jitter_bounds() -> None:
    endpoint = FakeEndpoint(
        {A: down("timed out after 2.5 s"), B: lambda r, c: problem(503, "not-ready")}
    )
    clock = Clock()
    with pytest.raises(NothingUsable) as info:
        fetcher(endpoint, clock, rounds=4, random=1.0).refresh()
    # random() == 1.0 reaches each bound exactly: base * 2**n, capped.
    assert clock.sleeps == [0.25, 0.5, 1.0]
    assert endpoint.urls() == [A, B] * 4
    assert [a.outcome for a in info.value.attempts[:2]] == ["unreachable", "http-503:not-ready"]
    assert info.value.exit_code == 1


@pytest.mark.parametrize("r", [0.0, 0.3, 0.999])
def test_jitter_is_a_uniform_fraction_of_the_bound(r: float) -> None:
    endpoint = FakeEndpoint({A: down(), B: down()})
    clock = Clock()
    with pytest.raises(NothingUsable):
        fetcher(endpoint, clock, rounds=3, random=r).refresh()
    assert clock.sleeps == [pytest.approx(r * 0.25), pytest.approx(r * 0.5)]


def test_backoff_bound_is_capped() -> None:
    backoff = Backoff(0.25, 4.0)
    assert [backoff.bound(n) for n in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.bound(10_000) == 4.0
    assert 0.0 <= backoff.delay(3, lambda: 0.5) == 1.0


def test_definitive_errors_are_not_retried_in_later_rounds() -> None:
    endpoint = FakeEndpoint({A: lambda r, c: problem(401, "invalid-token"), B: down()})
    with pytest.raises(NothingUsable) as info:
        fetcher(endpoint, rounds=3).refresh()
    assert endpoint.urls() == [A, B, B, B]
    assert info.value.attempts[0].detail == "HTTP 401 invalid-token: invalid-token"
    assert not info.value.attempts[0].retryable


def test_server_text_is_made_printable_and_bounded() -> None:
    title = "bad\x1b[31m" + "x" * 500
    endpoint = FakeEndpoint({A: lambda r, c: problem(400, "bad-request", title)})
    with pytest.raises(NothingUsable) as info:
        fetcher(endpoint, endpoints=[A]).refresh()
    detail = info.value.attempts[0].detail
    assert detail == "HTTP 400 bad-request: bad?[31m" + "x" * 112


def test_a_426_is_definitive_and_falls_back() -> None:
    endpoint = FakeEndpoint(
        {
            A: lambda r, c: problem(426, "upgrade-required"),
            B: lambda r, c: problem(426, "upgrade-required"),
        }
    )
    clock = Clock()
    with pytest.raises(NothingUsable):
        fetcher(endpoint, clock).refresh()
    assert endpoint.urls() == [A, B]
    assert clock.sleeps == []


def test_a_stale_token_is_retried_once_with_the_servers_clock() -> None:
    endpoint = FakeEndpoint({A: serve_signed(sign(payload()))})
    clock = Clock(NOW - 3 * 3600)  # the device clock is three hours slow
    endpoint.clock = lambda: NOW
    result = fetcher(endpoint, clock, endpoints=[A]).refresh()
    assert result.source == A
    assert [s.claims["iat"] for s in endpoint.seen] == [int(NOW - 3 * 3600), int(NOW)]


def test_a_replayed_token_is_retried_once_with_a_new_token() -> None:
    endpoint = FakeEndpoint({A: serve_signed(sign(payload())), B: down()})
    clock = Clock()
    resend = Resend(endpoint, at=1)  # the second request goes out with the first's token
    client = fetcher(endpoint, clock, transport=resend)
    client.refresh()
    result = client.refresh()
    assert (result.source, result.key) == (A, KEY_A)
    # The refusal and the resend with a new token are one attempt, at the same endpoint.
    assert [(a.url, a.outcome) for a in result.attempts] == [(A, "ok")]
    assert [a.status for a in resend.answers] == [200, 401, 200]
    assert json.loads(resend.answers[1].body)["code"] == "replayed-token"
    assert endpoint.urls() == [A, A, A]
    assert resend.sent[1] == resend.sent[0]
    first, fresh = resend.claims(0), resend.claims(2)
    assert fresh["jti"] != first["jti"]
    assert fresh["epk"] != first["epk"]
    assert fresh["iat"] == first["iat"]  # a replay teaches nothing about the clock
    assert clock.sleeps == []


def test_a_second_replayed_token_fails_the_endpoint_for_good() -> None:
    endpoint = FakeEndpoint(
        {A: lambda r, c: problem(401, "replayed-token", "The token was already used"), B: down()}
    )
    with pytest.raises(NothingUsable) as info:
        fetcher(endpoint, rounds=3).refresh()
    # Once resent with a new token, then given up on: no later round asks A again.
    assert endpoint.urls() == [A, A, B, B, B]
    assert len({s.claims["jti"] for s in endpoint.seen}) == 5
    failed = info.value.attempts[0]
    assert (failed.url, failed.outcome, failed.retryable) == (A, "http-401:replayed-token", False)
    assert failed.detail == "HTTP 401 replayed-token: The token was already used"


def test_a_second_replayed_token_leaves_the_next_endpoint_to_serve() -> None:
    endpoint = FakeEndpoint(
        {A: lambda r, c: problem(401, "replayed-token"), B: serve_signed(sign(payload()))}
    )
    result = fetcher(endpoint).refresh()
    assert result.source == B
    assert [(a.url, a.outcome) for a in result.attempts] == [
        (A, "http-401:replayed-token"),
        (B, "ok"),
    ]


def test_a_full_replay_cache_sends_the_client_to_the_next_endpoint_at_once() -> None:
    full = problem(503, "replay-cache-full", "Too many tokens in flight", {"Retry-After": "290"})
    endpoint = FakeEndpoint({A: lambda r, c: full, B: serve_signed(sign(payload()))})
    clock = Clock()
    result = fetcher(endpoint, clock).refresh()
    assert result.source == B
    assert endpoint.urls() == [A, B]  # not resent to A: a new token does not free room there
    assert clock.sleeps == []
    failed = result.attempts[0]
    assert (failed.outcome, failed.retryable) == ("http-503:replay-cache-full", True)
    assert failed.detail == "HTTP 503 replay-cache-full: Too many tokens in flight"


def test_a_full_replay_cache_is_asked_again_next_round_after_the_backoff() -> None:
    full = problem(503, "replay-cache-full", "Too many tokens in flight", {"Retry-After": "290"})
    endpoint = FakeEndpoint({A: lambda r, c: full, B: down()})
    clock = Clock()
    with pytest.raises(NothingUsable) as info:
        fetcher(endpoint, clock, rounds=3).refresh()
    assert endpoint.urls() == [A, B] * 3
    # The round backoff decides when, not Retry-After: 290 s is no wait for an app start-up.
    assert clock.sleeps == [0.125, 0.25]
    outcomes = [a.outcome for a in info.value.attempts]
    assert outcomes == ["http-503:replay-cache-full", "unreachable"] * 3


def test_non_jose_success_is_rejected() -> None:
    endpoint = FakeEndpoint(
        {A: lambda r, c: Response(200, {"Content-Type": "text/html"}, b"<html>")}
    )
    with pytest.raises(NothingUsable) as info:
        fetcher(endpoint, endpoints=[A]).refresh()
    assert (
        info.value.attempts[0].detail == "200 with Content-Type 'text/html', not application/jose"
    )


def test_an_answer_that_breaks_the_checks_themselves_is_one_failed_attempt() -> None:
    # A body that is not bytes (a transport gone wrong) makes the checks raise AttributeError:
    # the last resort turns it into a failed attempt, and the next endpoint serves.
    broken = Response(200, {"Content-Type": "application/jose"}, 7)  # type: ignore[arg-type]
    endpoint = FakeEndpoint({A: lambda r, c: broken, B: serve_signed(sign(payload()))})
    result = fetcher(endpoint).refresh()
    assert result.source == B
    assert [(a.outcome, a.detail) for a in result.attempts] == [
        ("verify:unreadable", "the answer could not be read (AttributeError)"),
        ("ok", "ios-2026-11"),
    ]


# -- verification -----------------------------------------------------------------------------


def _hs256_signed() -> str:
    # Algorithm confusion: a payload "signed" with HS256 using a public value as the key.
    return jws.serialize_compact(
        {"alg": "HS256", "kid": "dev-sign-a"},
        json.dumps(payload(key=KEY_B)).encode(),
        OctKey.import_key(b"x" * 32),
        algorithms=["HS256"],
    )


REJECTIONS = [
    (
        "bad-signature",
        lambda: sign(payload(key=KEY_B), ROGUE),
        "the signature does not verify with pinned key 'dev-sign-a'",
    ),
    (
        "unknown-kid",
        lambda: sign(payload(), ROGUE, kid="rogue-kid"),
        "the payload is signed by 'rogue-kid', not a pinned key",
    ),
    ("wrong-alg", _hs256_signed, "the payload is signed with 'HS256', not ES256"),
    (
        "wrong-stack",
        lambda: sign(payload(stack="prod")),
        "the payload is for stack 'prod', not 'dev'",
    ),
    (
        "wrong-client",
        lambda: sign(payload(client="android")),
        "the payload is for client 'android', not 'ios'",
    ),
    (
        "expired",
        lambda: sign(payload(exp=int(NOW) - 1)),
        f"the payload expired at {int(NOW) - 1} (now {int(NOW)})",
    ),
    (
        "bad-payload",
        lambda: sign(payload(key="NOT-HEX")),
        "the payload's 'key' is not 20 lowercase hex characters",
    ),
    (
        "bad-payload",
        lambda: sign(payload(key=KEY_A + "\n")),
        "the payload's 'key' is not 20 lowercase hex characters",
    ),
    (
        "bad-payload",
        lambda: sign(payload(credential_id="ios-2026-11\n")),
        "the payload's 'credential_id' is not a credential id",
    ),
    (
        "bad-payload",
        lambda: sign(payload(bundle_version=True)),
        "the payload's 'bundle_version' is not a non-negative integer",
    ),
]


@pytest.mark.parametrize(("reason", "make", "message"), REJECTIONS)
def test_bad_payloads_are_rejected_and_the_next_endpoint_is_tried(
    reason: str, make: Any, message: str
) -> None:
    endpoint = FakeEndpoint({A: serve_signed(make()), B: serve_signed(sign(payload()))})
    result = fetcher(endpoint).refresh()
    assert result.source == B and result.key == KEY_A
    bad = result.attempts[0]
    assert (bad.url, bad.outcome, bad.detail) == (A, f"verify:{reason}", message)


def test_a_payload_signed_by_the_next_pinned_key_is_accepted() -> None:
    endpoint = FakeEndpoint({A: serve_signed(sign(payload(), NEXT_SIGNER, kid="dev-sign-b"))})
    assert fetcher(endpoint, endpoints=[A]).refresh().key == KEY_A


def test_an_answer_encrypted_to_another_key_is_rejected() -> None:
    from joserfc.jwk import ECKey

    other = ECKey.generate_key("P-256", private=True).as_dict(private=False)
    endpoint = FakeEndpoint({A: lambda r, c: jose(encrypt_to(other, sign(payload())))})
    with pytest.raises(NothingUsable) as info:
        fetcher(endpoint, endpoints=[A]).refresh()
    attempt = info.value.attempts[0]
    assert (attempt.outcome, attempt.detail) == (
        "verify:decrypt-failed",
        "the answer does not decrypt with this request's key",
    )


def test_an_answer_with_another_jwe_algorithm_is_rejected() -> None:
    endpoint = FakeEndpoint(
        {A: lambda r, c: jose(encrypt_to(c["epk"], sign(payload()), alg="ECDH-ES+A128KW"))}
    )
    with pytest.raises(NothingUsable) as info:
        fetcher(endpoint, endpoints=[A]).refresh()
    assert info.value.attempts[0].outcome == "verify:wrong-alg"
    assert (
        info.value.attempts[0].detail == "the answer is not encrypted with ECDH-ES+A256KW / A256GCM"
    )


def test_a_plain_jws_without_encryption_is_rejected() -> None:
    endpoint = FakeEndpoint({A: lambda r, c: jose(sign(payload()))})
    with pytest.raises(NothingUsable) as info:
        fetcher(endpoint, endpoints=[A]).refresh()
    assert info.value.attempts[0].outcome == "verify:not-jwe"


def test_bundle_version_never_goes_backwards() -> None:
    answers = iter([sign(payload(bundle_version=18)), sign(payload(bundle_version=17, key=KEY_B))])
    endpoint = FakeEndpoint({A: lambda r, c: jose(encrypt_to(c["epk"], next(answers)))})
    client = fetcher(endpoint, endpoints=[A])
    assert client.refresh().bundle_version == 18
    result = client.refresh()  # the older bundle is refused; the accepted one stays in use
    assert (result.key, result.bundle_version, result.stale) == (KEY_A, 18, True)
    assert result.attempts[0].outcome == "verify:rollback"
    assert result.attempts[0].detail == "bundle_version 17 is older than 18, already accepted"


# -- refresh_after, cache, bundled ------------------------------------------------------------


def test_get_honours_refresh_after() -> None:
    endpoint = FakeEndpoint({A: serve_signed(sign(payload(refresh_after=600)))})
    clock = Clock()
    client = fetcher(endpoint, clock, endpoints=[A])
    assert client.get().source == A
    clock.now += 599
    assert client.get().source == A
    assert len(endpoint.seen) == 1
    clock.now += 1
    client.get()
    assert len(endpoint.seen) == 2


def test_a_clock_set_back_does_not_keep_the_cache_fresh() -> None:
    endpoint = FakeEndpoint({A: serve_signed(sign(payload(refresh_after=600)))})
    clock = Clock()
    client = fetcher(endpoint, clock, endpoints=[A])
    client.get()
    clock.now -= 3600  # e.g. the user fixed a clock that ran an hour fast
    endpoint.clock = lambda: NOW - 3600
    client.get()
    assert len(endpoint.seen) == 2


def test_after_a_bundled_fallback_the_bundled_id_is_reported_as_held() -> None:
    bundled = {"credential_id": "ios-2026-05", "key": KEY_B, "cluster": "eu"}
    up = iter([False, True])

    def handler(request: Request, claims: dict[str, Any]) -> Response:
        if next(up):
            return jose(encrypt_to(claims["epk"], sign(payload())))
        return down()(request, claims)

    endpoint = FakeEndpoint({A: handler})
    client = fetcher(endpoint, endpoints=[A], rounds=1, bundled=bundled)
    assert client.get().source == "bundled"
    assert client.get().source == A
    assert [s.claims.get("held") for s in endpoint.seen] == [None, "ios-2026-05"]


def test_a_fresh_cache_answers_at_start_up_without_network(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache.json")
    clock = Clock()
    fetcher(FakeEndpoint({A: serve_signed(sign(payload()))}), clock, cache=cache).get()
    endpoint = FakeEndpoint({A: down(), B: down()})
    clock.now += 60
    result = fetcher(endpoint, clock, cache=Cache(tmp_path / "cache.json")).get()
    assert (result.source, result.key, result.stale) == ("cache", KEY_A, False)
    assert endpoint.seen == []


def test_the_cache_serves_when_every_endpoint_fails(tmp_path: Path) -> None:
    clock = Clock()
    fetcher(
        FakeEndpoint({A: serve_signed(sign(payload()))}), clock, cache=Cache(tmp_path / "c")
    ).get()
    clock.now += 7200  # past refresh_after
    endpoint = FakeEndpoint({A: down(), B: lambda r, c: problem(500, "internal")})
    result = fetcher(endpoint, clock, cache=Cache(tmp_path / "c"), rounds=2).get()
    assert (result.source, result.key, result.bundle_version, result.stale) == (
        "cache",
        KEY_A,
        17,
        True,
    )
    assert endpoint.urls() == [A, B, A, B]


def test_cache_file_is_0600_and_written_atomically(tmp_path: Path) -> None:
    import os

    old = os.umask(0)  # the most permissive umask must not widen the mode
    try:
        fetcher(
            FakeEndpoint({A: serve_signed(sign(payload()))}), cache=Cache(tmp_path / "c.json")
        ).get()
    finally:
        os.umask(old)
    path = tmp_path / "c.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]  # no temporary left
    data = json.loads(path.read_text())
    assert data["format"] == "keyops-client-cache/1"
    assert (data["stack"], data["client"], data["high_water"], data["source"]) == (
        "dev",
        "ios",
        17,
        A,
    )
    assert "secret" not in path.read_text().lower()


def test_a_tampered_cache_is_not_used(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "c.json"
    fetcher(FakeEndpoint({A: serve_signed(sign(payload()))}), clock, cache=Cache(path)).get()
    data = json.loads(path.read_text())
    head, body, sig = data["signed"].split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged["key"] = KEY_B
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    data["signed"] = f"{head}.{body}.{sig}"
    path.write_text(json.dumps(data))
    with pytest.raises(NothingUsable) as info:
        fetcher(FakeEndpoint({A: down(), B: down()}), clock, cache=Cache(path), rounds=1).get()
    assert info.value.notes == (
        "the cached payload is not usable: "
        "the signature does not verify with pinned key 'dev-sign-a'",
    )


def test_a_corrupt_cache_is_ignored_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    endpoint = FakeEndpoint({A: serve_signed(sign(payload()))})
    client = fetcher(endpoint, cache=Cache(path), endpoints=[A])
    result = client.get()
    assert result.source == A
    assert result.notes == (
        f"ignoring the cache {path}: not JSON (Expecting property name enclosed in double quotes)",
    )
    assert client.refresh().notes == ()  # reported once, not on every later result

    assert json.loads(path.read_text())["high_water"] == 17  # replaced by a good one


def test_an_expired_cache_is_not_served_but_keeps_the_rollback_watermark(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "c.json"
    fetcher(
        FakeEndpoint({A: serve_signed(sign(payload(bundle_version=20, exp=int(NOW) + 100)))}),
        clock,
        cache=Cache(path),
    ).get()
    clock.now += 200
    endpoint = FakeEndpoint(
        {A: serve_signed(sign(payload(bundle_version=19, exp=int(NOW) + 9999)))}
    )
    bundled = {"credential_id": "ios-2026-05", "key": KEY_B, "cluster": "eu"}
    result = fetcher(endpoint, clock, cache=Cache(path), endpoints=[A], bundled=bundled).get()
    assert (result.source, result.key, result.bundle_version) == ("bundled", KEY_B, None)
    assert result.attempts[0].outcome == "verify:rollback"
    assert result.notes[0].startswith("the cached payload is not usable: the payload expired at")


def test_a_cache_of_another_client_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    fetcher(FakeEndpoint({A: serve_signed(sign(payload()))}), cache=Cache(path)).get()
    data = json.loads(path.read_text())
    data["client"] = "android"
    path.write_text(json.dumps(data))
    with pytest.raises(NothingUsable) as info:
        fetcher(FakeEndpoint({A: down(), B: down()}), cache=Cache(path), rounds=1).get()
    assert info.value.notes == ("the cache holds dev/android, not dev/ios; ignoring it",)


def test_the_bundled_key_is_used_when_there_is_no_cache() -> None:
    bundled = {"credential_id": "ios-2026-05", "key": KEY_B, "cluster": "eu"}
    result = fetcher(FakeEndpoint({A: down(), B: down()}), rounds=1, bundled=bundled).get()
    assert (result.credential_id, result.key, result.cluster) == ("ios-2026-05", KEY_B, "eu")
    assert (result.source, result.bundle_version, result.stale) == ("bundled", None, True)


def test_nothing_usable_without_cache_or_bundled_key() -> None:
    with pytest.raises(NothingUsable) as info:
        fetcher(FakeEndpoint({A: down(), B: down()}), rounds=1).get()
    assert info.value.render() == (
        "error: no usable Pusher key: every endpoint failed, and there is no cached or bundled "
        "key. See the attempts above; check the network and the endpoints' /healthz."
    )


def test_an_unwritable_cache_does_not_fail_the_fetch(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = fetcher(
        FakeEndpoint({A: serve_signed(sign(payload()))}), cache=Cache(blocker / "c.json")
    ).get()
    assert result.source == A
    assert result.notes == (
        f"cannot read {blocker / 'c.json'} (Not a directory)",
        f"cannot write the cache {blocker / 'c.json'} (Not a directory)",
    )


def test_requests_never_carry_the_secret_in_clear() -> None:
    from support.client import SECRET_B64

    seen: list[Request] = []

    def transport(request: Request) -> Response:
        seen.append(request)
        raise __import__("keyops.core.errors", fromlist=["TransportError"]).TransportError("x")

    client = Fetcher(make_config(), IDENTITY, transport=transport, sleep=lambda s: None)
    with pytest.raises(NothingUsable):
        client.get()
    assert seen and all(
        SECRET_B64 not in repr(r) and SECRET_B64 not in str(r.headers) for r in seen
    )
