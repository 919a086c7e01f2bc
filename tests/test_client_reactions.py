"""``on_pusher_error``: what the client does when Pusher closes the connection with a code."""

from __future__ import annotations

from typing import Any

import pytest

from keyops.client.backoff import Backoff
from keyops.client.fetcher import Fetcher, Policy
from keyops.client.token import Identity
from keyops.client.transport import Request
from support.client import (
    KEY_A,
    KEY_B,
    A,
    Clock,
    FakeEndpoint,
    down,
    encrypt_to,
    jose,
    make_config,
    payload,
    sign,
)


def rotating_endpoint(*keys: tuple[str, str]) -> FakeEndpoint:
    """Each request gets the next (credential id, key) in turn, the last one repeating."""
    answers = list(keys)

    def handler(request: Request, claims: dict[str, Any]) -> Any:
        cred, key = answers.pop(0) if len(answers) > 1 else answers[0]
        return jose(encrypt_to(claims["epk"], sign(payload(credential_id=cred, key=key))))

    return FakeEndpoint({A: handler})


def client(endpoint: FakeEndpoint, random: float = 1.0) -> Fetcher:
    clock = Clock()
    endpoint.clock = clock
    return Fetcher(
        make_config([A]),
        Identity("5.2.0", "install-0001"),
        transport=endpoint,
        policy=Policy(max_rounds=1, round_backoff=Backoff(0.25, 4.0)),
        clock=clock,
        sleep=clock.sleep,
        random=lambda: random,
    )


@pytest.mark.parametrize("code", [4001, 4003, 4009])
def test_an_invalid_key_code_refetches_once_and_reconnects_with_the_new_key(code: int) -> None:
    endpoint = rotating_endpoint(("ios-2026-05", KEY_B), ("ios-2026-11", KEY_A))
    fetcher = client(endpoint)
    assert fetcher.get().key == KEY_B
    reaction = fetcher.on_pusher_error(code)
    assert (reaction.action, reaction.delay) == ("reconnect", 0.0)
    assert reaction.result is not None and reaction.result.key == KEY_A
    assert reaction.reason == f"refetched after close code {code}"
    assert len(endpoint.seen) == 2
    assert endpoint.seen[1].claims["held"] == "ios-2026-05"


def test_the_refetch_happens_once_per_credential_then_it_stops() -> None:
    endpoint = rotating_endpoint(("ios-2026-11", KEY_A))
    fetcher = client(endpoint)
    fetcher.get()
    first = fetcher.on_pusher_error(4009)
    assert first.action == "reconnect" and first.result is not None
    assert first.result.key == KEY_A  # the endpoint still serves the same key
    second = fetcher.on_pusher_error(4009)
    assert (second.action, second.result) == ("stop", None)
    assert second.reason == "Pusher refused ios-2026-11 again after a refetch (4009)"
    assert len(endpoint.seen) == 2  # no second refetch: no loop against a dead key


def test_a_successful_connection_re_arms_the_refetch() -> None:
    endpoint = rotating_endpoint(("ios-2026-11", KEY_A))
    fetcher = client(endpoint)
    fetcher.get()
    fetcher.on_pusher_error(4001)
    fetcher.on_connected()
    assert fetcher.on_pusher_error(4001).action == "reconnect"
    assert len(endpoint.seen) == 3


def test_a_refetch_with_every_endpoint_down_still_offers_the_known_key() -> None:
    answers = iter([True])

    def handler(request: Request, claims: dict[str, Any]) -> Any:
        if next(answers, False):
            return jose(encrypt_to(claims["epk"], sign(payload())))
        return down()(request, claims)

    fetcher = client(FakeEndpoint({A: handler}))
    fetcher.get()
    reaction = fetcher.on_pusher_error(4003)
    assert reaction.action == "reconnect" and reaction.result is not None
    assert (reaction.result.source, reaction.result.stale) == ("cache", True)
    assert fetcher.on_pusher_error(4003).action == "stop"


def test_a_refused_bundled_key_is_refetched_once_then_it_stops() -> None:
    clock = Clock()
    endpoint = FakeEndpoint({A: down()}, clock=clock)
    bundled = {"credential_id": "ios-2026-05", "key": KEY_B, "cluster": "eu"}
    fetcher = Fetcher(
        make_config([A], bundled=bundled),
        Identity("5.2.0", "install-0001"),
        transport=endpoint,
        policy=Policy(max_rounds=1),
        clock=clock,
        sleep=clock.sleep,
    )
    assert fetcher.get().source == "bundled"
    first = fetcher.on_pusher_error(4009)
    assert first.action == "reconnect" and first.result is not None
    assert first.result.source == "bundled"
    second = fetcher.on_pusher_error(4009)
    assert (second.action, second.reason) == (
        "stop",
        "Pusher refused ios-2026-05 again after a refetch (4009)",
    )
    assert len(endpoint.seen) == 2


@pytest.mark.parametrize(("code", "bounds"), [(4004, [30.0, 60.0, 120.0]), (4100, [1.0, 2.0, 4.0])])
def test_over_quota_and_over_capacity_back_off_exponentially(
    code: int, bounds: list[float]
) -> None:
    endpoint = rotating_endpoint(("ios-2026-11", KEY_A))
    fetcher = client(endpoint, random=1.0)
    fetcher.get()
    delays = []
    for _ in bounds:
        reaction = fetcher.on_pusher_error(code)
        assert reaction.action == "wait"
        assert reaction.result is not None and reaction.result.key == KEY_A
        delays.append(reaction.delay)
    assert delays == bounds
    assert len(endpoint.seen) == 1  # backing off never refetches
    fetcher.on_connected()
    assert fetcher.on_pusher_error(code).delay == bounds[0]


def test_backoff_delays_are_jittered_below_the_bound() -> None:
    fetcher = client(rotating_endpoint(("ios-2026-11", KEY_A)), random=0.25)
    fetcher.get()
    assert fetcher.on_pusher_error(4004).delay == 7.5
    assert fetcher.on_pusher_error(4004).delay == 15.0


def test_the_4004_backoff_is_capped() -> None:
    fetcher = client(rotating_endpoint(("ios-2026-11", KEY_A)), random=1.0)
    fetcher.get()
    delays = [fetcher.on_pusher_error(4004).delay for _ in range(12)]
    assert max(delays) == 900.0 and delays[-1] == 900.0


@pytest.mark.parametrize(
    ("code", "action"),
    [(4000, "stop"), (4007, "stop"), (4201, "reconnect"), (4150, "wait"), (1006, "wait")],
)
def test_other_codes_follow_the_pusher_protocol_ranges(code: int, action: str) -> None:
    endpoint = rotating_endpoint(("ios-2026-11", KEY_A))
    fetcher = client(endpoint)
    fetcher.get()
    assert fetcher.on_pusher_error(code).action == action
    assert len(endpoint.seen) == 1
