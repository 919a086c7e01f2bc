"""``keyops approval``: the ``keyops/approval`` commit status of a pull request.

It fetches the pull request and all its reviews from the GitHub REST API (paginated), runs the
policy check of the change (``--base`` against the working tree) with those reviews, and posts
one commit status named ``keyops/approval`` on ``--head-sha``:

  success  no change needs approval, or a configured approver other than the author approved
           the head commit
  pending  a retirement, revocation, removal or recipient change waits for that approval
  failure  the change has policy errors that no approval can fix (run keyops check)
  error    keyops could not evaluate the change (e.g. no key could decrypt)

Branch protection requires this status; posting it again for the same commit replaces it. With
``--comment`` it also creates or edits, in place, the one pull-request comment holding the
markdown report; ``--summary FILE`` appends the same report to FILE (the Actions job summary).
The token comes only from ``GITHUB_TOKEN``; ``GITHUB_API_URL`` selects GitHub Enterprise.
Exit codes: 0 when the status (or comment) was posted, whatever its state; 2 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from keyops.cli.github import GitHub, check_sha
from keyops.cli.reporters import Report, markdown
from keyops.core.atomic import append_nofollow
from keyops.core.dates import NOW_HELP, parse_day
from keyops.core.errors import EXIT_OK, GitHubError, InputError, KeyopsError, UsageError
from keyops.core.findings import Finding, Severity
from keyops.policy import Context, evaluate, load_adoption, parse_reviews
from keyops.policy.diff import changes
from keyops.policy.rules import Facts
from keyops.policy.rules.approval import needs, qualifying
from keyops.policy.shared_sops import load_change
from keyops.store import repo, settings
from keyops.store.loader import LoadResult
from keyops.store.sources import GitSource

CONTEXT = "keyops/approval"
#: The first line of the one summary comment: how it is found again to be edited in place.
COMMENT_MARKER = "<!-- keyops:pull-request-summary -->"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo-slug", required=True, metavar="OWNER/REPO", help="the GitHub repository"
    )
    parser.add_argument("--pr", required=True, type=int, metavar="N", help="pull request number")
    parser.add_argument(
        "--head-sha", required=True, metavar="SHA", help="the pull request's head commit"
    )
    parser.add_argument(
        "--base", required=True, metavar="REF", help="git revision of the base, e.g. origin/main"
    )
    parser.add_argument("--now", metavar="WHEN", help=NOW_HELP)
    parser.add_argument(
        "--stack", action="append", metavar="S", help="only this stack (repeatable)"
    )
    parser.add_argument(
        "--comment",
        action="store_true",
        help="create or edit the one pull-request comment with the markdown report",
    )
    parser.add_argument(
        "--summary", metavar="FILE", type=Path, help="append the markdown report to FILE"
    )
    parser.add_argument(
        "--no-status", action="store_true", help="do not post the keyops/approval status"
    )
    parser.add_argument(
        "--adoption",
        metavar="FILE",
        type=Path,
        help="adoption evidence (keyops adoption output): the report shows it for retirements",
    )


@dataclass(frozen=True)
class Verdict:
    state: str
    description: str


@dataclass(frozen=True)
class Evaluation:
    findings: list[Finding]
    report: str
    verdict: Verdict


def verdict(findings: list[Finding], facts: Facts) -> Verdict:
    """The status for these findings; the description fits GitHub's 140 characters."""
    errors = [f for f in findings if f.severity is Severity.ERROR]
    others = [f for f in errors if f.rule != "approval"]
    if others:
        rules = ", ".join(sorted({f.rule for f in others}))
        return Verdict(
            "failure", f"{len(others)} policy error(s) no approval can fix ({rules}): see the check"
        )
    waiting = list(needs(facts))
    if any(f.rule == "approval" for f in errors):
        approvers = ", ".join(facts.settings.approvers) or "nobody configured"
        return Verdict(
            "pending",
            f"{len(waiting)} change(s) need an APPROVED review of this commit from: {approvers}",
        )
    if waiting:
        logins = ", ".join(sorted({r.login for r in qualifying(facts)}))
        return Verdict("success", f"{len(waiting)} change(s) approved by {logins}")
    return Verdict("success", "no change needs approval")


def _load(root: Path, base_ref: str, stacks: list[str] | None) -> tuple[LoadResult, LoadResult]:
    if base_ref.startswith("-"):
        raise UsageError(f"--base {base_ref!r} is not a revision", "Pass e.g. origin/main.")
    base, head = load_change(root, GitSource(root, base_ref), stacks=stacks)
    assert base is not None
    return base, head


def evaluate_pull(args: argparse.Namespace, root: Path, github: GitHub) -> Evaluation:
    pull = github.pull(args.pr)
    author = (pull.get("user") or {}).get("login")
    if not isinstance(author, str):
        raise InputError(f"pull request #{args.pr} has no author login", "Check --pr.")
    rules = settings.load(root)
    ctx = Context(
        now=parse_day(args.now),
        author=author,
        approvals=parse_reviews(github.reviews(args.pr), f"reviews of #{args.pr}"),
        adoption=load_adoption(args.adoption) if args.adoption is not None else None,
        head_sha=args.head_sha,
    )
    base, head = _load(root, args.base, args.stack)
    findings = evaluate(base, head, ctx, rules, root=root)
    facts = Facts(head=head, ctx=ctx, settings=rules, base=base, root=root)
    label = f"{args.base} ({GitSource(root, args.base).commit[:12]})"
    report = markdown.render(
        Report(findings, head.file_count, changes=list(changes(facts)), base_label=label)
    )
    return Evaluation(findings, report, verdict(findings, facts))


def _target_url(env: os._Environ[str] | dict[str, str]) -> str | None:
    """The Actions run that computed the status, when running in Actions."""
    server, repository, run = (
        env.get("GITHUB_SERVER_URL"),
        env.get("GITHUB_REPOSITORY"),
        env.get("GITHUB_RUN_ID"),
    )
    if server and repository and run and run.isdigit():
        return f"{server}/{repository}/actions/runs/{run}"
    return None


def upsert_comment(github: GitHub, number: int, body: str) -> str:
    """Create the one summary comment, or edit it in place; returns what was done."""
    text = f"{COMMENT_MARKER}\n{body}"
    ours = [
        c
        for c in github.issue_comments(number)
        if str(c.get("body", "")).startswith(COMMENT_MARKER)
        # Only a bot's comment is ours: a person quoting the marker is not edited.
        and (c.get("user") or {}).get("type") == "Bot"
    ]
    if not ours:
        created = github.create_comment(number, text)
        return f"created comment {created.get('id')}"
    comment = ours[0]
    if comment.get("body") == text:
        return f"comment {comment['id']} unchanged"
    github.update_comment(int(comment["id"]), text)
    return f"updated comment {comment['id']}"


def run(args: argparse.Namespace, github: GitHub) -> int:
    root = repo.find_root(args.repo)
    check_sha(args.head_sha)
    if args.pr <= 0:
        raise UsageError(f"--pr {args.pr} is not a pull request number", "Pass e.g. --pr 42.")
    try:
        result = evaluate_pull(args, root, github)
    except GitHubError:
        raise  # the API itself failed: posting a status would fail the same way
    except KeyopsError as exc:
        if not args.no_status:
            # Leave no stale success behind: the head commit says why it could not be checked.
            # If even that fails, the original error is the one worth reporting.
            with contextlib.suppress(GitHubError):
                github.create_status(
                    args.head_sha,
                    "error",
                    CONTEXT,
                    f"keyops could not evaluate: {exc.what}",
                    _target_url(os.environ),
                )
        raise
    footer = (
        f"\n_Computed for {args.head_sha[:12]}. The `{CONTEXT}` status follows reviews as "
        "they arrive._\n"
    )
    if args.summary is not None:
        # Appended: every step of the job adds its section to the runner's one summary file.
        append_nofollow(args.summary, (result.report + footer).encode("utf-8"))
    if args.comment:
        print(upsert_comment(github, args.pr, result.report + footer))
    if not args.no_status:
        github.create_status(
            args.head_sha,
            result.verdict.state,
            CONTEXT,
            result.verdict.description,
            _target_url(os.environ),
        )
        print(
            f"{CONTEXT}: {result.verdict.state} on {args.head_sha[:12]}: "
            f"{result.verdict.description}"
        )
    sys.stdout.flush()
    return EXIT_OK


def approval(args: argparse.Namespace) -> int:
    return run(args, GitHub.from_env(args.repo_slug))
