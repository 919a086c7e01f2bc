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
from pathlib import Path
from typing import Any

from keyops.cli import options, pr
from keyops.cli.proposal import Proposal, Target
from keyops.core.errors import EXIT_OK, InputError, Interrupted, Refused
from keyops.core.findings import Finding, Severity
from keyops.policy import Context, evaluate, replace_document
from keyops.store import edit, loader, names, repo, settings
from keyops.store.loader import LoadResult
from keyops.store.sops import Sops, timeout_from_env
from keyops.store.sources import CREDENTIALS_DIR, WorktreeSource

#: Rules that are judged at review time, not when the change is made.
REVIEW_TIME_RULES = frozenset({"approval"})


Builder = Callable[[Target], Proposal]


def add_edit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, metavar="S", help="the stack, e.g. dev")
    parser.add_argument("--client", required=True, metavar="C", help="the client, e.g. ios")
    options.add_now(parser, records=True)
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="edit even if the file has uncommitted changes (they become part of this change); "
        "not needed on top of what the previous keyops command wrote",
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
    """The existing client file ``--stack``/``--client`` names, decrypted and valid."""
    today = options.recorded_now(args).date()  # a bad --now is refused before any work
    root = repo.find_root(args.repo)
    loader.check_stacks(root, WorktreeSource(root), [args.stack])
    relpath = names.require_client(root, args.stack, args.client)
    builds_on = edit.ensure_clean(root, relpath, allow_dirty=args.allow_dirty)
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
    return _target(
        args,
        root,
        relpath,
        today,
        rules,
        sops,
        (current, skipped),
        record.plain,
        record.raw,
        builds_on=builds_on,
    )


def open_new_target(args: argparse.Namespace) -> Target:
    """A client file that does not exist yet, in a stack this machine can decrypt."""
    today = options.recorded_now(args).date()
    root = repo.find_root(args.repo)
    relpath = f"{CREDENTIALS_DIR}/{args.stack}/{args.client}.yaml"
    source = WorktreeSource(root)
    loader.check_stacks(root, source, [args.stack])
    if (root / relpath).exists() or (root / relpath).is_symlink():
        raise InputError(
            f"client {args.client!r} already exists in stack {args.stack} ({relpath})",
            f"Add a key to it with keyops rotate --stack {args.stack} --client {args.client}.",
        )
    rules = settings.load(root)
    sops = Sops(root, timeout=timeout_from_env())
    loaded = load_current(root, args.stack, sops)
    return _target(args, root, relpath, today, rules, sops, loaded, {}, b"", new=True)


def _target(
    args: argparse.Namespace,
    root: Path,
    relpath: str,
    today: dt.date,
    rules: settings.Settings,
    sops: Sops,
    loaded: tuple[LoadResult, list[str]],
    document: dict[str, Any],
    raw: bytes,
    *,
    builds_on: str | None = None,
    new: bool = False,
) -> Target:
    current, skipped = loaded
    return Target(
        root=root,
        stack=args.stack,
        client=args.client,
        relpath=relpath,
        today=today,
        settings=rules,
        current=current,
        document=document,
        raw=raw,
        sops=sops,
        skipped_stacks=skipped,
        builds_on=builds_on,
        new=new,
    )


# -- the policy engine -------------------------------------------------------------------------


def _key(f: Finding) -> tuple[str, str, str | None, str]:
    return (f.rule, f.path, f.credential_id, f.message)


def introduced_findings(
    current: LoadResult,
    relpath: str,
    document: dict[str, Any],
    ctx: Context,
    rules: settings.Settings,
    root: Path,
) -> list[Finding]:
    """Findings that writing ``document`` to ``relpath`` would add to ``current``'s."""
    proposed = replace_document(current, relpath, document)
    before = {_key(f) for f in evaluate(current, current, ctx, rules, root=root)}
    after = evaluate(current, proposed, ctx, rules, root=root)
    return [f for f in after if _key(f) not in before]


def policy_findings(target: Target, proposal: Proposal) -> list[Finding]:
    """Findings the change introduces: head findings not already present before it."""
    ctx = Context(now=target.today, adoption=proposal.adoption)
    return introduced_findings(
        target.current, target.relpath, proposal.document, ctx, target.settings, target.root
    )


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


def tombstone_hint(target: Target, ident: str, ended: dt.date) -> str:
    removable = target.settings.removable_from(ended)
    return (
        f"after merge, delete {ident}'s credential set in the Pusher dashboard; its entry may "
        f"leave the file from {removable.isoformat()} (tombstone period)"
    )


# -- running a change --------------------------------------------------------------------------


def run_change(
    args: argparse.Namespace,
    build: Builder,
    opener: Callable[[argparse.Namespace], Target] = open_target,
) -> int:
    """Open the target (``opener``), build the proposal, check it, write it, report it."""
    target = opener(args)
    proposal = build(target)
    if proposal.document == target.document:
        print(f"{target.relpath}: nothing to change")
        return EXIT_OK
    findings = refuse_or_warn(policy_findings(target, proposal), target.relpath)
    edit.save(
        target.root,
        target.relpath,
        target.raw,
        proposal.document,
        target.sops,
        by=f"keyops {proposal.action.replace('app-auth-', 'app-auth ')}",
        new=target.new,
    )
    try:
        report(target, proposal, findings)
        if args.pr:
            pr.open_pull_request(target, proposal)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after {target.relpath} was written; the edit itself is complete",
            "Review it with git diff, then commit it (or rerun with --pr on a clean tree).",
        ) from None
    return EXIT_OK


def report(target: Target, proposal: Proposal, findings: list[Finding]) -> None:
    out = sys.stdout
    verb = "created" if target.new else "updated"
    out.write(f"{verb} {target.relpath} (verified: decrypts to the intended content)\n")
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
    if target.builds_on:
        out.write(
            f"  note: this builds on the uncommitted change {target.builds_on} made to "
            f"{target.relpath}; both are part of this change\n"
        )
    if target.skipped_stacks:
        out.write(
            f"  note: key uniqueness not checked against stack(s) "
            f"{', '.join(target.skipped_stacks)} (no decryption key here); CI's keyops check "
            "covers them\n"
        )
    out.write(f"next: {proposal.next_step}\n")
