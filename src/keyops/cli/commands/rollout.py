"""``keyops rollout``: change the share of installs a pending credential is served to."""

from __future__ import annotations

import argparse

from keyops.cli import refusals
from keyops.cli.change import add_edit_arguments, run_change
from keyops.cli.proposal import Proposal, Target
from keyops.core import lifecycle


def register(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    parser.add_argument("--id", required=True, metavar="ID", help="the pending credential")
    parser.add_argument("--percent", required=True, type=int, metavar="N", help="1-100")


def rollout(args: argparse.Namespace) -> int:
    def build(target: Target) -> Proposal:
        refusals.rollout(target, args.id, args.percent)
        before = lifecycle.lookup(target.document, args.id)
        document = lifecycle.rollout(target.document, args.id, args.percent)
        old = before.get("rollout_percent")
        was = f"{old}%" if old is not None else "none"
        where = f"--stack {target.stack} --client {target.client} --id {args.id}"
        return Proposal(
            document=document,
            action="rollout",
            subject=args.id,
            changes=[f"{args.id}: rollout {was} → {args.percent}%"],
            why=f"widen (or narrow) the served share of {args.id}",
            next_step=f"watch connection errors (4001/4009) for {args.id}; when healthy, "
            f"promote it (keyops promote {where})",
            verify=[f"{args.id}'s current share shows no rise in connection errors"],
        )

    return run_change(args, build)
