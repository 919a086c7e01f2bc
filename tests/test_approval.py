"""``keyops approval`` in the form retire-approval.yml and pr.yml run it, on real git repositories
with real sops files, against recorded GitHub API responses served on 127.0.0.1.

The change under review retires ``ios-2026-05`` in the dev stack (retiring since 2026-11-03, so
the 30-day overlap ends 2026-12-03). The recorded reviews span two pages: bob-sec approved an
older commit and later requested changes, mallory (not an approver) approved, and alice-sec
approved the head commit on page two.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.github import SLUG, TOKEN, Answer, Replay, Routes, review_routes
from support.planted import plant
from support.repo import KeyRepo

HEAD = "9f1c2e4b7a3d5f60818293a4b5c6d7e8f9a0b1c2"  # alice-sec approved this commit
OLDER = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
STATUSES = "/repos/acme/keyops/statuses"
COMMENTS = "/repos/acme/keyops/issues/42/comments"


def routes(head: str = HEAD, **extra: list[Answer]) -> Routes:
    table: Routes = {
        ("GET", "/repos/acme/keyops/pulls/42"): [Answer(200, "pull_42.json")],
        ("POST", f"{STATUSES}/{head}"): [Answer(201, "status_created.json")],
        **review_routes(),
    }
    for key, answers in extra.items():
        method, _, path = key.partition(" ")
        table[(method, path)] = answers
    return table


def retire_branch(keyrepo: KeyRepo) -> None:
    keyrepo.git("checkout", "--quiet", "-b", "keyops/dev-ios-retire-ios-2026-05")
    doc = keyrepo.read_doc("credentials/dev/ios.yaml")
    old = doc["credentials"][1]
    assert old["id"] == "ios-2026-05"
    old["state"] = "retired"
    old["retired"] = "2026-12-10"
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    keyrepo.commit("chore(credentials): retire ios-2026-05 in dev")


def approval(
    keyrepo: KeyRepo,
    server: Replay,
    head: str = HEAD,
    *extra: str,
    now: str = "2026-12-10",
    key: bool = True,
) -> Any:
    proc = keyrepo.run(
        "approval",
        "--repo-slug",
        SLUG,
        "--pr",
        "42",
        "--head-sha",
        head,
        "--base",
        "main",
        "--now",
        now,
        *extra,
        env=server.env(),
        key=key,
    )
    assert TOKEN not in proc.stdout + proc.stderr
    return proc


def posted_status(server: Replay, head: str = HEAD) -> dict[str, Any]:
    (status,) = server.table.sent("POST", f"{STATUSES}/{head}")
    assert status["context"] == "keyops/approval"
    assert len(status["description"]) <= 140
    return {k: v for k, v in status.items() if k != "context"}


def test_an_approver_on_the_second_page_approves_the_head_commit(
    keyrepo: KeyRepo, replay: Any
) -> None:
    retire_branch(keyrepo)
    server = replay(routes())
    proc = approval(keyrepo, server)
    assert proc.returncode == 0, proc.stderr
    assert posted_status(server) == {
        "state": "success",
        "description": "1 change(s) approved by alice-sec",
    }
    assert proc.stdout == (
        "keyops/approval: success on 9f1c2e4b7a3d: 1 change(s) approved by alice-sec\n"
    )
    # Every page of reviews was read: the approval is on page two.
    assert ("GET", "/repositories/771031284/pulls/42/reviews?per_page=100&page=2") in (
        server.table.calls()
    )


def test_an_approval_of_an_older_commit_leaves_the_status_pending(
    keyrepo: KeyRepo, replay: Any
) -> None:
    retire_branch(keyrepo)
    server = replay(routes(OLDER))
    proc = approval(keyrepo, server, OLDER)
    assert proc.returncode == 0, proc.stderr
    assert posted_status(server, OLDER) == {
        "state": "pending",
        "description": "1 change(s) need an APPROVED review of this commit from: "
        "security-oncall, alice-sec, bob-sec",
    }


def test_nothing_to_approve_is_a_success(keyrepo: KeyRepo, replay: Any) -> None:
    keyrepo.git("checkout", "--quiet", "-b", "docs-only")
    server = replay(routes())
    proc = approval(keyrepo, server)
    assert proc.returncode == 0, proc.stderr
    assert posted_status(server) == {"state": "success", "description": "no change needs approval"}


def test_policy_errors_no_approval_can_fix_are_a_failure(keyrepo: KeyRepo, replay: Any) -> None:
    retire_branch(keyrepo)
    server = replay(routes())
    # Before 2026-12-03 the 30-day overlap is not over: approving cannot make this safe.
    proc = approval(keyrepo, server, now="2026-11-20")
    assert proc.returncode == 0, proc.stderr
    status = posted_status(server)
    assert status["state"] == "failure"
    assert status["description"].endswith("no approval can fix (min-overlap): see the check")


def test_a_change_that_cannot_be_decrypted_posts_an_error_status(
    keyrepo: KeyRepo, replay: Any
) -> None:
    retire_branch(keyrepo)
    server = replay(routes())
    proc = approval(keyrepo, server, key=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    status = posted_status(server)
    assert status["state"] == "error"
    assert status["description"].startswith("keyops could not evaluate: ")


def test_bad_credentials_stop_before_anything_is_posted(keyrepo: KeyRepo, replay: Any) -> None:
    server = replay(
        {("GET", "/repos/acme/keyops/pulls/42"): [Answer(401, "error_bad_credentials.json")]}
    )
    proc = approval(keyrepo, server)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: GitHub answered 401 to GET /repos/acme/keyops/pulls/42: Bad credentials. "
        "GITHUB_TOKEN is invalid or expired.\n"
    )
    assert server.table.calls("POST") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--head-sha", "abc123"],
            "error: --head-sha 'abc123' is not a full 40-character commit SHA",
        ),
        (["--pr", "0"], "error: --pr 0 is not a pull request number"),
        (["--repo-slug", "acme"], "error: --repo-slug 'acme' is not OWNER/REPO"),
    ],
)
def test_bad_arguments_are_usage_errors(
    keyrepo: KeyRepo, replay: Any, args: list[str], message: str
) -> None:
    server = replay(routes())
    base = {"--repo-slug": SLUG, "--pr": "42", "--head-sha": HEAD, "--base": "main"}
    base[args[0]] = args[1]
    argv = [item for pair in base.items() for item in pair]
    proc = keyrepo.run("approval", *argv, env=server.env())
    assert proc.returncode == 2
    assert proc.stderr.startswith(message)
    assert server.table.seen == []


def test_without_a_token_nothing_is_sent(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run(
        "approval", "--repo-slug", SLUG, "--pr", "42", "--head-sha", HEAD, "--base", "main"
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: GITHUB_TOKEN is not set.")


# -- the summary comment and the job summary (pr.yml) -------------------------------------------
def secrets_of(keyrepo: KeyRepo) -> list[str]:
    doc = keyrepo.decrypt("credentials/dev/ios.yaml")
    return [c[field] for c in doc["credentials"] for field in ("key", "secret")]


def test_the_one_bot_comment_is_edited_in_place(
    keyrepo: KeyRepo, replay: Any, tmp_path: Path
) -> None:
    retire_branch(keyrepo)
    server = replay(
        routes(
            **{
                f"GET {COMMENTS}?per_page=100": [Answer(200, "comments_42.json")],
                "PATCH /repos/acme/keyops/issues/comments/2531870002": [
                    Answer(200, "comment_updated.json")
                ],
            }
        )
    )
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier steps\n")
    proc = approval(keyrepo, server, HEAD, "--no-status", "--comment", "--summary", str(summary))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "updated comment 2531870002\n"
    # The person who quoted the marker is left alone, nothing is created, no status is posted.
    assert server.table.calls("PATCH") == [
        ("PATCH", "/repos/acme/keyops/issues/comments/2531870002")
    ]
    assert server.table.calls("POST") == []
    (sent,) = server.table.sent("PATCH", "/repos/acme/keyops/issues/comments/2531870002")
    body = sent["body"]
    assert body.startswith("<!-- keyops:pull-request-summary -->\n## keyops check\n")
    assert "`dev/ios`: ios-2026-05: retiring → retired" in body
    assert "_Computed for 9f1c2e4b7a3d." in body
    text = summary.read_text()
    assert text.startswith("earlier steps\n## keyops check\n")
    assert body.endswith(text.removeprefix("earlier steps\n"))
    for secret in secrets_of(keyrepo):
        assert secret not in body


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_the_job_summary_is_never_appended_through_a_planted_link(
    keyrepo: KeyRepo, replay: Any, tmp_path: Path, dangling: bool
) -> None:
    retire_branch(keyrepo)
    server = replay(routes())
    summary = tmp_path / "step-summary.md"
    planted = plant(summary, tmp_path / "elsewhere", dangling=dangling)
    proc = approval(keyrepo, server, HEAD, "--no-status", "--summary", str(summary))
    assert proc.returncode == 2
    assert proc.stderr == f"error: cannot write {summary}: it is a symlink. Name a regular file.\n"
    assert planted.disturbed() == []


def test_the_job_summary_is_created_when_missing(
    keyrepo: KeyRepo, replay: Any, tmp_path: Path
) -> None:
    retire_branch(keyrepo)
    summary = tmp_path / "step-summary.md"
    proc = approval(keyrepo, replay(routes()), HEAD, "--no-status", "--summary", str(summary))
    assert proc.returncode == 0, proc.stderr
    assert summary.read_text().startswith("## keyops check\n")


def test_a_first_run_creates_the_comment(keyrepo: KeyRepo, replay: Any) -> None:
    retire_branch(keyrepo)
    empty = Path(__file__).parent / "fixtures" / "github"
    assert (empty / "comment_created.json").exists()
    server = replay(
        routes(
            **{
                f"GET {COMMENTS}?per_page=100": [Answer(200, None)],
                f"POST {COMMENTS}": [Answer(201, "comment_created.json")],
            }
        )
    )
    # An empty list: GitHub answers [] when the pull request has no comments.
    server.table.routes[("GET", f"{COMMENTS}?per_page=100")] = [EmptyList()]
    proc = approval(keyrepo, server, HEAD, "--comment")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "created comment 2531879999"
    (sent,) = server.table.sent("POST", COMMENTS)
    assert sent["body"].startswith("<!-- keyops:pull-request-summary -->\n")
    assert posted_status(server)["state"] == "success"


class EmptyList(Answer):
    def body(self) -> bytes:
        return json.dumps([]).encode()
