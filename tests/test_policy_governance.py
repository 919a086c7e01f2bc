"""A pull request that changes the rules themselves needs the same second person."""

from __future__ import annotations

import json
from pathlib import Path

from support.repo import KeyRepo


def _reviews(tmp_path: Path, login: str, sha: str) -> Path:
    path = tmp_path / "reviews.json"
    path.write_text(json.dumps([{"user": {"login": login}, "state": "APPROVED", "commit_id": sha}]))
    return path


def test_a_new_waiver_needs_approval(keyrepo: KeyRepo, tmp_path: Path) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    keyrepo.write_bytes(
        "policies/waivers.yaml",
        b"waivers:\n"
        b"  - rule: min-overlap\n"
        b"    stack: dev\n"
        b"    client: ios\n"
        b"    credential: ios-2026-05\n"
        b"    reason: the old iOS build is already blocked at the app store\n"
        b"    approver: alice-sec\n"
        b'    expires: "2026-12-31"\n',
    )
    head = keyrepo.commit("waive the overlap")
    proc = keyrepo.run("check", "--base", base, "--now", "2026-11-27")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "warning[approval] a change of policies/waivers.yaml (it governs these checks) needs an "
        "APPROVED review from one of: alice-sec, bob-sec, security-oncall (not the author)"
    ) in proc.stdout
    # The author cannot approve it; another approver can.
    own = keyrepo.run(
        "check",
        "--base",
        base,
        "--now",
        "2026-11-27",
        "--author",
        "alice-sec",
        "--approvals",
        str(_reviews(tmp_path, "alice-sec", head)),
    )
    assert own.returncode == 1
    assert "error[approval] a change of policies/waivers.yaml" in own.stdout
    assert "alice-sec is the author" in own.stdout
    other = keyrepo.run(
        "check",
        "--base",
        base,
        "--now",
        "2026-11-27",
        "--author",
        "alice-sec",
        "--approvals",
        str(_reviews(tmp_path, "bob-sec", head)),
    )
    assert other.returncode == 0, other.stdout


def test_loosening_a_threshold_needs_approval(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    settings = keyrepo.path("policies/keyops.yaml")
    settings.write_text(settings.read_text().replace("min_overlap_days: 30", "min_overlap_days: 1"))
    keyrepo.commit("shorter overlap")
    proc = keyrepo.run("check", "--base", base, "--now", "2026-11-27")
    assert "warning[approval] a change of policies/keyops.yaml (it governs these checks)" in (
        proc.stdout
    )


def test_unchanged_governance_needs_nothing(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    keyrepo.commit("empty")
    proc = keyrepo.run("check", "--base", base, "--now", "2026-11-27")
    assert proc.returncode == 0
    assert "approval" not in proc.stdout
