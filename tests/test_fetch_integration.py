"""The reference client against real ``keyops serve`` processes on 127.0.0.1."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path

import pytest

from keyops.client import config as client_config
from keyops.client.fetcher import Fetcher, Policy, Result
from keyops.client.token import Identity
from keyops.client.transport import http_transport
from support import fetch as support
from support.client import Resend
from support.fetch import Served, write_config
from support.net import closed_url

two_servers = support.two_servers  # the fixture, under its name
LOOP = 40
# Generous per-attempt timeouts: the suite runs in parallel on a small, shared machine, and a
# slow answer must not be mistaken for a dead server. A killed server refuses at once anyway.
SLOW_MACHINE_TIMEOUT = 20.0
TIMEOUT_ARGS = ("--timeout", str(SLOW_MACHINE_TIMEOUT))
KILL_AT = 15


def ios_key(served: Served, credential_id: str = "ios-2026-11") -> str:
    document = served.repo.decrypt("credentials/dev/ios.yaml")
    key: str = next(c["key"] for c in document["credentials"] if c["id"] == credential_id)
    return key


def test_endpoint_options_replace_the_configured_endpoints(
    two_servers: Served, tmp_path: Path
) -> None:
    # The build carries an endpoint that answers nothing; --endpoint on fetch points it at a
    # live one instead, as a developer does against a local or staging endpoint.
    config = tmp_path / "ios.json"
    nowhere = closed_url()
    written = write_config(two_servers.repo, config, "ios", "--endpoint", nowhere)
    assert written["endpoints"] == [nowhere]
    proc = two_servers.repo.run(
        "fetch", "--config", str(config), "--endpoint", two_servers.urls[1], *TIMEOUT_ARGS
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.endswith(f"source         {two_servers.urls[1]}\n")


def test_client_config_to_fetch_round_trip(two_servers: Served, tmp_path: Path) -> None:
    config = tmp_path / "ios.json"
    write_config(two_servers.repo, config)
    cache = tmp_path / "cache.json"
    proc = two_servers.repo.run(
        "fetch",
        "--config",
        str(config),
        "--cache",
        str(cache),
        "--app-version",
        "5.2.0",
        *TIMEOUT_ARGS,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "credential_id  ios-2026-11\n"
        f"key            {ios_key(two_servers)}\n"
        "cluster        eu\n"
        f"bundle_version {two_servers.bundle_version}\n"
        f"source         {two_servers.urls[0]}\n"
    )
    assert proc.stderr == ""
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    # Within refresh_after the next start-up needs no network.
    again = two_servers.repo.run(
        "fetch", "--config", str(config), "--cache", str(cache), "--format", "json"
    )
    assert again.returncode == 0, again.stderr
    answer = json.loads(again.stdout)
    assert (answer["source"], answer["stale"], answer["attempts"]) == ("cache", False, [])


def test_a_device_clock_an_hour_slow_is_corrected_from_the_servers_date(
    two_servers: Served, tmp_path: Path
) -> None:
    document = write_config(two_servers.repo, tmp_path / "ios.json")
    fetcher = Fetcher(
        client_config.parse(document),
        Identity("5.2.0", "skewed-install"),
        policy=Policy(attempt_timeout=SLOW_MACHINE_TIMEOUT, max_rounds=1),
        clock=lambda: time.time() - 3600,
    )
    result = fetcher.refresh()
    assert (result.source, result.key) == (two_servers.urls[0], ios_key(two_servers))
    assert [a.outcome for a in result.attempts] == ["ok"]  # the stale-token retry is internal
    assert fetcher.refresh().attempts[0].outcome == "ok"  # the learned skew is kept


def test_a_token_resent_on_the_way_is_refused_and_a_new_one_is_served(
    two_servers: Served, tmp_path: Path
) -> None:
    document = write_config(two_servers.repo, tmp_path / "ios.json")
    resend = Resend(http_transport, at=1)  # the second request carries the first's token
    fetcher = Fetcher(
        client_config.parse(document),
        Identity("5.2.0", "replayed-install"),
        transport=resend,
        policy=Policy(attempt_timeout=SLOW_MACHINE_TIMEOUT, max_rounds=1),
    )
    assert fetcher.refresh().source == two_servers.urls[0]
    result = fetcher.refresh()
    assert (result.source, result.key) == (two_servers.urls[0], ios_key(two_servers))
    assert [a.outcome for a in result.attempts] == ["ok"]  # the replayed-token retry is internal
    # The server refused the token it had already accepted, and served the new one.
    assert [a.status for a in resend.answers] == [200, 401, 200]
    refusal = json.loads(resend.answers[1].body)
    assert (refusal["code"], refusal["title"]) == ("replayed-token", "The token was already used")
    assert resend.sent[1] == resend.sent[0]
    assert resend.claims(2)["jti"] != resend.claims(0)["jti"]
    assert resend.claims(2)["epk"] != resend.claims(0)["epk"]


@pytest.mark.slow
def test_no_fetch_fails_while_one_server_is_killed(two_servers: Served) -> None:
    first, second = two_servers.servers
    config = client_config.parse(
        json.loads(
            two_servers.repo.run("client-config", "--stack", "dev", "--client", "ios").stdout
        )
    )
    fetcher = Fetcher(
        config,
        Identity("5.2.0", "kill-loop-install"),
        policy=Policy(attempt_timeout=SLOW_MACHINE_TIMEOUT, max_rounds=3),
    )
    killed = threading.Event()
    go = threading.Event()

    def killer() -> None:
        go.wait(timeout=120)
        first.proc.kill()  # abrupt, in the middle of the client's loop
        first.proc.wait(timeout=30)
        killed.set()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    results: list[Result] = []
    for i in range(LOOP):
        if i == KILL_AT:
            go.set()
        if i == LOOP - 5:
            assert killed.wait(timeout=60), "the server was not killed"
        results.append(fetcher.refresh())  # raises NothingUsable if a fetch fails
    thread.join(timeout=30)
    key = ios_key(two_servers)
    assert all(r.key == key and not r.stale for r in results)  # every fetch got a verified key
    assert all(r.source in (first.url, second.url) for r in results)
    assert any(r.source == first.url for r in results[:KILL_AT])  # the first served before
    assert {r.source for r in results[-5:]} == {second.url}  # ...and the second after the kill
    refused = [a for r in results[-5:] for a in r.attempts if not a.ok]
    assert refused and {(a.url, a.outcome) for a in refused} == {(first.url, "unreachable")}


def test_fetch_falls_back_to_cache_then_bundled_then_fails(
    two_servers: Served, tmp_path: Path
) -> None:
    repo = two_servers.repo
    good = tmp_path / "ios.json"
    write_config(repo, good, "ios", "--bundled-fallback")
    cache = tmp_path / "cache.json"
    assert (
        repo.run("fetch", "--config", str(good), "--cache", str(cache), *TIMEOUT_ARGS).returncode
        == 0
    )
    dead_url = closed_url()
    dead = tmp_path / "dead.json"
    document = json.loads(good.read_text())
    document["endpoints"] = [dead_url]
    dead.write_text(json.dumps(document))
    failed = f"attempt failed: {dead_url}: unreachable (connection refused)\n"

    cached = repo.run(
        "fetch", "--config", str(dead), "--cache", str(cache), "--refresh", "--rounds", "1"
    )
    assert cached.returncode == 0
    assert cached.stdout.splitlines()[-1] == "source         cache (every endpoint failed)"
    assert cached.stderr == failed

    bundled = repo.run("fetch", "--config", str(dead), "--rounds", "1")
    assert bundled.returncode == 0
    assert bundled.stdout.splitlines()[-2:] == [
        "bundle_version -",
        "source         bundled (every endpoint failed)",
    ]

    del document["bundled_fallback"]
    dead.write_text(json.dumps(document))
    nothing = repo.run("fetch", "--config", str(dead), "--rounds", "1")
    assert nothing.returncode == 1
    assert nothing.stdout == ""
    assert nothing.stderr == failed + (
        "error: no usable Pusher key: every endpoint failed, and there is no cached or bundled "
        "key. See the attempts above; check the network and the endpoints' /healthz.\n"
    )


def test_fetch_with_a_wrong_secret_is_refused_by_the_server(
    two_servers: Served, tmp_path: Path
) -> None:
    config = tmp_path / "ios.json"
    document = write_config(two_servers.repo, config)
    document["request_auth"]["secret"] = "A" * 43  # type: ignore[index]
    config.write_text(json.dumps(document))
    proc = two_servers.repo.run("fetch", "--config", str(config), "--rounds", "1", *TIMEOUT_ARGS)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"attempt failed: {two_servers.urls[0]}: http-401:invalid-token (")
    assert lines[1].startswith(f"attempt failed: {two_servers.urls[1]}: http-401:invalid-token (")
