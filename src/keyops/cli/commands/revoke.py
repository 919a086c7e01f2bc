"""``keyops revoke``: the emergency path. Any live credential -> revoked, with reason and incident.

No overlap is needed. When the revoked credential was the active one and a pending credential
exists, the same change can promote it (asked on a terminal; ``--promote-pending`` or
``--no-promote-pending`` otherwise), so the client is never left without a key.
"""

from __future__ import annotations

import argparse
import sys

from keyops.cli import refusals
from keyops.cli.change import add_edit_arguments, run_change, tombstone_hint
from keyops.cli.proposal import Proposal, Target
from keyops.core import lifecycle


def register(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    parser.add_argument("--id", required=True, metavar="ID", help="the credential to revoke")
    parser.add_argument("--reason", required=True, metavar="TEXT", help="why, in words")
    parser.add_argument("--incident", required=True, metavar="REF", help="ticket or URL")
    parser.add_argument(
        "--promote-pending",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="when revoking the active credential, promote the pending one in the same change "
        "(default: ask on a terminal, otherwise do not)",
    )


def _ask(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def revoke(args: argparse.Namespace) -> int:
    def build(target: Target) -> Proposal:
        before = refusals.current(target, args.id)
        state = before.get("state")
        pending = lifecycle.in_state(target.document, "pending")
        candidate = str(pending[0]["id"]) if len(pending) == 1 else None
        choice = False
        if state == "active" and candidate is not None:
            choice = args.promote_pending
            if choice is None and sys.stdin.isatty():
                choice = _ask(
                    f"{args.id} is active. Promote pending {candidate} in the same change?"
                )
        refusals.revoke(target, args.id, promotes=bool(choice))
        document = lifecycle.revoke(
            target.document, args.id, target.today, args.reason, args.incident
        )
        changes = [f"{args.id}: {state} → revoked ({args.incident})"]
        hint = ""
        if state == "active" and candidate is not None:
            if choice:
                document, _ = lifecycle.promote(document, candidate, target.today)
                changes.append(f"{candidate}: pending → active (activated {target.today})")
            else:
                hint = (
                    f"; pending {candidate} was not promoted (rerun with --promote-pending to "
                    "promote it in this change)"
                )
        return Proposal(
            document=document,
            action="revoke",
            subject=args.id,
            changes=changes,
            why=f"{args.reason} (incident {args.incident})",
            next_step="merge quickly, then "
            + tombstone_hint(target, args.id, target.today).removeprefix("after merge, ")
            + hint,
            verify=[
                f"incident {args.incident} describes why {args.id} is revoked",
                "an approver other than the author approves this pull request",
                "the client still has an active credential after the change",
            ],
        )

    return run_change(args, build)
