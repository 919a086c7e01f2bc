"""keyops.endpoint.replay: a jti is accepted once within the window, in bounded memory."""

from __future__ import annotations

import pytest

from keyops.core.errors import ServiceError
from keyops.endpoint.replay import ReplayCache

NOW = 1_800_000_000.0


def refusal(cache: ReplayCache, *args: object, **kwargs: object) -> tuple[int, str, str]:
    with pytest.raises(ServiceError) as caught:
        cache.check(*args, **kwargs)  # type: ignore[arg-type]
    return caught.value.status, caught.value.code, caught.value.title


def test_a_token_is_accepted_once_and_its_replay_is_refused() -> None:
    cache = ReplayCache()
    cache.check("ios", "jti-0000000000000001", NOW, iat=NOW)
    assert refusal(cache, "ios", "jti-0000000000000001", NOW + 1, iat=NOW) == (
        401,
        "replayed-token",
        "The token was already used",
    )
    # The same jti from another client is another token.
    cache.check("android", "jti-0000000000000001", NOW + 1, iat=NOW)


def test_a_replay_is_refused_for_as_long_as_the_token_could_be_accepted() -> None:
    cache = ReplayCache(window_seconds=300)
    cache.check("ios", "jti-a-0000000000000", NOW, iat=NOW - 299)
    # iat + 300 is the last moment claims accept the token: still remembered then.
    assert refusal(cache, "ios", "jti-a-0000000000000", NOW + 1, iat=NOW - 299)[1] == (
        "replayed-token"
    )
    # After it, claims refuse it as stale; the entry is gone and memory is back.
    cache.check("ios", "jti-b-0000000000000", NOW + 2, iat=NOW + 2)
    assert len(cache) == 1


def test_without_iat_entries_are_kept_for_two_windows() -> None:
    cache = ReplayCache(window_seconds=300)
    cache.check("ios", "jti-0000000000000002", NOW)
    assert refusal(cache, "ios", "jti-0000000000000002", NOW + 600)[1] == "replayed-token"
    cache.check("ios", "jti-0000000000000003", NOW + 601)
    assert len(cache) == 1


def test_one_token_replayed_a_thousand_times_is_accepted_once() -> None:
    cache = ReplayCache()
    accepted = refused = 0
    for i in range(1000):
        try:
            cache.check("ios", "captured-token-jti-01", NOW + i * 0.1, iat=NOW)
            accepted += 1
        except ServiceError as error:
            assert error.code == "replayed-token"
            refused += 1
    assert (accepted, refused, len(cache)) == (1, 999, 1)


def test_when_full_new_tokens_are_refused_with_503_and_retry_after() -> None:
    cache = ReplayCache(window_seconds=300, max_entries=3)
    for i in range(3):
        cache.check("ios", f"jti-full-{i:012d}", NOW, iat=NOW)
    with pytest.raises(ServiceError) as caught:
        cache.check("ios", "jti-full-000000000099", NOW + 10, iat=NOW + 10)
    error = caught.value
    assert (error.status, error.code, error.retry_after) == (503, "replay-cache-full", 290)
    # A replay is still a replay when the cache is full.
    assert refusal(cache, "ios", "jti-full-000000000001", NOW + 10, iat=NOW)[1] == "replayed-token"
    # Once the oldest entries expire there is room again; the cache never grows past its cap.
    cache.check("ios", "jti-full-000000000099", NOW + 301, iat=NOW + 290)
    assert len(cache) == 1


def test_memory_does_not_depend_on_jti_length() -> None:
    cache = ReplayCache()
    cache.check("ios", "j" * 256, NOW)
    cache.check("ios", "k" * 16, NOW)
    assert {len(key) for key in cache._expiry} == {16}


@pytest.mark.parametrize("kwargs", [{"window_seconds": 0}, {"max_entries": 0}])
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ReplayCache(**kwargs)  # type: ignore[arg-type]
