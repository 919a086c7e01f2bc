"""`keyops rotate` and the other lifecycle commands, run as a user would: real git, real sops."""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path

from keyops.store import sample
from support.lifecycle import pair, revoke, rotate
from support.repo import KeyRepo

IOS = "credentials/dev/ios.yaml"
ANDROID = "credentials/dev/android.yaml"


def test_rotate_adds_a_pending_credential_and_keeps_the_layout(keyrepo: KeyRepo) -> None:
    before = keyrepo.decrypt(IOS)
    # Comments a team keeps in the file must survive every edit.
    plain = b"# owner: mobile team\n" + sample.dump_yaml(before).replace(
        b"cluster: eu\n", b"cluster: eu  # never changes\n"
    )
    keyrepo.write_bytes(IOS, keyrepo.sops().encrypt(plain, IOS))
    keyrepo.commit("comments")
    key, secret = pair()
    proc = rotate(
        keyrepo, "--rollout-percent", "10", "--min-app-version", "5.3.0", key=key, secret=secret
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        f"updated {IOS} (verified: decrypts to the intended content)",
        "  ios-2026-11-2: new pending credential (rollout 10%, min app version 5.3.0)",
    ]
    assert proc.stderr == ""
    after = keyrepo.decrypt(IOS)
    assert after["credentials"][0] == {
        "id": "ios-2026-11-2",  # ios-2026-11 is taken in the sample, so the suffix applies
        "state": "pending",
        "key": key,
        "secret": secret,
        "created": "2026-11-27",
        "min_app_version": "5.3.0",
        "rollout_percent": 10,
    }
    assert after["credentials"][1:] == before["credentials"]
    assert {k: v for k, v in after.items() if k != "credentials"} == {
        k: v for k, v in before.items() if k != "credentials"
    }
    text = keyrepo.path(IOS).read_text()
    # The comments and the key order survive the edit.
    assert text.startswith("# owner: mobile team\n")
    # sops moves an end-of-line comment onto its own line; keyops keeps it where sops put it.
    assert "    # never changes\n    cluster: eu\n" in text
    assert list(after) == list(before)
    assert key not in text and secret not in text
    assert keyrepo.git("status", "--porcelain") == f"M {IOS}"
    assert keyrepo.run("validate").returncode == 0


def test_rotate_reads_from_file_and_uses_the_default_id(keyrepo: KeyRepo, tmp_path: Path) -> None:
    key, secret = pair()
    source = tmp_path / "pair.txt"
    source.write_text(f"{key}\n{secret}\n")
    source.chmod(0o600)
    proc = keyrepo.run(
        "rotate",
        "--stack",
        "dev",
        "--client",
        "android",
        "--now",
        "2026-12-02",
        "--from-file",
        str(source),
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    cred = keyrepo.decrypt(ANDROID)["credentials"][0]
    assert (cred["id"], cred["state"], cred["key"], cred["secret"]) == (
        "android-2026-12",
        "pending",
        key,
        secret,
    )


def test_a_from_file_others_can_read_gets_a_warning(keyrepo: KeyRepo, tmp_path: Path) -> None:
    key, secret = pair()
    source = tmp_path / "pair.txt"
    source.write_text(f"{key}\n{secret}\n")
    source.chmod(0o644)
    proc = rotate(keyrepo, "--from-file", str(source), key="", secret="")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (
        f"warning: --from-file {source} is readable by other users (mode 0644); a new secret "
        "belongs in a file only you can read (chmod 600, or umask 077 before writing it). "
        "Delete it once keyops has read it.\n"
    )
    secret_file = tmp_path / "build.secret"
    secret_file.write_text(sample.app_auth_secret() + "\n")
    secret_file.chmod(0o640)
    proc = keyrepo.run(
        "app-auth", "rotate", "--stack", "dev", "--client", "web", "--now", "2026-11-27",
        "--secret-from-file", str(secret_file),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(
        f"warning: --secret-from-file {secret_file} is readable by other users (mode 0640);"
    )


def test_rotate_refuses_a_malformed_key_without_echoing_it(keyrepo: KeyRepo) -> None:
    bad = "ABCDEF0123456789ABCD"
    proc = rotate(keyrepo, key=bad, secret=sample.pusher_hex())
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: the key is not in Pusher's format: expected 20 lowercase hexadecimal characters, "
        "got 20 characters including upper-case letters. Copy the key again from the Pusher "
        "dashboard (App Keys).\n"
    )
    assert bad not in proc.stdout + proc.stderr
    assert keyrepo.git("status", "--porcelain") == ""


def test_rotate_refuses_wrong_line_count(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("rotate", "--stack", "dev", "--client", "ios", input="only-one-line\n")
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: stdin must hold exactly two non-empty lines, the key then the secret; found 1."
    )
    assert "only-one-line" not in proc.stderr


def test_rotate_refuses_a_key_used_anywhere_in_the_repository(keyrepo: KeyRepo) -> None:
    android_key = keyrepo.decrypt(ANDROID)["credentials"][0]["key"]
    proc = rotate(keyrepo, key=android_key, secret=sample.pusher_hex())
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == (
        f"error: the policy engine refuses this change to {IOS}; nothing was written. Fix what "
        "each finding below names, or choose another move (docs/rotation.md):"
    )
    assert len(lines) == 2
    assert "error[unique-key] the key of " in lines[1]
    assert "android-2026-03" in lines[1] and "ios-2026-11-2" in lines[1]
    assert android_key not in proc.stderr
    assert keyrepo.git("status", "--porcelain") == ""


def test_rotate_refuses_a_taken_id(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    proc = rotate(keyrepo, "--id", "android-2026-03", key=key, secret=secret)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: credential id 'android-2026-03' is already used in stack dev. Ids are unique "
        "within a stack and never reused; pick another --id or omit it for the default.\n"
    )


def test_edit_refuses_a_dirty_file_unless_allowed(keyrepo: KeyRepo) -> None:
    plain = b"# a hand edit\n" + sample.dump_yaml(keyrepo.decrypt(IOS))
    keyrepo.write_bytes(IOS, keyrepo.sops().encrypt(plain, IOS))
    key, secret = pair()
    proc = rotate(keyrepo, key=key, secret=secret)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {IOS} has uncommitted changes. Commit or discard them first (git diff -- FILE "
        "shows them), or pass --allow-dirty to build on top of them.\n"
    )
    proc = rotate(keyrepo, "--allow-dirty", key=key, secret=secret)
    assert proc.returncode == 0, proc.stderr
    assert keyrepo.path(IOS).read_text().startswith("# a hand edit\n")


def test_unknown_client_is_named(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("promote", "--stack", "dev", "--client", "tvos")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: client 'tvos' does not exist in stack 'dev' (no credentials/dev/tvos.yaml). "
        "Known clients of dev: android, ios, server, web.\n"
    )


def test_promote_without_pending_is_refused(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("promote", "--stack", "dev", "--client", "web")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: there is no pending credential to promote. Add one first with keyops rotate, "
        "or name the credential with --id.\n"
    )


def test_promote_moves_pending_to_active_and_active_to_retiring(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    assert rotate(keyrepo, client="web", key=key, secret=secret).returncode == 0
    keyrepo.commit("rotate web")
    proc = keyrepo.run("promote", "--stack", "dev", "--client", "web", "--now", "2026-11-30")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "updated credentials/dev/web.yaml (verified: decrypts to the intended content)",
        "  web-2026-11: pending → active (activated 2026-11-30)",
        "  web-2026-06: active → retiring (retiring_since 2026-11-30)",
        "next: retire web-2026-06 after 2026-12-30, once adoption is below 1% (keyops retire "
        "--stack dev --client web --id web-2026-06)",
    ]
    creds = {c["id"]: c for c in keyrepo.decrypt("credentials/dev/web.yaml")["credentials"]}
    assert creds["web-2026-11"]["state"] == "active"
    assert creds["web-2026-11"]["activated"] == "2026-11-30"
    assert creds["web-2026-06"]["state"] == "retiring"
    assert creds["web-2026-06"]["retiring_since"] == "2026-11-30"
    # Field order follows docs/file-format.md: retiring_since right after activated.
    assert list(creds["web-2026-06"]) == [
        "id",
        "state",
        "key",
        "secret",
        "created",
        "activated",
        "retiring_since",
    ]


def test_rollout_changes_the_share_and_refuses_out_of_range(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    assert rotate(keyrepo, "--rollout-percent", "5", key=key, secret=secret).returncode == 0
    keyrepo.commit("rotate")
    proc = keyrepo.run(
        "rollout", "--stack", "dev", "--client", "ios", "--id", "ios-2026-11-2", "--percent", "50"
    )
    assert proc.returncode == 0, proc.stderr
    assert "  ios-2026-11-2: rollout 5% → 50%" in proc.stdout.splitlines()
    keyrepo.commit("rollout")
    proc = keyrepo.run(
        "rollout", "--stack", "dev", "--client", "ios", "--id", "ios-2026-11-2", "--percent", "150"
    )
    assert (proc.returncode, proc.stderr) == (
        2,
        "error: --percent 150 is not a share of installs. Use a whole number from 1 to 100.\n",
    )
    assert keyrepo.decrypt(IOS)["credentials"][0]["rollout_percent"] == 50


def test_revoke_active_with_promote_pending(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    assert rotate(keyrepo, client="web", key=key, secret=secret).returncode == 0
    keyrepo.commit("rotate web")
    args = (
        "revoke",
        "--stack",
        "dev",
        "--client",
        "web",
        "--id",
        "web-2026-06",
        "--reason",
        "key leaked in a public gist",
        "--incident",
        "INC-4711",
        "--now",
        "2026-11-28",
    )
    refused = keyrepo.run(*args, "--no-promote-pending")
    assert (refused.returncode, refused.stderr) == (
        1,
        "error: web-2026-06 is the only active credential of web; revoking it alone would leave "
        "the client without a key. Promote web-2026-11 in the same change: rerun with "
        "--promote-pending. Nothing was written.\n",
    )
    assert keyrepo.git("status", "--porcelain") == ""
    proc = keyrepo.run(*args, "--promote-pending")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:3] == [
        "  web-2026-06: active → revoked (INC-4711)",
        "  web-2026-11: pending → active (activated 2026-11-28)",
    ]
    creds = {c["id"]: c for c in keyrepo.decrypt("credentials/dev/web.yaml")["credentials"]}
    assert creds["web-2026-06"]["state"] == "revoked"
    assert creds["web-2026-06"]["reason"] == "key leaked in a public gist"
    assert creds["web-2026-06"]["incident"] == "INC-4711"
    assert creds["web-2026-11"]["state"] == "active"


def test_revoke_retiring_needs_no_overlap(keyrepo: KeyRepo) -> None:
    proc = revoke(keyrepo, "ios", "ios-2026-05", "device farm compromise", "INC-9")
    assert proc.returncode == 0, proc.stderr
    assert "approval: this change needs an approving review" in proc.stdout
    assert keyrepo.decrypt(IOS)["credentials"][1]["state"] == "revoked"


def test_app_auth_rotate_generates_a_secret_only_into_a_private_file(
    keyrepo: KeyRepo, tmp_path: Path
) -> None:
    out = tmp_path / "secret.txt"
    proc = keyrepo.run(
        "app-auth",
        "rotate",
        "--stack",
        "dev",
        "--client",
        "ios",
        "--now",
        "2026-11-27",
        "--secret-out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    secret = out.read_text().strip()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert len(secret) == 43 and secret not in proc.stdout + proc.stderr
    auth = keyrepo.decrypt(IOS)["app_auth"]
    assert [(a["kid"], a["state"]) for a in auth] == [
        ("ios-build-2026b", "active"),
        ("ios-build-2026a", "active"),
    ]
    assert auth[0]["secret"] == secret
    keyrepo.commit("app auth")
    proc = keyrepo.run(
        "app-auth",
        "retire",
        "--stack",
        "dev",
        "--client",
        "ios",
        "--kid",
        "ios-build-2026a",
        "--now",
        "2026-11-28",
    )
    assert proc.returncode == 0, proc.stderr
    auth = keyrepo.decrypt(IOS)["app_auth"]
    assert auth[1] == {**auth[1], "state": "retired", "retired": "2026-11-28"}


def test_app_auth_is_refused_for_a_server_client(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("app-auth", "rotate", "--stack", "dev", "--client", "server")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: client 'server' is delivered 'secret-store'; app_auth secrets exist only for "
        "served clients. Use app-auth on a client with delivery: served.\n"
    )


def test_pr_commits_on_a_branch_and_prints_the_gh_command(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    env = {"PATH": "/usr/bin:/bin"}  # no gh here: keyops must print the exact command instead
    proc = keyrepo.run(
        "rotate",
        "--stack",
        "dev",
        "--client",
        "ios",
        "--now",
        "2026-11-27",
        "--pr",
        input=f"{key}\n{secret}\n",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    branch = "keyops/dev-ios-rotate-ios-2026-11-2"
    assert keyrepo.git("rev-parse", "--abbrev-ref", "HEAD") == branch
    assert keyrepo.git("log", "-1", "--format=%s") == (
        "chore(credentials): rotate dev/ios ios-2026-11-2"
    )
    assert keyrepo.git("status", "--porcelain") == ""
    body_file = keyrepo.root / ".git" / "keyops" / f"pr-{branch.replace('/', '-')}.md"
    body = body_file.read_text()
    assert (
        "## What changes\n`credentials/dev/ios.yaml` (dev/ios):\n- ios-2026-11-2: new pending"
        in body
    )
    assert "## keyops check" in body and "## Reviewers must verify" in body
    assert "## Next step\nafter merge, raise the rollout" in body
    assert key not in body and secret not in body and "ENC[" not in body
    assert proc.stdout.splitlines()[-3:] == [
        "gh is not available or not authenticated; open the pull request with:",
        f"  git push -u origin {branch}",
        f"  gh pr create --base main --head {branch} --title 'chore(credentials): rotate dev/ios "
        f"ios-2026-11-2' --body-file {body_file}",
    ]


def test_status_hints_the_next_step_after_each_move(keyrepo: KeyRepo) -> None:
    for client, extra in (("ios", ("--rollout-percent", "5")), ("web", ()), ("server", ())):
        key, secret = pair()
        assert rotate(keyrepo, *extra, client=client, key=key, secret=secret).returncode == 0
    proc = keyrepo.run("status", "--now", "2026-11-27", "--format", "json", key=False)
    hints = {r["credential"]: r["next_action"] for r in json.loads(proc.stdout)["rows"]}
    assert hints["ios-2026-11-2"] == "promote when its rollout is healthy"
    assert hints["web-2026-11"] == "start a rollout (keyops rollout) or promote"
    assert hints["server-2026-11"] == "deploy the auth keyring, move servers to it, then promote"
    assert hints["ios-2026-05"] == "retire from 2026-12-03"


def test_revoke_asks_on_a_terminal_whether_to_promote(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    assert rotate(keyrepo, client="web", key=key, secret=secret).returncode == 0
    keyrepo.commit("rotate web")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keyops",
            "revoke",
            "--stack",
            "dev",
            "--client",
            "web",
            "--id",
            "web-2026-06",
            "--reason",
            "leaked key",
            "--incident",
            "INC-7",
            "--now",
            "2026-11-28",
        ],
        cwd=keyrepo.root,
        env=keyrepo.env(),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    assert proc.stderr is not None
    prompt = b""
    while not prompt.endswith(b"[y/N] "):
        chunk = os.read(proc.stderr.fileno(), 1024)
        assert chunk, f"no prompt; got {prompt!r}"
        prompt += chunk
    assert (
        prompt == b"web-2026-06 is active. Promote pending web-2026-11 in the same change? [y/N] "
    )
    os.write(master, b"y\n")
    out, _ = proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode == 0
    assert b"  web-2026-11: pending \xe2\x86\x92 active (activated 2026-11-28)\n" in out
