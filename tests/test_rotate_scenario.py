"""The whole routine rotation of a served client, as the runbook in docs/rotation.md tells it:
rotate -> check passes -> promote -> check -> retire too early (refused) -> retire after the
overlap, with approval -> check passes."""

from __future__ import annotations

import json
from pathlib import Path

from keyops.store import sample
from support.repo import KeyRepo

WEB = "credentials/dev/web.yaml"


def check(keyrepo: KeyRepo, base: str, now: str, *extra: str):  # type: ignore[no-untyped-def]
    return keyrepo.run("check", "--base", base, "--now", now, *extra)


def test_routine_rotation_end_to_end(keyrepo: KeyRepo, tmp_path: Path) -> None:
    key, secret = sample.pusher_hex(), sample.pusher_hex()
    base = keyrepo.git("rev-parse", "HEAD")
    proc = keyrepo.run(
        "rotate",
        "--stack",
        "dev",
        "--client",
        "web",
        "--now",
        "2026-11-27",
        "--rollout-percent",
        "10",
        input=f"{key}\n{secret}\n",
    )
    assert proc.returncode == 0, proc.stderr
    proc = check(keyrepo, base, "2026-11-27")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    keyrepo.commit("rotate web")

    base = keyrepo.git("rev-parse", "HEAD")
    proc = keyrepo.run("promote", "--stack", "dev", "--client", "web", "--now", "2026-11-28")
    assert proc.returncode == 0, proc.stderr
    proc = check(keyrepo, base, "2026-11-28")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    keyrepo.commit("promote web")

    base = keyrepo.git("rev-parse", "HEAD")
    # The dates lie ahead of the real clock: the scenario is pinned to the sample's calendar.
    where = ("--stack", "dev", "--client", "web")
    retire = ("retire", *where, "--id", "web-2026-06", "--allow-future")
    proc = keyrepo.run(*retire, "--now", "2026-12-10")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: the policy engine refuses this change to credentials/dev/web.yaml; nothing was "
        "written. Fix what each finding below names, or choose another move (docs/rotation.md):",
        "  credentials/dev/web.yaml::$.credentials[1].state: error[min-overlap] web-2026-06 has "
        "been retiring for 12 day(s) since 2026-11-28; min_overlap_days is 30: retire it on or "
        "after 2026-12-28 (credential web-2026-06, line 15)",
    ]
    assert keyrepo.git("status", "--porcelain") == ""

    adoption = tmp_path / "adoption.json"
    adoption.write_text(json.dumps({"web-2026-06": 0.4}))
    proc = keyrepo.run(*retire, "--now", "2026-12-28", "--adoption", str(adoption))
    assert proc.returncode == 0, proc.stderr
    assert "  web-2026-06: retiring → retired, adoption 0.4%" in proc.stdout.splitlines()
    head = keyrepo.commit("retire web-2026-06")

    reviews = tmp_path / "reviews.json"
    own = [{"user": {"login": "alice-sec"}, "state": "APPROVED", "commit_id": head}]
    reviews.write_text(json.dumps(own))
    args = ("--adoption", str(adoption), "--author", "alice-sec", "--approvals", str(reviews))
    proc = check(keyrepo, base, "2026-12-28", *args)
    assert proc.returncode == 1  # the author's own approval does not count
    assert "[approval]" in proc.stdout
    reviews.write_text(
        json.dumps([*own, {"user": {"login": "bob-sec"}, "state": "APPROVED", "commit_id": head}])
    )
    proc = check(keyrepo, base, "2026-12-28", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    creds = {c["id"]: c["state"] for c in keyrepo.decrypt(WEB)["credentials"]}
    assert creds == {"web-2026-11": "active", "web-2026-06": "retired"}
