"""keyops.endpoint.installs: distinct installs per held credential, windowed and bounded."""

from __future__ import annotations

import json

import pytest

from keyops.endpoint.installs import (
    Count,
    InstallCounter,
    held_label,
    install_hash,
    merge,
    render,
    reporting,
)

NOW = 1_800_000_000.0
SALT = b"x" * 32
IDS = ("ios-2026-11", "ios-2026-05")


def h(n: int) -> str:
    return install_hash(SALT, f"install-{n:06d}")


def test_install_hash_is_a_truncated_hmac_of_the_install_id() -> None:
    import hashlib
    import hmac

    full = hmac.new(SALT, b"install-000001", hashlib.sha256).hexdigest()
    assert h(1) == full[:16]
    assert h(1) != h(2)


@pytest.mark.parametrize(
    ("held", "label"),
    [("ios-2026-05", "ios-2026-05"), (None, "none"), ("android-2026-03", "other")],
)
def test_held_label_is_always_bounded(held: str | None, label: str) -> None:
    assert held_label(held, IDS) == label


def test_a_thousand_answers_to_one_install_are_one_install() -> None:
    counter = InstallCounter()
    for i in range(1000):
        counter.observe("ios", "ios-2026-05", h(1), NOW + i)
    assert counter.counts(NOW + 1000) == {("ios", "ios-2026-05"): Count(1)}


def test_installs_are_counted_per_held_credential_and_unknown_apart() -> None:
    counter = InstallCounter()
    for n in range(3):
        counter.observe("ios", "ios-2026-05", h(n), NOW)
    for n in range(3, 10):
        counter.observe("ios", "ios-2026-11", h(n), NOW)
    counter.observe("ios", "other", h(99), NOW)
    counter.observe("ios", "none", h(98), NOW)
    counts = counter.counts(NOW)
    assert counts == {
        ("ios", "ios-2026-05"): Count(3),
        ("ios", "ios-2026-11"): Count(7),
        ("ios", "other"): Count(1),
        ("ios", "none"): Count(1),
    }
    assert reporting(counts, [counter.snapshot(NOW)], NOW) == {"ios": Count(10)}


def test_an_install_that_moved_keys_counts_once_in_the_denominator() -> None:
    counter = InstallCounter()
    counter.observe("ios", "ios-2026-05", h(1), NOW)
    counter.observe("ios", "ios-2026-11", h(1), NOW + 5)
    counts = counter.counts(NOW + 5)
    assert reporting(counts, [counter.snapshot(NOW + 5)], NOW + 5) == {"ios": Count(1)}


def test_installs_not_seen_within_the_window_leave_it() -> None:
    counter = InstallCounter(window_seconds=100)
    counter.observe("ios", "ios-2026-05", h(1), NOW)
    counter.observe("ios", "ios-2026-05", h(2), NOW + 50)
    counter.observe("ios", "ios-2026-05", h(1), NOW + 60)  # seen again: stays
    assert counter.counts(NOW + 120) == {("ios", "ios-2026-05"): Count(2)}
    assert counter.counts(NOW + 155) == {("ios", "ios-2026-05"): Count(1)}
    counter.observe("ios", "ios-2026-05", h(3), NOW + 170)
    assert len(counter._seen[("ios", "ios-2026-05")]) == 1


def test_a_full_set_saturates_for_a_window_and_says_so() -> None:
    counter = InstallCounter(window_seconds=100, cap=5)
    for n in range(8):
        counter.observe("ios", "ios-2026-11", h(n), NOW)
    assert counter.counts(NOW) == {("ios", "ios-2026-11"): Count(5, saturated=True)}
    assert len(counter._seen[("ios", "ios-2026-11")]) == 5
    assert counter.counts(NOW + 101) == {("ios", "ios-2026-11"): Count(0, saturated=False)}


def test_workers_are_merged_by_union() -> None:
    one, two = InstallCounter(), InstallCounter()
    for n in range(4):
        one.observe("ios", "ios-2026-05", h(n), NOW)
    for n in range(2, 6):
        two.observe("ios", "ios-2026-05", h(n), NOW)
    snaps = [json.loads(json.dumps(c.snapshot(NOW))) for c in (one, two)]
    assert merge(snaps, NOW) == {("ios", "ios-2026-05"): Count(6)}


@pytest.mark.parametrize(
    "junk",
    [{}, {"window_seconds": "x", "buckets": []}, {"window_seconds": 1, "buckets": [[1, 2]]}],
)
def test_a_malformed_snapshot_is_skipped(junk: dict[str, object]) -> None:
    counter = InstallCounter()
    counter.observe("ios", "ios-2026-05", h(1), NOW)
    assert merge([junk, counter.snapshot(NOW)], NOW) == {("ios", "ios-2026-05"): Count(1)}


def test_render_prometheus_lines() -> None:
    counter = InstallCounter(window_seconds=86400)
    counter.observe("ios", "ios-2026-05", h(1), NOW)
    counter.observe("ios", "ios-2026-11", h(2), NOW)
    counter.observe("ios", "other", h(3), NOW)
    lines = render("dev", [counter.snapshot(NOW)], NOW, 86400)
    samples = [line for line in lines if not line.startswith("#")]
    assert samples == [
        'keyops_installs{stack="dev",client="ios",held="ios-2026-05"} 1',
        'keyops_installs{stack="dev",client="ios",held="ios-2026-11"} 1',
        'keyops_installs_reporting{stack="dev",client="ios"} 2',
        'keyops_installs_held_unknown{stack="dev",client="ios"} 1',
        'keyops_installs_saturated{stack="dev",client="ios",held="ios-2026-05"} 0',
        'keyops_installs_saturated{stack="dev",client="ios",held="ios-2026-11"} 0',
        'keyops_installs_saturated{stack="dev",client="ios",held="other"} 0',
        'keyops_installs_window_seconds{stack="dev"} 86400',
    ]
    assert "install-" not in "\n".join(lines)
