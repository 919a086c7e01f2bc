"""``keyops smoke`` against real ``keyops serve`` processes, and its expectation rules."""

from __future__ import annotations

import datetime as dt

from keyops.cli.commands.smoke import PROBE_INSTALL_ID, bucket, expected_ids
from keyops.core.model import ClientFile
from keyops.store import sample
from support import fetch as support
from support.fetch import Served
from support.net import closed_url
from support.serve import wait_for_version

two_servers = support.two_servers  # the fixture, under its name
# Generous: the suite shares a small machine; a slow answer is not what these tests are about.
TIMEOUT = ("--timeout", "20")


def _report(served: Served, credential: dict[str, tuple[str, str]]) -> list[str]:
    return [
        f"ok    {url}  {name:<7}  {cred} ({kind}), bundle_version {served.bundle_version}"
        for url in served.urls
        for name, (cred, kind) in sorted(credential.items())
    ]


ACTIVE = {
    "android": ("android-2026-03", "active"),
    "ios": ("ios-2026-11", "active"),
    "web": ("web-2026-06", "active"),
}


def test_smoke_passes_when_every_endpoint_serves_the_repositorys_keys(two_servers: Served) -> None:
    proc = two_servers.repo.run("smoke", *TIMEOUT, "--stack", "dev")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "smoke dev: 2 endpoint(s) x 3 served client(s)",
        *_report(two_servers, ACTIVE),
        "smoke dev: 6 ok, 0 failed",
    ]


def test_smoke_fails_when_the_repository_says_another_key_is_active(two_servers: Served) -> None:
    repo = two_servers.repo
    document = repo.read_doc("credentials/dev/ios.yaml")
    today = dt.date(2026, 11, 27)
    document["credentials"][0].update(state="retiring", retiring_since=today.isoformat())
    document["credentials"] = [
        sample.credential("ios-2026-12", "active", today, activated=today),
        document["credentials"][0],
    ]
    repo.write_doc("credentials/dev/ios.yaml", document)  # not rebuilt, not deployed
    proc = repo.run("smoke", *TIMEOUT, "--stack", "dev", "--client", "ios")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "smoke dev: 2 endpoint(s) x 1 served client(s)",
        *(
            f"FAIL  {url}  ios  served ios-2026-11, the repository expects ios-2026-12 (active)"
            for url in two_servers.urls
        ),
        "smoke dev: 0 ok, 2 failed",
    ]


def test_smoke_reports_an_unreachable_endpoint(two_servers: Served) -> None:
    dead = closed_url()
    proc = two_servers.repo.run(
        "smoke",
        *TIMEOUT,
        "--stack",
        "dev",
        "--client",
        "web",
        "--endpoint",
        two_servers.urls[1],
        "--endpoint",
        dead,
    )
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "smoke dev: 2 endpoint(s) x 1 served client(s)",
        f"ok    {two_servers.urls[1]}  web  web-2026-06 (active), bundle_version "
        f"{two_servers.bundle_version}",
        f"FAIL  {dead}  web  no verified answer: unreachable (connection refused)",
        "smoke dev: 1 ok, 1 failed",
    ]


def _client(*credentials: dict[str, object]) -> ClientFile:
    doc = sample.client_document("ios", "ios", "served", list(credentials))
    return ClientFile.from_dict("credentials/dev/ios.yaml", "dev", doc)


def test_expected_ids_follow_the_rollout_bucket_of_the_probe() -> None:
    day = dt.date(2026, 11, 1)
    active = sample.credential("ios-2026-11", "active", day, activated=day)
    share = bucket("ios", "ios-2026-12", PROBE_INSTALL_ID)
    inside = sample.credential("ios-2026-12", "pending", day, rollout_percent=share + 1)
    outside = sample.credential("ios-2026-12", "pending", day, rollout_percent=share)
    assert expected_ids(_client(inside, active), PROBE_INSTALL_ID) == (
        ["ios-2026-12"],
        "pending, in its rollout for this install",
    )
    assert expected_ids(_client(outside, active), PROBE_INSTALL_ID) == (["ios-2026-11"], "active")


def test_bucket_matches_fixed_vectors_of_the_contract_formula() -> None:
    # int.from_bytes(sha256(f"{client}:{credential_id}:{install_id}").digest()[:8], "big") % 100
    assert bucket("ios", "ios-2026-12", "keyops-smoke-probe") == 49
    assert bucket("android", "android-2026-04", "install-0001") == 93
    assert bucket("web", "web-2027-01", "AbCdEfGh_-12") == 26
    # The vectors published in docs/protocol.md for app developers.
    assert bucket("ios", "ios-2026-12", "install-0001") == 22
    assert bucket("ios", "ios-2026-12", "A1b2C3d4") == 53
    assert bucket("android", "android-2026-12", "zzzzzzzz") == 61


def test_smoke_accepts_a_pending_key_in_its_rollout_after_a_live_reload(
    two_servers: Served,
) -> None:
    repo = two_servers.repo
    document = repo.read_doc("credentials/dev/android.yaml")
    today = dt.date(2026, 11, 27)
    document["credentials"].insert(
        0, sample.credential("android-2026-12", "pending", today, rollout_percent=100)
    )
    repo.write_doc("credentials/dev/android.yaml", document)
    repo.commit("android: roll out a new key to everyone")
    built = repo.run("build", "--stack", "dev", "--out", str(two_servers.bundle))
    assert built.returncode == 0, built.stderr
    for server in two_servers.servers:  # the servers reload the rebuilt bundle by themselves
        wait_for_version(server, two_servers.bundle_version + 1)
    proc = repo.run("smoke", *TIMEOUT, "--stack", "dev", "--client", "android")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = two_servers.bundle_version + 1
    assert proc.stdout.splitlines() == [
        "smoke dev: 2 endpoint(s) x 1 served client(s)",
        *(
            f"ok    {url}  android  android-2026-12 (pending, in its rollout for this install), "
            f"bundle_version {version}"
            for url in two_servers.urls
        ),
        "smoke dev: 2 ok, 0 failed",
    ]
