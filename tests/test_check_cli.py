"""``keyops check`` end to end: real git repositories, real sops files, the real CLI.

Each test edits the committed sample (tests/conftest.py ``keyrepo``) with sops, commits the
change, and runs ``keyops check --base <initial commit>`` as a subprocess, asserting exit codes
and the exact rule ids and messages. Exhaustive per-rule edge cases live in
tests/test_policy_rules.py (in memory); here every rule fails at least once on real files, and
a real rotation passes every rule.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from keyops.store import sample
from support.repo import KeyRepo, new_identity, sops_rules

Doc = dict[str, Any]
Row = tuple[str, str, str | None, str]

IOS = "credentials/dev/ios.yaml"
ANDROID = "credentials/dev/android.yaml"
WEB = "credentials/dev/web.yaml"
SERVER = "credentials/dev/server.yaml"
STACK = "credentials/dev/_stack.yaml"


def edit(repo: KeyRepo, rel: str, change: Callable[[Doc], None]) -> None:
    doc = repo.read_doc(rel)
    doc.pop("sops", None)
    change(doc)
    repo.write_doc(rel, doc)


def rows(
    proc: subprocess.CompletedProcess[str], *, ignore: tuple[str, ...] = ("max-age",)
) -> list[Row]:
    assert proc.stderr == "", proc.stderr
    data = json.loads(proc.stdout)
    return [
        (f["rule"], f["severity"], f["credential_id"], f["message"])
        for f in data["findings"]
        if f["rule"] not in ignore
    ]


def check(
    repo: KeyRepo, base: str, *args: str, now: str = "2026-11-27"
) -> subprocess.CompletedProcess[str]:
    return repo.run("check", "--base", base, "--now", now, "--format", "json", *args)


def add_pending(doc: Doc) -> None:
    doc["credentials"].insert(
        0, sample.credential("ios-2026-12", "pending", sample_today(), rollout_percent=10)
    )


def sample_today() -> Any:
    import datetime as dt

    return dt.date(2026, 11, 27)


def retire_old_ios(doc: Doc) -> None:
    doc["credentials"][1]["state"] = "retired"
    doc["credentials"][1]["retired"] = "2026-12-10"


def reviews_file(repo: KeyRepo, reviews: list[tuple[str, str, str]]) -> str:
    path = repo.root.parent / "reviews.json"
    path.write_text(
        json.dumps(
            [
                {
                    "id": i,
                    "user": {"login": login, "type": "User"},
                    "state": state,
                    "commit_id": commit,
                    "submitted_at": f"2026-12-10T10:0{i}:00Z",
                }
                for i, (login, state, commit) in enumerate(reviews)
            ]
        )
    )
    return str(path)


#: The note the adoption rule adds to an accepted retirement (the evidence behind it).
BARE_NOTE: Row = (
    "adoption",
    "note",
    "ios-2026-05",
    "ios-2026-05 is used by 0.4% of installs, at or below max_retire_adoption_percent 1% "
    "(evidence: a bare percentage, with no method, window or source behind it)",
)


def adoption_file(repo: KeyRepo, shares: dict[str, float]) -> str:
    path = repo.root.parent / "adoption.json"
    path.write_text(json.dumps(shares))
    return str(path)


# -- passing changes ----------------------------------------------------------------------------


def test_unchanged_repository_passes(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    proc = check(keyrepo, base)
    assert proc.returncode == 0
    assert rows(proc, ignore=()) == [
        (
            "max-age",
            "warning",
            "server-2026-01",
            "server-2026-01 is 319 days old (active); rotate before it is 365 days old "
            "(warn_age_days is 300)",
        )
    ]


def test_starting_a_rotation_passes_every_rule(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    edit(keyrepo, IOS, add_pending)
    keyrepo.commit("rotate ios")
    proc = check(keyrepo, base)
    assert proc.returncode == 0, proc.stdout
    assert rows(proc) == []


def test_a_retirement_with_overlap_evidence_and_approval_passes(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    edit(keyrepo, IOS, retire_old_ios)
    head = keyrepo.commit("retire ios-2026-05")
    approvals = reviews_file(
        keyrepo,
        [("alice-sec", "CHANGES_REQUESTED", base), ("alice-sec", "APPROVED", head)],
    )
    adoption = adoption_file(keyrepo, {"ios-2026-05": 0.4})
    args = ("--adoption", adoption, "--approvals", approvals, "--author", "dev-person")
    proc = check(keyrepo, base, *args, now="2026-12-04")
    assert proc.returncode == 0, proc.stdout
    assert rows(proc) == [BARE_NOTE]
    md = keyrepo.run("check", "--base", base, "--now", "2026-12-04", "--format", "markdown", *args)
    assert md.returncode == 0
    assert (
        "- `dev/ios`: ios-2026-05: retiring → retired (overlap 31 days, adoption 0.4%)" in md.stdout
    )
    assert "### Approvals still needed\n\nNone.\n" in md.stdout


def test_without_approvals_the_needed_approval_is_a_warning(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    edit(keyrepo, IOS, retire_old_ios)
    keyrepo.commit("retire ios-2026-05")
    adoption = adoption_file(keyrepo, {"ios-2026-05": 0.4})
    proc = check(keyrepo, base, "--adoption", adoption, now="2026-12-04")
    assert proc.returncode == 0
    message = (
        "ios-2026-05: retiring → retired needs an APPROVED review from one of: alice-sec, "
        "bob-sec, security-oncall (not the author)"
    )
    assert rows(proc) == [BARE_NOTE, ("approval", "warning", "ios-2026-05", message)]
    md = keyrepo.run(
        "check", "--base", base, "--now", "2026-12-04", "--adoption", adoption,
        "--format", "markdown",
    )  # fmt: skip
    assert f"### Approvals still needed\n\n- {message}\n" in md.stdout


def test_an_approval_of_an_older_commit_does_not_count(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    edit(keyrepo, IOS, retire_old_ios)
    keyrepo.commit("retire ios-2026-05")
    approvals = reviews_file(keyrepo, [("bob-sec", "APPROVED", base)])
    adoption = adoption_file(keyrepo, {"ios-2026-05": 0.4})
    proc = check(
        keyrepo, base, "--approvals", approvals, "--author", "dev-person", "--adoption", adoption,
        now="2026-12-04",
    )  # fmt: skip
    assert proc.returncode == 1
    head = keyrepo.git("rev-parse", "HEAD")
    assert rows(proc) == [
        BARE_NOTE,
        (
            "approval",
            "error",
            "ios-2026-05",
            f"ios-2026-05: retiring → retired needs an APPROVED review on {head[:12]} from one "
            "of: alice-sec, bob-sec, security-oncall (not the author); bob-sec approved "
            f"{base[:12]}, not the head commit",
        ),
    ]


# -- every rule fails on real files ---------------------------------------------------------------

Scenario = dict[str, Callable[[Doc], None]]


def _pending_pair(doc: Doc) -> None:
    add_pending(doc)
    doc["credentials"].insert(0, sample.credential("ios-2026-12b", "pending", sample_today()))


def _shared_secret(repo_docs: dict[str, Doc]) -> None:
    repo_docs[ANDROID]["credentials"][0]["secret"] = repo_docs[IOS]["credentials"][0]["secret"]


def _secret_as_key(repo_docs: dict[str, Doc]) -> None:
    repo_docs[WEB]["credentials"][0]["key"] = repo_docs[WEB]["credentials"][0]["secret"]


def _revoke_without_incident(doc: Doc) -> None:
    old = doc["credentials"][1]
    old.update(state="revoked", revoked="2026-11-27", reason="leaked in a crash log")
    del old["retiring_since"]


def _new_master_key(doc: Doc) -> None:
    doc["encryption_master_key"] = sample.master_key()


CASES: dict[str, tuple[Callable[[dict[str, Doc]], None], list[Row]]] = {
    "unique-key": (
        _shared_secret,
        [
            (
                "unique-key",
                "error",
                "android-2026-03",
                "the secret of android-2026-03 is also the secret of ios-2026-11 "
                "(credentials/dev/ios.yaml); every credential needs its own key and secret",
            ),
            (
                "immutable-secret",
                "error",
                "android-2026-03",
                "the secret of android-2026-03 changed in place; a rotation is always a new "
                "credential id: restore the old value and add the new one with `keyops rotate`",
            ),
        ],
    ),
    "no-secret-to-clients": (
        _secret_as_key,
        [
            (
                "no-secret-to-clients",
                "error",
                "web-2026-06",
                "what served client web would receive for web-2026-06 contains the secret of "
                "web-2026-06 (in 'key'); treat that secret as exposed and rotate it",
            ),
            (
                "unique-key",
                "error",
                "web-2026-06",
                "the secret of web-2026-06 is also its own key; every credential needs its own "
                "key and secret",
            ),
            (
                "immutable-secret",
                "error",
                "web-2026-06",
                "the key of web-2026-06 changed in place; a rotation is always a new credential "
                "id: restore the old value and add the new one with `keyops rotate`",
            ),
        ],
    ),
    "one-rotation-in-flight": (
        lambda d: _pending_pair(d[IOS]),
        [
            (
                "one-rotation-in-flight",
                "error",
                "ios-2026-12",
                "client ios has 2 pending credentials (ios-2026-12b, ios-2026-12); at most one "
                "rotation may be in flight",
            )
        ],
    ),
    "rollout-range": (
        lambda d: d[ANDROID]["credentials"][0].update(rollout_percent=50),
        [
            (
                "rollout-range",
                "error",
                "android-2026-03",
                "android-2026-03 is active but has rollout_percent 50; only a pending credential "
                "has a rollout share: remove the field",
            )
        ],
    ),
    "single-active+retire-needs-successor": (
        lambda d: d[WEB]["credentials"][0].update(state="retiring", retiring_since="2026-11-27"),
        [
            (
                "single-active",
                "error",
                None,
                "served client web must have exactly one active credential, found 0 (none)",
            ),
            (
                "retire-needs-successor",
                "error",
                "web-2026-06",
                "web-2026-06 leaves active (retiring) but client web has no other active "
                "credential; promote its successor in the same change",
            ),
        ],
    ),
    "transition": (
        lambda d: d[SERVER]["credentials"][0].update(
            state="retired", retiring_since="2026-11-27", retired="2026-11-27"
        ),
        [
            (
                "single-active",
                "error",
                None,
                "secret-store client server has no active credential; its servers would have no "
                "key to sign with. Keep at least one credential active",
            ),
            (
                "transition",
                "error",
                "server-2026-01",
                "server-2026-01: active → retired is not allowed; from active a credential may "
                "move to retiring or revoked",
            ),
            (
                "retire-needs-successor",
                "error",
                "server-2026-01",
                "server-2026-01 leaves active (retired) but client server has no other active "
                "credential; promote its successor in the same change",
            ),
            (
                "approval",
                "warning",
                "server-2026-01",
                "server-2026-01: active → retired needs an APPROVED review from one of: "
                "alice-sec, bob-sec, security-oncall (not the author)",
            ),
        ],
    ),
    "min-overlap+adoption": (
        lambda d: retire_old_ios(d[IOS]),
        [
            (
                "min-overlap",
                "error",
                "ios-2026-05",
                "ios-2026-05 has been retiring for 24 day(s) since 2026-11-03; min_overlap_days "
                "is 30: retire it on or after 2026-12-03",
            ),
            (
                "adoption",
                "warning",
                "ios-2026-05",
                "ios-2026-05 is retired without adoption evidence; pass --adoption FILE showing "
                "at most 1% of installs still use it",
            ),
            (
                "approval",
                "warning",
                "ios-2026-05",
                "ios-2026-05: retiring → retired needs an APPROVED review from one of: "
                "alice-sec, bob-sec, security-oncall (not the author)",
            ),
        ],
    ),
    "revoke-reason": (
        lambda d: _revoke_without_incident(d[IOS]),
        [
            (
                "schema",
                "error",
                "ios-2026-05",
                "state 'revoked' requires 'incident'",
            ),
            (
                "revoke-reason",
                "error",
                "ios-2026-05",
                "ios-2026-05 is revoked without incident; say why it was revoked and name the "
                "incident",
            ),
        ],
    ),
    "no-early-removal": (
        lambda d: d[IOS]["credentials"].pop(),
        [
            (
                "no-early-removal",
                "error",
                "ios-2026-05",
                "ios-2026-05 was removed from the file but it is retiring; only a retired or "
                "revoked credential may be removed. Pusher cannot restore deleted credentials: "
                "restore the entry, and delete the credential at Pusher only after the removal "
                "is merged",
            ),
            (
                "approval",
                "warning",
                "ios-2026-05",
                "removal of ios-2026-05 needs an APPROVED review from one of: alice-sec, "
                "bob-sec, security-oncall (not the author)",
            ),
        ],
    ),
    "master-key-change": (
        lambda d: _new_master_key(d[STACK]),
        [
            (
                "master-key-change",
                "warning",
                None,
                "the encryption_master_key of stack dev changes: messages on private-encrypted "
                "channels in flight during the cut-over will be lost; deploy every server at "
                "once, and this needs an approving review",
            ),
            (
                "approval",
                "warning",
                None,
                "encryption_master_key change of stack dev needs an APPROVED review from one "
                "of: alice-sec, bob-sec, security-oncall (not the author)",
            ),
        ],
    ),
    "allowed-origins": (
        lambda d: d[WEB].update(allowed_origins=["http://localhost:*", "https://*.example.com"]),
        [
            (
                "allowed-origins",
                "error",
                None,
                "'https://*.example.com' has a wildcard in the host; list each origin exactly",
            )
        ],
    ),
    "cluster-consistent": (
        lambda d: d[SERVER]["pusher"].update(cluster="us2"),
        [
            (
                "cluster-consistent",
                "error",
                None,
                "app 1874221 is on cluster us2 here but on eu in credentials/dev/android.yaml; "
                "an app has exactly one cluster",
            ),
            (
                "cluster-consistent",
                "error",
                None,
                "cluster of client server changed from eu to us2; its credentials "
                "(server-2026-01) belong to the app they were created in. Restore it, or create "
                "a new client file for the other app",
            ),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_fails_on_a_real_change(keyrepo: KeyRepo, case: str) -> None:
    change, expected = CASES[case]
    base = keyrepo.git("rev-parse", "HEAD")
    paths = [IOS, ANDROID, WEB, SERVER, STACK]
    docs = {rel: keyrepo.read_doc(rel) for rel in paths}
    for doc in docs.values():
        doc.pop("sops", None)
    before = copy.deepcopy(docs)
    change(docs)
    for rel in paths:
        if docs[rel] != before[rel]:
            keyrepo.write_doc(rel, docs[rel])
    keyrepo.commit(case)
    proc = check(keyrepo, base)
    assert proc.returncode == (1 if any(r[1] == "error" for r in expected) else 0), proc.stdout
    assert sorted(rows(proc)) == sorted(expected)


def test_max_age_fails_past_the_maximum(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    proc = check(keyrepo, base, now="2027-01-13")
    assert proc.returncode == 1
    server = [r for r in rows(proc, ignore=()) if r[2] == "server-2026-01"]
    assert server == [
        (
            "max-age",
            "error",
            "server-2026-01",
            "server-2026-01 is 366 days old (active); max_age_days is 365: rotate it now",
        )
    ]


def test_immutable_secret_needs_history(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    edit(keyrepo, ANDROID, lambda d: d["credentials"][0].update(secret=sample.pusher_hex()))
    keyrepo.commit("paste a new secret")
    assert rows(check(keyrepo, base)) == [
        (
            "immutable-secret",
            "error",
            "android-2026-03",
            "the secret of android-2026-03 changed in place; a rotation is always a new "
            "credential id: restore the old value and add the new one with `keyops rotate`",
        )
    ]
    proc = keyrepo.run("check", "--now", "2026-11-27", "--format", "json")
    assert proc.returncode == 0
    assert rows(proc) == []


# -- loader rules, recipients and the test identity --------------------------------------------


def test_a_clear_text_file_is_an_encrypted_finding(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    doc = keyrepo.read_doc(WEB)
    keyrepo.write_doc(WEB, doc, encrypt=False)
    proc = check(keyrepo, base)
    assert proc.returncode == 1
    assert [(r[0], r[3]) for r in rows(proc)] == [
        (
            "encrypted",
            "the file is not sops-encrypted (it has no sops metadata) and holds 3 secret "
            "value(s) in clear text; encrypt it: sops encrypt -i credentials/dev/web.yaml. If it "
            "was ever committed, treat its secrets as exposed and rotate them",
        )
    ]


def test_recipients_change_needs_approval_and_matching_files(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    identity, recipient = new_identity()
    keyrepo.identity_file.write_text(
        keyrepo.identity_file.read_text() + f"{identity}\n", encoding="utf-8"
    )
    keyrepo.write_bytes(".sops.yaml", sops_rules({"dev": [keyrepo.recipient, recipient]}).encode())
    proc = check(keyrepo, base)
    assert proc.returncode == 1
    found = rows(proc)
    assert found[0] == SOPS_YAML_NEEDS_APPROVAL
    assert {r[0] for r in found[1:]} == {"recipients"} and len(found) == 6
    # Re-encrypting every file under the new rule fixes it; the change then needs approval.
    for rel in (IOS, ANDROID, WEB, SERVER, STACK):
        edit(keyrepo, rel, lambda d: None)
    keyrepo.commit("add a recipient")
    proc = check(keyrepo, base)
    assert proc.returncode == 0, proc.stdout
    assert rows(proc)[0] == SOPS_YAML_NEEDS_APPROVAL
    assert rows(proc)[1] == (
        "approval",
        "warning",
        None,
        f"recipients of credentials/dev/_stack.yaml change (+age:{recipient}) needs an APPROVED "
        "review from one of: alice-sec, bob-sec, security-oncall (not the author)",
    )
    assert len(rows(proc)) == 6


SOPS_YAML_NEEDS_APPROVAL = (
    "approval",
    "warning",
    None,
    "a change of .sops.yaml (it governs these checks) needs an APPROVED review from one of: "
    "alice-sec, bob-sec, security-oncall (not the author)",
)


def _add_prod(keyrepo: KeyRepo, recipients: list[str]) -> None:
    keyrepo.write_bytes(
        ".sops.yaml", sops_rules({"dev": [keyrepo.recipient], "prod": recipients}).encode()
    )
    docs = sample.dev_stack(sample_today())
    stack = sample.stack_document("prod", sample_today())
    keyrepo.write_doc("credentials/prod/_stack.yaml", stack)
    server = docs["server"]
    server["credentials"][0]["id"] = "prod-server-2026-11"
    server["credentials"][0]["created"] = "2026-11-20"
    server["credentials"][0]["activated"] = "2026-11-21"
    keyrepo.write_doc("credentials/prod/server.yaml", server)


def test_dev_key_in_real_stack(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    _add_prod(keyrepo, [keyrepo.recipient])
    keyrepo.commit("prod stack, wrongly encrypted to the test identity")
    proc = check(keyrepo, base)
    assert proc.returncode == 1
    r = keyrepo.recipient
    assert rows(proc) == [
        SOPS_YAML_NEEDS_APPROVAL,
        (
            "dev-key-in-real-stack",
            "error",
            None,
            "creation rule #2 (path_regex '^credentials/prod/[^/]+\\\\.yaml$') lists the "
            "committed test identity and also matches stack(s) prod; restrict it to dev",
        ),
        (
            "dev-key-in-real-stack",
            "error",
            None,
            f"credentials/prod/_stack.yaml (stack prod) is encrypted to the committed test "
            f"identity age:{r}; its secrets must be treated as public: re-encrypt without it and "
            "rotate them",
        ),
        (
            "dev-key-in-real-stack",
            "error",
            None,
            f"credentials/prod/server.yaml (stack prod) is encrypted to the committed test "
            f"identity age:{r}; its secrets must be treated as public: re-encrypt without it and "
            "rotate them",
        ),
    ]


def test_a_real_stack_with_its_own_recipient_passes(keyrepo: KeyRepo) -> None:
    base = keyrepo.git("rev-parse", "HEAD")
    identity, recipient = new_identity()
    keyrepo.identity_file.write_text(
        keyrepo.identity_file.read_text() + f"{identity}\n", encoding="utf-8"
    )
    _add_prod(keyrepo, [recipient])
    keyrepo.commit("prod stack")
    proc = check(keyrepo, base)
    assert proc.returncode == 0, proc.stdout
    assert rows(proc) == [SOPS_YAML_NEEDS_APPROVAL]


# -- waivers --------------------------------------------------------------------------------------


def _waivers(keyrepo: KeyRepo, text: str) -> None:
    keyrepo.write_bytes("policies/waivers.yaml", text.encode())


def test_a_waiver_turns_a_finding_into_a_note(keyrepo: KeyRepo) -> None:
    _waivers(
        keyrepo,
        "waivers:\n"
        "  - rule: max-age\n    stack: dev\n    client: server\n    credential: server-2026-01\n"
        "    reason: vendor release train\n    approver: alice-sec\n    expires: '2027-02-01'\n",
    )
    proc = keyrepo.run("check", "--now", "2027-01-13", "--format", "json")
    assert proc.returncode == 0, proc.stdout
    server = [r for r in rows(proc, ignore=()) if r[2] == "server-2026-01"]
    assert server == [
        (
            "max-age",
            "note",
            "server-2026-01",
            "server-2026-01 is 366 days old (active); max_age_days is 365: rotate it now "
            "[waived by alice-sec until 2027-02-01: vendor release train]",
        )
    ]


def test_expired_and_unwaivable_waivers_are_errors(keyrepo: KeyRepo) -> None:
    _waivers(
        keyrepo,
        "waivers:\n"
        "  - rule: max-age\n    stack: dev\n"
        "    reason: vendor release train\n    approver: alice-sec\n    expires: '2026-11-01'\n"
        "  - rule: unique-key\n    stack: dev\n"
        "    reason: shared for a demo\n    approver: bob-sec\n    expires: '2027-01-01'\n"
        "  - rule: max-age\n    stack: dev\n"
        "    reason: I say so\n    approver: mallory\n    expires: '2027-01-01'\n",
    )
    proc = keyrepo.run("check", "--now", "2026-11-27", "--format", "json")
    assert proc.returncode == 1
    assert rows(proc) == [
        (
            "waiver",
            "error",
            None,
            "the waiver of max-age for dev expired on 2026-11-01; fix the finding or renew the "
            "waiver with a new approval",
        ),
        (
            "waiver",
            "error",
            None,
            "rule unique-key cannot be waived: it means a secret is exposed or shared; fix the "
            "finding instead",
        ),
        (
            "waiver",
            "error",
            None,
            "waiver approver 'mallory' is not a configured approver (policies/keyops.yaml "
            "approvers)",
        ),
    ]


# -- usage errors ---------------------------------------------------------------------------------


def test_unknown_base_is_an_environment_error(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("check", "--base", "no-such-branch")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        f"error: 'no-such-branch' is not a commit in {keyrepo.root.resolve()}. Fetch it first "
        "(git fetch origin <branch>) or pass another --base.\n"
    )


def test_approvals_need_an_author(keyrepo: KeyRepo) -> None:
    approvals = reviews_file(keyrepo, [])
    proc = keyrepo.run("check", "--approvals", approvals)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: --approvals needs --author. Pass the pull request author's login, so that "
        "their own review never counts.\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON (line 1)"),
        ('{"ios-2026-05": 140}', "'ios-2026-05' has 140; percentages are numbers 0..100"),
        ("[1]", "must be a JSON object {credential_id: percent}"),
    ],
)
def test_bad_adoption_file(keyrepo: KeyRepo, content: str, message: str) -> None:
    path = keyrepo.root.parent / "adoption.json"
    path.write_text(content)
    proc = keyrepo.run("check", "--adoption", str(path))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: --adoption {path}")
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
