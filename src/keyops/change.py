"""One lifecycle change, end to end: load, propose, ask the policy engine, write, report.

Every lifecycle command (rotate, promote, retire, revoke, rollout, app-auth) is a small
``build`` function that turns the current decrypted document into a :class:`Proposal`. This
module does the rest the same way for all of them, so that a refusal, a write and a pull request
look and behave alike whatever the move.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyops import edit, loader, repo, settings
from keyops.commands.status import parse_now
from keyops.errors import EXIT_OK, InputError, PolicyRefused
from keyops.findings import Finding, Severity
from keyops.loader import LoadResult
from keyops.policy import Context, evaluate, replace_document
from keyops.settings import Settings
from keyops.sops import Sops, timeout_from_env
from keyops.sources import CREDENTIALS_DIR, WorktreeSource

#: Rules that are judged at review time, not when the change is made.
REVIEW_TIME_RULES = frozenset({"approval"})


@dataclass
class Proposal:
    """What a command wants to change, and how to explain it to a reviewer."""

    document: dict[str, Any]
    action: str  # rotate | promote | retire | revoke | rollout | app-auth-rotate | ...
    subject: str  # the credential id or app_auth kid the change is named after
    changes: list[str]  # one line per effect, e.g. "ios-2026-12: pending → active"
    why: str
    next_step: str
    verify: list[str] = field(default_factory=list)
    adoption: dict[str, float] | None = None


@dataclass
class Target:
    root: Path
    stack: str
    client: str
    relpath: str
    today: dt.date
    settings: Settings
    current: LoadResult
    document: dict[str, Any]
    raw: bytes
    sops: Sops
    skipped_stacks: list[str]


Builder = Callable[[Target], Proposal]


def add_edit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, metavar="S", help="the stack, e.g. dev")
    parser.add_argument("--client", required=True, metavar="C", help="the client, e.g. ios")
    parser.add_argument(
        "--now", metavar="DATE", help="the date of the change (default: today, UTC)"
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="edit even if the file has uncommitted changes (they become part of this change)",
    )
    parser.add_argument(
        "--pr",
        action="store_true",
        help="commit on a new branch keyops/<stack>-<client>-<action>-<id> and open a pull "
        "request (or print the exact gh command)",
    )


# -- loading -----------------------------------------------------------------------------------


def load_current(root: Path, stack: str, sops: Sops) -> tuple[LoadResult, list[str]]:
    """Every stack this machine can decrypt; the target stack must be one of them.

    Other stacks are needed for the repository-wide ``unique-key`` rule. A stack whose key is
    not here is skipped and named, so the user knows CI will check it instead. Every file is
    decrypted once, whichever keys are here.
    """
    source = WorktreeSource(root)
    loader.check_stacks(root, source, [stack])
    result = loader.load(root, source, sops=sops, skip_stacks_without_key=True)
    if stack in result.missing_keys:
        raise result.missing_keys[stack]
    return result, sorted(result.missing_keys)


def open_target(args: argparse.Namespace) -> Target:
    root = repo.find_root(args.repo)
    relpath = f"{CREDENTIALS_DIR}/{args.stack}/{args.client}.yaml"
    path = root / relpath
    if not path.is_file():
        folder = root / CREDENTIALS_DIR / args.stack
        known = (
            sorted(p.stem for p in folder.glob("*.yaml") if not p.name.startswith(("_", ".")))
            if folder.is_dir()
            else []
        )
        if not folder.is_dir():
            raise InputError(
                f"stack {args.stack!r} does not exist (no {CREDENTIALS_DIR}/{args.stack}/)",
                "Check --stack.",
            )
        raise InputError(
            f"{relpath} does not exist", f"Known clients of {args.stack}: {', '.join(known)}."
        )
    edit.ensure_clean(root, relpath, allow_dirty=args.allow_dirty)
    rules = settings.load(root)
    sops = Sops(root, timeout=timeout_from_env())
    current, skipped = load_current(root, args.stack, sops)
    record = current.records.get(relpath)
    errors = [f for f in current.findings if f.path == relpath and f.severity is Severity.ERROR]
    if record is None or record.plain is None or record.raw is None or errors:
        raise Refused(
            f"{relpath} fails validation, so keyops will not edit it",
            "Fix it first; keyops validate shows the same findings:",
            errors,
        )
    return Target(
        root=root,
        stack=args.stack,
        client=args.client,
        relpath=relpath,
        today=parse_now(args.now),
        settings=rules,
        current=current,
        document=record.plain,
        raw=record.raw,
        sops=sops,
        skipped_stacks=skipped,
    )


# -- the policy engine -------------------------------------------------------------------------


def _key(f: Finding) -> tuple[str, str, str | None, str]:
    return (f.rule, f.path, f.credential_id, f.message)


def policy_findings(target: Target, proposal: Proposal) -> list[Finding]:
    """Findings the change introduces: head findings not already present before it."""
    ctx = Context(now=target.today, adoption=proposal.adoption)
    proposed = replace_document(target.current, target.relpath, proposal.document)
    unchanged = evaluate(target.current, target.current, ctx, target.settings, root=target.root)
    before = {_key(f) for f in unchanged}
    after = evaluate(target.current, proposed, ctx, target.settings, root=target.root)
    return [f for f in after if _key(f) not in before]


class Refused(PolicyRefused):
    """A refused change: the one-line error, then each finding on its own line."""

    def __init__(self, what: str, fix: str, findings: list[Finding]) -> None:
        super().__init__(what, fix)
        self.findings = findings

    def render(self) -> str:
        lines = [f"  {f.render()}" for f in self.findings]
        return "\n".join([super().render(), *lines])


def refuse_or_warn(findings: list[Finding], relpath: str) -> list[Finding]:
    """Raise :class:`Refused` on any error other than review-time ones; return the rest."""
    errors = [
        f for f in findings if f.severity is Severity.ERROR and f.rule not in REVIEW_TIME_RULES
    ]
    if errors:
        raise Refused(
            f"the policy engine refuses this change to {relpath}; nothing was written",
            "Fix what each finding below names, or choose another move (docs/rotation.md):",
            errors,
        )
    return findings


# -- running a change --------------------------------------------------------------------------


def run_change(args: argparse.Namespace, build: Builder) -> int:
    target = open_target(args)
    proposal = build(target)
    if proposal.document == target.document:
        print(f"{target.relpath}: nothing to change")
        return EXIT_OK
    findings = refuse_or_warn(policy_findings(target, proposal), target.relpath)
    edit.save(target.root, target.relpath, target.raw, proposal.document, target.sops)
    try:
        report(target, proposal, findings)
        if args.pr:
            from keyops import pr

            pr.open_pull_request(target, proposal)
    except KeyboardInterrupt:
        raise edit.Interrupted(
            f"interrupted after {target.relpath} was written; the edit itself is complete",
            "Review it with git diff, then commit it (or rerun with --pr on a clean tree).",
        ) from None
    return EXIT_OK


def report(target: Target, proposal: Proposal, findings: list[Finding]) -> None:
    out = sys.stdout
    out.write(f"updated {target.relpath} (verified: decrypts to the intended content)\n")
    for line in proposal.changes:
        out.write(f"  {line}\n")
    for finding in findings:
        if finding.rule in REVIEW_TIME_RULES:
            continue
        out.write(f"  {finding.severity.value}[{finding.rule}] {finding.message}\n")
    if any(f.rule in REVIEW_TIME_RULES for f in findings):
        out.write(
            "  approval: this change needs an approving review from a configured approver other "
            "than its author; keyops check enforces it on the pull request\n"
        )
    if target.skipped_stacks:
        out.write(
            f"  note: key uniqueness not checked against stack(s) "
            f"{', '.join(target.skipped_stacks)} (no decryption key here); CI's keyops check "
            "covers them\n"
        )
    out.write(f"next: {proposal.next_step}\n")
