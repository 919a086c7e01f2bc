"""``keyops hygiene``: the scheduled chores that keep keys from growing old or expiring.

``keyops hygiene issues --repo-slug OWNER/REPO``
    Runs the ``max-age`` rule (cleartext metadata only: no key needed) and keeps exactly one open
    GitHub issue per credential near or past its maximum age. An issue is found again by the
    marker ``<!-- keyops:max-age STACK/CREDENTIAL -->`` in its body, so it is updated rather than
    duplicated; when the credential no longer trips the rule (rotated, retired, removed or
    waived) the issue gets a closing comment and is closed.

``keyops hygiene bundles [--within-days 7] [--dispatch deploy.yml --repo-slug … --ref main]``
    Asks every endpoint of each stack (``endpoints`` in ``credentials/<stack>/_stack.yaml``) for
    ``/healthz`` and reads ``expires_in``; ``--bundle DIR`` reads a local bundle's ``exp`` instead.
    A stack whose bundle expires within the window, or whose endpoint reports no valid bundle
    (503), needs a redeploy. With ``--dispatch`` it triggers that workflow (``workflow_dispatch``,
    input ``stack``), so the rebuild and redeploy go through the same environments, reviewers and
    concurrency groups as every other deploy.

Both use the GitHub REST API with the token from ``GITHUB_TOKEN`` (never sent to endpoints);
``issues --dry-run`` without a token lists the issues that should be open without asking GitHub.
Exit codes: 0 done and nothing left undone; 1 a stack needs a redeploy that was not dispatched,
or an endpoint could not be asked; 2 usage or environment errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyops.cli.github import GitHub, check_slug
from keyops.core.dates import NOW_HELP, parse_day, parse_now
from keyops.core.errors import EXIT_FINDINGS, EXIT_OK, KeyopsError, UsageError
from keyops.core.findings import Finding, Severity
from keyops.policy import Context, evaluate
from keyops.store import loader, repo, settings
from keyops.store.sources import CREDENTIALS_DIR, WorktreeSource

LABEL = "keyops-hygiene"
LABEL_COLOR = "d93f0b"
_MARKER = re.compile(r"<!-- keyops:max-age ([a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9-]*) -->")
DAY = 86400


def register(parser: argparse.ArgumentParser) -> None:
    chores = parser.add_subparsers(dest="chore", metavar="CHORE", required=True)
    issues = chores.add_parser(
        "issues", help="open, update or close one GitHub issue per credential near max age"
    )
    issues.add_argument(
        "--repo-slug", required=True, metavar="OWNER/REPO", help="the GitHub repository"
    )
    issues.add_argument("--stack", action="append", metavar="S", help="only this stack")
    issues.add_argument("--now", metavar="WHEN", help=NOW_HELP)
    issues.add_argument("--label", default=LABEL, help=f"issue label (default {LABEL})")
    issues.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would change, change nothing (without GITHUB_TOKEN: list the issues "
        "that should be open, without asking GitHub)",
    )
    bundles = chores.add_parser(
        "bundles", help="find stacks whose served bundle expires soon; dispatch their redeploy"
    )
    bundles.add_argument("--stack", action="append", metavar="S", help="only this stack")
    bundles.add_argument(
        "--within-days", type=int, default=7, metavar="N", help="redeploy window (default 7)"
    )
    bundles.add_argument(
        "--bundle", type=Path, metavar="DIR", help="check this local bundle instead of endpoints"
    )
    bundles.add_argument("--now", metavar="WHEN", help=NOW_HELP)
    bundles.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per endpoint request"
    )
    bundles.add_argument(
        "--dispatch", metavar="WORKFLOW", help="workflow file to dispatch, e.g. deploy.yml"
    )
    bundles.add_argument(
        "--repo-slug", metavar="OWNER/REPO", help="the GitHub repository (with --dispatch)"
    )
    bundles.add_argument("--ref", default="main", help="branch to deploy (default main)")


def known_stacks(source: WorktreeSource, stacks: list[str] | None) -> list[str]:
    """The repository's stacks, after checking that each ``--stack`` is one of them."""
    loader.check_stacks(source.root, source, stacks)
    return loader.list_stacks(source)


# -- issues -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgeIssue:
    key: str  # STACK/CREDENTIAL
    title: str
    body: str


def marker(key: str) -> str:
    return f"<!-- keyops:max-age {key} -->"


def _stack_client(path: str) -> tuple[str, str]:
    parts = path.split("/")
    return parts[1], parts[-1].removesuffix(".yaml")


def age_issue(finding: Finding, rules: settings.Settings, today: dt.date) -> AgeIssue:
    stack, client = _stack_client(finding.path)
    cred = finding.credential_id or "?"
    past = finding.severity is Severity.ERROR
    title = f"Rotate {cred} ({stack}/{client}): " + (
        "past its maximum age" if past else "nearing its maximum age"
    )
    body = "\n".join(
        [
            marker(f"{stack}/{cred}"),
            f"**`{cred}`** in `{finding.path}` trips the `max-age` rule as of {today}:",
            "",
            f"> {finding.severity.value}: {finding.message}",
            "",
            f"`policies/keyops.yaml`: warn from {rules.warn_age_days} days, "
            f"maximum {rules.max_age_days} days.",
            "",
            "Rotate it through a pull request:",
            "",
            f"1. `keyops rotate --stack {stack} --client {client} --pr` adds a pending successor "
            "(create the new credential set in the Pusher dashboard first);",
            "2. roll it out and promote it (`keyops rollout`, `keyops promote`);",
            "3. retire the old one after the overlap period (`keyops retire`).",
            "",
            "This issue is kept by `keyops hygiene issues` (hygiene.yml) and closes itself once "
            "the credential no longer trips the rule.",
        ]
    )
    return AgeIssue(f"{stack}/{cred}", title, body + "\n")


def wanted_issues(root: Path, stacks: list[str] | None, today: dt.date) -> dict[str, AgeIssue]:
    """The issues that should be open, by key."""
    source = WorktreeSource(root)
    known_stacks(source, stacks)
    rules = settings.load(root)
    head = loader.load(root, source, stacks=stacks, decrypt=False)
    findings = evaluate(None, head, Context(now=today), rules, only={"max-age"}, root=root)
    issues = [age_issue(f, rules, today) for f in findings if f.rule == "max-age"]
    return {i.key: i for i in issues}


def sync_issues(
    github: GitHub,
    wanted: dict[str, AgeIssue],
    scope: set[str] | None,
    label: str,
    today: dt.date,
    *,
    dry_run: bool,
) -> list[str]:
    """Make GitHub's open issues match ``wanted``; returns one line per action.

    Issues of stacks outside ``scope`` (``--stack``) are left alone; without a scope every open
    issue whose credential no longer trips the rule is closed, including one of a deleted stack.
    """
    actions: list[str] = []
    if not dry_run and github.ensure_label(
        label, LABEL_COLOR, "keyops: credentials near their maximum age"
    ):
        actions.append(f"created label {label}")
    existing: dict[str, dict[str, Any]] = {}
    for issue in sorted(github.open_issues(label), key=lambda i: int(i["number"])):
        found = _MARKER.search(str(issue.get("body") or ""))
        if found and found.group(1) not in existing:
            existing[found.group(1)] = issue
    for key, want in sorted(wanted.items()):
        have = existing.get(key)
        if have is None:
            if dry_run:
                actions.append(f"would open: {want.title}")
                continue
            created = github.create_issue(want.title, want.body, [label])
            actions.append(f"opened #{created['number']}: {want.title}")
        elif have.get("title") != want.title or have.get("body") != want.body:
            if not dry_run:
                github.update_issue(int(have["number"]), title=want.title, body=want.body)
            actions.append(
                f"{'would update' if dry_run else 'updated'} #{have['number']}: {want.title}"
            )
        else:
            actions.append(f"unchanged #{have['number']}: {want.title}")
    for key, have in sorted(existing.items()):
        if key in wanted or (scope is not None and key.split("/")[0] not in scope):
            continue
        number = int(have["number"])
        if not dry_run:
            github.create_comment(
                number,
                f"`{key.split('/', 1)[1]}` no longer trips the `max-age` rule as of {today} "
                "(rotated, retired, removed or waived). Closing.",
            )
            github.update_issue(number, state="closed", state_reason="completed")
        actions.append(f"{'would close' if dry_run else 'closed'} #{number}: {key} resolved")
    return actions


# -- bundles ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expiry:
    stack: str
    where: str
    #: Seconds until the bundle expires; None when there is no valid bundle or no answer.
    expires_in: int | None
    problem: str | None = None
    unreachable: bool = False


def ask_health(stack: str, base_url: str, timeout: float) -> Expiry:
    """``GET <endpoint>/healthz`` (docs/protocol.md): no token, no credentials sent."""
    url = base_url.rstrip("/") + "/healthz"
    if not url.startswith(("https://", "http://")):
        return Expiry(stack, url, None, "not an http(s) URL", unreachable=True)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            status, body = answer.status, answer.read(65536)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(65536)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return Expiry(stack, url, None, f"no answer ({reason})", unreachable=True)
    if status == 503:
        return Expiry(stack, url, None, "no valid bundle (503 not-ready)")
    try:
        data = json.loads(body)
        expires_in = data["expires_in"]
        if type(expires_in) is not int:
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return Expiry(stack, url, None, f"answered {status} without expires_in", unreachable=True)
    if status != 200 or data.get("stack") not in (None, stack):
        return Expiry(
            stack, url, None, f"answered {status} for stack {data.get('stack')!r}", unreachable=True
        )
    return Expiry(stack, url, expires_in)


def bundle_expiry(path: Path, now: float) -> Expiry:
    from keyops.protocol.bundle import Bundle  # joserfc is slow to import; only this path needs it

    bundle = Bundle.load(path, now=now, allow_expired=True)
    return Expiry(bundle.stack, str(path), int(bundle.exp - now))


def endpoint_expiries(root: Path, stacks: list[str] | None, timeout: float) -> list[Expiry]:
    source = WorktreeSource(root)
    known_stacks(source, stacks)
    result = loader.load(root, source, stacks=stacks, decrypt=False)
    out: list[Expiry] = []
    for name in sorted(result.stacks):
        stack_file = result.stacks[name].stack_file
        endpoints = stack_file.endpoints if stack_file is not None else ()
        if not endpoints:
            out.append(
                Expiry(
                    name,
                    f"{CREDENTIALS_DIR}/{name}/_stack.yaml",
                    None,
                    "lists no endpoints",
                    unreachable=True,
                )
            )
        out.extend(ask_health(name, url, timeout) for url in endpoints)
    return out


def dispatch_input(stacks: Sequence[str]) -> str:
    """The ``stack`` input of deploy.yml: the stacks to redeploy, separated by commas.

    deploy.yml hands it to ``keyops stack list --only``, which puts them in deploy order.
    """
    return ",".join(stacks)


def _describe(e: Expiry) -> str:
    if e.expires_in is None:
        return e.problem or "unknown"
    if e.expires_in <= 0:
        return f"expired {(-e.expires_in) // DAY}d {(-e.expires_in) % DAY // 3600}h ago"
    return f"expires in {e.expires_in // DAY}d {e.expires_in % DAY // 3600}h"


def bundles_chore(args: argparse.Namespace) -> int:
    if args.within_days < 1:
        raise UsageError(f"--within-days {args.within_days} must be at least 1", "")
    if args.dispatch and not args.repo_slug:
        raise UsageError("--dispatch needs --repo-slug", "Pass --repo-slug OWNER/REPO.")
    now = parse_now(args.now).timestamp()
    if args.bundle is not None:
        expiries = [bundle_expiry(args.bundle, now)]
    else:
        expiries = endpoint_expiries(repo.find_root(args.repo), args.stack, args.timeout)
    window = args.within_days * DAY
    due: list[str] = []
    for e in expiries:
        soon = not e.unreachable and (e.expires_in is None or e.expires_in < window)
        if soon and e.stack not in due:
            due.append(e.stack)
        verdict = "redeploy" if soon else ("unreachable" if e.unreachable else "ok")
        print(f"{e.stack}  {e.where}  {_describe(e)}  -> {verdict}")
    unreachable = sum(1 for e in expiries if e.unreachable)
    if not due:
        if unreachable:
            print(
                f"{unreachable} endpoint(s) could not be asked; no other bundle expires within "
                f"{args.within_days} day(s)"
            )
            return EXIT_FINDINGS
        print(f"no bundle expires within {args.within_days} day(s)")
        return EXIT_OK
    if not args.dispatch:
        print(f"redeploy needed: {', '.join(due)} (pass --dispatch deploy.yml to trigger it)")
        return EXIT_FINDINGS
    value = dispatch_input(due)
    GitHub.from_env(args.repo_slug).dispatch_workflow(args.dispatch, args.ref, {"stack": value})
    print(f"dispatched {args.dispatch} on {args.ref} with stack={value}")
    return EXIT_FINDINGS if unreachable else EXIT_OK


def issues_chore(args: argparse.Namespace, github: GitHub | None) -> int:
    """``github`` is None only for a dry run without a token: then GitHub is not asked at all."""
    root = repo.find_root(args.repo)
    today = parse_day(args.now)
    wanted = wanted_issues(root, args.stack, today)
    scope = set(args.stack) if args.stack else None
    if github is None:
        print(
            "note: GITHUB_TOKEN is not set, so the open issues were not read; these are the "
            "issues that should be open (with a token, --dry-run also says which exist, would "
            "change or would close)"
        )
        for _key, want in sorted(wanted.items()):
            print(f"would open or keep: {want.title}")
    else:
        for line in sync_issues(github, wanted, scope, args.label, today, dry_run=args.dry_run):
            print(line)
    if not wanted:
        print("no credential is near its maximum age")
    return EXIT_OK


def hygiene(args: argparse.Namespace) -> int:
    if args.chore == "issues":
        offline = args.dry_run and not os.environ.get("GITHUB_TOKEN")
        check_slug(args.repo_slug)
        return issues_chore(args, None if offline else GitHub.from_env(args.repo_slug))
    if args.chore == "bundles":
        return bundles_chore(args)
    raise KeyopsError(f"unknown chore {args.chore!r}", "Use issues or bundles.")  # pragma: no cover
