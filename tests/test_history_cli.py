"""`keyops history`: lifecycle transitions from git history, read without any decryption key."""

from __future__ import annotations

import json

from support.lifecycle import pair, revoke, rotate
from support.repo import KeyRepo


def test_history_lists_transitions_from_git_without_a_key(keyrepo: KeyRepo) -> None:
    key, secret = pair()
    assert rotate(keyrepo, client="web", key=key, secret=secret).returncode == 0
    keyrepo.commit("rotate web")
    assert (
        keyrepo.run(
            "promote", "--stack", "dev", "--client", "web", "--now", "2026-11-30"
        ).returncode
        == 0
    )
    keyrepo.commit("promote web")
    proc = keyrepo.run(
        "history", "--stack", "dev", "--client", "web", "--format", "json", key=False
    )
    assert proc.returncode == 0, proc.stderr
    events = [(e["credential"], e["transition"], e["author"]) for e in json.loads(proc.stdout)]
    assert events == [
        ("web-2026-06", "added as active", "Test Author"),
        ("app_auth web-build-2026a", "added as active", "Test Author"),
        ("web-2026-11", "added as pending", "Test Author"),
        ("web-2026-11", "pending → active", "Test Author"),
        ("web-2026-06", "active → retiring", "Test Author"),
    ]
    text = keyrepo.run("history", "--stack", "dev", "--client", "web", key=False).stdout
    assert text.splitlines()[0].split() == ["DATE", "COMMIT", "AUTHOR", "CREDENTIAL", "TRANSITION"]


def test_history_shows_revocation_reason_and_removal(keyrepo: KeyRepo) -> None:
    proc = revoke(keyrepo, "ios", "ios-2026-05", "leaked", "INC-1")
    assert proc.returncode == 0, proc.stderr
    keyrepo.commit("revoke")
    proc = keyrepo.run(
        "history", "--stack", "dev", "--client", "ios", "--format", "json", key=False
    )
    last = json.loads(proc.stdout)[-1]
    assert (last["credential"], last["transition"]) == (
        "ios-2026-05",
        "retiring → revoked (reason: leaked; incident: INC-1)",
    )
    assert last["commit"] == keyrepo.git("rev-parse", "HEAD")[:12]


def test_history_of_an_unknown_client_is_an_error(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("history", "--stack", "dev", "--client", "tvos", key=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: client 'tvos' does not exist in stack 'dev' (no credentials/dev/tvos.yaml). "
        "Known clients of dev: android, ios, server, web.\n"
    )


def test_history_of_a_file_never_committed_says_so(keyrepo: KeyRepo) -> None:
    keyrepo.write_bytes(
        "credentials/dev/tvos.yaml", keyrepo.path("credentials/dev/ios.yaml").read_bytes()
    )
    proc = keyrepo.run("history", "--stack", "dev", "--client", "tvos", key=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: credentials/dev/tvos.yaml has no history in git. Check --stack and --client; "
        "history covers committed changes only.\n"
    )
