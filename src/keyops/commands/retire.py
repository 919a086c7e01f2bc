"""``keyops retire``: a retiring credential leaves service for good (retiring -> retired)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from keyops import lifecycle
from keyops.change import Proposal, Target, add_edit_arguments, run_change


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "retire",
        help="retiring -> retired, after the overlap and adoption rules",
        description=__doc__,
    )
    add_edit_arguments(parser)
    parser.add_argument("--id", required=True, metavar="ID", help="the retiring credential")
    parser.add_argument(
        "--adoption",
        metavar="FILE",
        type=Path,
        help='adoption evidence, JSON {"<credential id>": percent of installs still using it}',
    )
    return parser


def tombstone_hint(target: Target, ident: str, ended: dt.date) -> str:
    removable = target.settings.removable_from(ended)
    return (
        f"after merge, delete {ident}'s credential set in the Pusher dashboard; its entry may "
        f"leave the file from {removable.isoformat()} (tombstone period)"
    )


def retire(args: argparse.Namespace) -> int:
    adoption = None
    if args.adoption is not None:
        from keyops.policy import load_adoption

        adoption = load_adoption(args.adoption)

    def build(target: Target) -> Proposal:
        before = lifecycle.lookup(target.document, args.id)
        document = lifecycle.retire(target.document, args.id, target.today)
        share = f", adoption {adoption[args.id]:g}%" if adoption and args.id in adoption else ""
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
