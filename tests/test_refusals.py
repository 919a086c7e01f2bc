"""Lifecycle commands refuse a move in their own terms and name the next command.

On the sample: android-2026-03 is android's only, active credential; ios-2026-11 is active and
ios-2026-05 retiring; web-2026-06 is web's only, active credential.
"""

from __future__ import annotations

import pytest

from support.lifecycle import pair, revoke, rotate
from support.repo import KeyRepo

WEB = "credentials/dev/web.yaml"


def run(keyrepo: KeyRepo, *args: str):  # type: ignore[no-untyped-def]
    before = keyrepo.git("status", "--porcelain")
    proc = keyrepo.run(*args, "--now", "2026-11-27")
    if proc.returncode != 0:
        assert keyrepo.git("status", "--porcelain") == before, "a refusal wrote something"
    return proc


def test_retire_an_active_credential_names_promote_or_rotate(keyrepo: KeyRepo) -> None:
    proc = run(
        keyrepo, "retire", "--stack", "dev", "--client", "android", "--id", "android-2026-03"
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (
        "error: android-2026-03 is active; it has no successor yet: add one (keyops rotate "
        "--stack dev --client android), then promote it (keyops promote --stack dev --client "
        "android). Promoting the successor starts android-2026-03's retirement; retire it once "
        "it has been retiring for 30 days. Nothing was written.\n"
    )
    key, secret = pair()
    assert rotate(keyrepo, key=key, secret=secret, client="android").returncode == 0
    keyrepo.commit("rotate android")
    proc = run(
        keyrepo, "retire", "--stack", "dev", "--client", "android", "--id", "android-2026-03"
    )
    assert proc.stderr == (
        "error: android-2026-03 is active; promote its successor first (keyops promote --stack "
        "dev --client android --id android-2026-11). Promoting the successor starts "
        "android-2026-03's retirement; retire it once it has been retiring for 30 days. Nothing "
        "was written.\n"
    )


def test_retire_a_pending_or_revoked_credential(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    assert rotate(keyrepo, key=key, secret=secret, client="android").returncode == 0
    keyrepo.commit("rotate android")
    proc = run(
        keyrepo, "retire", "--stack", "dev", "--client", "android", "--id", "android-2026-11"
    )
    assert (proc.returncode, proc.stderr) == (
        1,
        "error: android-2026-11 is pending: it was never active, so there is nothing to retire. "
        "To drop it, revoke it (keyops revoke --stack dev --client android --id android-2026-11 "
        "--reason TEXT --incident REF). Nothing was written.\n",
    )
    assert revoke(keyrepo, "android", "android-2026-11", "never used", "INC-9").returncode == 0
    keyrepo.commit("revoke")
    proc = run(
        keyrepo, "retire", "--stack", "dev", "--client", "android", "--id", "android-2026-11"
    )
    assert (proc.returncode, proc.stderr) == (
        1,
        "error: android-2026-11 was revoked on 2026-11-27 (INC-9); a revoked credential stays "
        "revoked. Nothing to do. Nothing was written.\n",
    )


@pytest.mark.parametrize(
    ("line", "code", "message"),
    [
        (
            ["promote", "--client", "ios", "--id", "ios-2026-11"],
            1,
            "ios-2026-11 is already active. To replace it, add its successor (keyops rotate "
            "--stack dev --client ios) and promote that one. Nothing was written.",
        ),
        (
            ["promote", "--client", "ios", "--id", "ios-2026-05"],
            1,
            "ios-2026-05 is retiring, and a credential never becomes active again. Add a new "
            "credential instead (keyops rotate --stack dev --client ios), then promote it. "
            "Nothing was written.",
        ),
        (
            ["rollout", "--client", "ios", "--id", "ios-2026-11", "--percent", "50"],
            1,
            "ios-2026-11 is active: it is already served to every install, and only a pending "
            "credential has a rollout share. To roll out a new key, add it with a share (keyops "
            "rotate --stack dev --client ios --rollout-percent N). Nothing was written.",
        ),
        (
            ["retire", "--client", "ios", "--id", "ios-2026-5"],
            2,
            "client ios of stack dev has no credential 'ios-2026-5'. Did you mean "
            "'ios-2026-05'? Known credentials of ios: ios-2026-11, ios-2026-05.",
        ),
    ],
    ids=["promote-active", "promote-retiring", "rollout-active", "unknown-id"],
)
def test_a_move_the_state_does_not_allow(
    keyrepo: KeyRepo, line: list[str], code: int, message: str
) -> None:
    proc = run(keyrepo, line[0], "--stack", "dev", *line[1:])
    assert (proc.returncode, proc.stdout, proc.stderr) == (code, "", f"error: {message}\n")


def test_the_emergency_path_step_by_step(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    # 1. Revoking the only active key, with no successor: the command says what to do.
    proc = revoke(keyrepo, "web", "web-2026-06", "secret pasted in a public gist", "INC-2041")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (
        "error: web-2026-06 is the only active credential of web, and there is no successor to "
        "put in its place. The emergency path: add the replacement (keyops rotate --stack dev "
        "--client web), then revoke and promote in one change (keyops revoke --stack dev "
        "--client web --id web-2026-06 --reason TEXT --incident REF --promote-pending). Nothing "
        "was written.\n"
    )
    assert keyrepo.git("status", "--porcelain") == ""
    # 2. keyops rotate, as told; nothing is committed.
    key, secret = pair()
    assert rotate(keyrepo, key=key, secret=secret, client="web").returncode == 0
    # 3. keyops revoke --promote-pending accepts the file rotate just wrote: no --allow-dirty.
    proc = revoke(
        keyrepo, "web", "web-2026-06", "secret pasted in a public gist", "INC-2041",
        "--promote-pending",
    )  # fmt: skip
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines()[:4] == [
        "updated credentials/dev/web.yaml (verified: decrypts to the intended content)",
        "  web-2026-06: active → revoked (INC-2041)",
        "  web-2026-11: pending → active (activated 2026-11-27)",
        "  approval: this change needs an approving review from a configured approver other than "
        "its author; keyops check enforces it on the pull request",
    ]
    assert (
        "  note: this builds on the uncommitted change keyops rotate made to "
        "credentials/dev/web.yaml; both are part of this change"
    ) in proc.stdout.splitlines()
    # The whole emergency is one valid change against the base: the new key starts active.
    check = keyrepo.run("check", "--base", base, "--now", "2026-11-27")
    assert check.returncode == 0, check.stdout
    assert "error[" not in check.stdout


def test_a_hand_edit_after_keyops_wrote_makes_the_file_dirty_again(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    assert rotate(keyrepo, key=key, secret=secret, client="web").returncode == 0
    path = keyrepo.path(WEB)
    path.write_text(path.read_text().replace("client: web\n", "client: web # edited\n", 1))
    proc = revoke(keyrepo, "web", "web-2026-06", "leak", "INC-1", "--promote-pending")
    assert (proc.returncode, proc.stderr) == (
        2,
        "error: credentials/dev/web.yaml has uncommitted changes. Commit or discard them first "
        "(git diff -- FILE shows them), or pass --allow-dirty to build on top of them.\n",
    )
