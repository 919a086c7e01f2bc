"""A branch with several lifecycle steps, and pull requests stacked on an unmerged branch."""

from __future__ import annotations

import json
from pathlib import Path

from support.lifecycle import pair
from support.repo import KeyRepo

ANDROID = "credentials/dev/android.yaml"
NO_GH = {"PATH": "/usr/bin:/bin"}  # no gh: keyops prints the body and the exact commands


def _step(keyrepo: KeyRepo, *args: str, input: str | None = None) -> str:
    proc = keyrepo.run(*args, "--allow-future", input=input)
    assert proc.returncode == 0, proc.stderr
    return keyrepo.commit(" ".join(args[:1]))[:12]


def test_rotate_promote_retire_on_one_branch_is_explained(keyrepo: KeyRepo, tmp_path: Path) -> None:
    keyrepo.git("switch", "--quiet", "-c", "rotate-android")
    where = ("--stack", "dev", "--client", "android")
    key, secret = pair()
    rotated = _step(keyrepo, "rotate", *where, "--now", "2026-11-27", input=f"{key}\n{secret}\n")
    promoted = _step(keyrepo, "promote", *where, "--now", "2026-11-28")
    adoption = tmp_path / "adoption.json"
    adoption.write_text(json.dumps({"android-2026-03": 0.2}))
    retired = _step(
        keyrepo, "retire", *where, "--id", "android-2026-03", "--now", "2027-01-05",
        "--adoption", str(adoption),
    )  # fmt: skip
    proc = keyrepo.run("check", "--base", "main", "--now", "2027-01-05", "--format", "json")
    assert proc.returncode == 1
    transitions = {
        f["credential_id"]: f["message"]
        for f in json.loads(proc.stdout)["findings"]
        if f["rule"] == "transition"
    }
    advice = (
        "merge them one pull request at a time, so that each step is reviewed and checked on "
        "its own"
    )
    assert transitions == {
        "android-2026-11": (
            "android-2026-11 is new but starts as active; a new credential starts as pending; it "
            "may start as active only as its client's first credential, or in the same change "
            "that revokes the client's active credential (the emergency path). This branch does "
            f"it in 2 steps, each valid on its own (added as pending in {rotated}, pending → "
            f"active in {promoted}): {advice}"
        ),
        "android-2026-03": (
            "android-2026-03: active → retired is not allowed; from active a credential may move "
            "to retiring or revoked. This branch does it in 2 steps, each valid on its own "
            f"(active → retiring in {promoted}, retiring → retired in {retired}): {advice}"
        ),
    }


def test_a_transition_no_step_explains_is_left_as_it_is(keyrepo: KeyRepo) -> None:
    # Skipping retiring in one commit is not a sequence of valid steps.
    document = keyrepo.read_doc(ANDROID)
    document["credentials"][0].update(state="retired", retiring_since="2026-11-27")
    document["credentials"][0]["retired"] = "2026-11-27"
    keyrepo.write_doc(ANDROID, document)
    keyrepo.commit("skip retiring")
    proc = keyrepo.run("check", "--base", "HEAD~1", "--now", "2026-11-27", "--format", "json")
    [message] = [
        f["message"] for f in json.loads(proc.stdout)["findings"] if f["rule"] == "transition"
    ]
    assert message == (
        "android-2026-03: active → retired is not allowed; from active a credential may move to "
        "retiring or revoked"
    )


def test_a_pull_request_stacked_on_an_unmerged_branch(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    where = ("--stack", "dev", "--client", "web", "--now", "2026-11-27", "--pr")
    first = keyrepo.run("rotate", *where, input=f"{key}\n{secret}\n", env=NO_GH)
    assert first.returncode == 0, first.stderr
    assert "note: this pull request is stacked" not in first.stdout
    base_branch = "keyops/dev-web-rotate-web-2026-11"
    base_sha = keyrepo.git("rev-parse", "HEAD")
    proc = keyrepo.run("promote", *where, env=NO_GH)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert (
        f"note: this pull request is stacked on {base_branch}, which is not merged into main "
        f"yet: its keyops check compares against {base_branch}. Merge that one first (one step "
        "per pull request)."
    ) in lines
    # The body's check and the printed command name the same base.
    assert (
        f"**✅ passes**: 0 error(s), 1 warning(s) in 5 file(s) against "
        f"`{base_branch} ({base_sha[:12]})`."
    ) in lines
    assert "- `dev/web`: web-2026-11: pending → active" in lines
    assert lines[-1].startswith(
        f"  gh pr create --base {base_branch} --head keyops/dev-web-promote-web-2026-11 "
    )
