"""``keyops check``: is this change to the credentials safe? (docs/policies.md)

The base is read from git objects at ``--base REF`` (no checkout), the head is the working tree.
Each side is decrypted once, in parallel, and a file identical on both sides only once in all.
A stack no key here decrypts is skipped and named (exit 2 if it was named with ``--stack``, or
if no stack at all can be decrypted, or with ``--all-stacks``, which CI passes).
Credentials are paired by id across the two states and every policy rule runs over
(base, head, context). Without ``--base`` only the rules that need no history run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keyops.cli import options, reporters
from keyops.cli.progress import Progress
from keyops.cli.reporters import FORMATS, Report
from keyops.cli.reporters.text import use_colour
from keyops.core.dates import NOW_HELP, parse_day
from keyops.core.errors import EXIT_FINDINGS, EXIT_OK, UsageError
from keyops.core.findings import has_errors
from keyops.policy import Context, evaluate, load_adoption, load_reviews, steps
from keyops.policy.diff import Change, changes
from keyops.policy.rules import Facts
from keyops.policy.shared_sops import load_change
from keyops.store import git, repo, settings
from keyops.store.sources import GitSource


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", metavar="REF", help="git revision the change is compared with")
    parser.add_argument("--now", metavar="WHEN", help=NOW_HELP)
    parser.add_argument("--author", metavar="LOGIN", help="GitHub login of the change's author")
    parser.add_argument(
        "--approvals",
        metavar="FILE",
        type=Path,
        help="GitHub REST reviews JSON of the pull request",
    )
    parser.add_argument(
        "--adoption",
        metavar="FILE",
        type=Path,
        help="adoption evidence: the file keyops adoption writes, or JSON "
        "{credential_id: percent of installs still using it} (docs/adoption.md)",
    )
    parser.add_argument("--head-sha", metavar="SHA", help="the head commit reviews must approve")
    options.add_stack_selection(parser)
    parser.add_argument("--format", choices=FORMATS, default="text")


def check(args: argparse.Namespace) -> int:
    root = repo.find_root(args.repo)
    if args.approvals is not None and not args.author:
        raise UsageError(
            "--approvals needs --author",
            "Pass the pull request author's login, so that their own review never counts.",
        )
    rules = settings.load(root)
    ctx = Context(
        now=parse_day(args.now),
        author=args.author,
        approvals=load_reviews(args.approvals) if args.approvals is not None else None,
        adoption=load_adoption(args.adoption) if args.adoption is not None else None,
        head_sha=args.head_sha or git.head(root),
    )
    base_source = GitSource(root, args.base) if args.base else None
    progress = Progress()
    try:
        base, head = load_change(
            root,
            base_source,
            stacks=args.stack,
            progress=progress if progress.enabled else None,
            skip_stacks_without_key=not args.all_stacks,
        )
    finally:
        progress.close()
    for stack in sorted(set(head.missing_keys) | set(base.missing_keys if base else ())):
        print(
            f"note: stack {stack} was skipped: no key here can decrypt it; CI's keyops check "
            f"covers it (keyops check --stack {stack} names who can decrypt it).",
            file=sys.stderr,
        )
    findings = evaluate(base, head, ctx, rules, root=root)
    if base_source is not None:
        findings = steps.explain(findings, root, base_source.commit)
    diff: list[Change] = []
    label = None
    if args.format == "markdown":
        facts = Facts(head=head, ctx=ctx, settings=rules, base=base, root=root)
        diff = list(changes(facts)) if base is not None else []
        if base_source is not None:
            short = base_source.commit[:12]
            label = short if base_source.commit.startswith(args.base) else f"{args.base} ({short})"
    report = Report(
        findings,
        head.file_count,
        command="check",
        what="checked",
        colour=use_colour(sys.stdout.isatty()),
        changes=diff,
        base_label=label,
    )
    sys.stdout.write(reporters.render(args.format, report))
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK
