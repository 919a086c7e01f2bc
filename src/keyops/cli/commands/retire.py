"""``keyops retire``: a retiring credential leaves service for good (retiring -> retired)."""

from __future__ import annotations

import argparse
from pathlib import Path

from keyops.cli import refusals
from keyops.cli.change import add_edit_arguments, run_change, tombstone_hint
from keyops.cli.proposal import Proposal, Target
from keyops.core import lifecycle


def register(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    parser.add_argument("--id", required=True, metavar="ID", help="the retiring credential")
    parser.add_argument(
        "--adoption",
        metavar="FILE",
        type=Path,
        help="adoption evidence: the file keyops adoption writes, or JSON "
        '{"<credential id>": percent of installs still using it} (docs/adoption.md)',
    )


def retire(args: argparse.Namespace) -> int:
    adoption = None
    if args.adoption is not None:
        from keyops.policy import load_adoption

        adoption = load_adoption(args.adoption)

    def build(target: Target) -> Proposal:
        refusals.retire(target, args.id)
        before = lifecycle.lookup(target.document, args.id)
        document = lifecycle.retire(target.document, args.id, target.today)
        share = (
            f", adoption {adoption[args.id].short()}" if adoption and args.id in adoption else ""
        )
        return Proposal(
            document=document,
            action="retire",
            subject=args.id,
            changes=[f"{args.id}: {before.get('state')} → retired{share}"],
            why=f"{args.id} has served its overlap; old installs have moved to the new key",
            next_step=tombstone_hint(target, args.id, target.today),
            verify=[
                f"adoption of {args.id} is at or below "
                f"{target.settings.max_retire_adoption_percent:g}%",
                "an approver other than the author approves this pull request",
            ],
            adoption=adoption,
        )

    return run_change(args, build)
