"""``keyops promote``: a pending credential becomes active; the active one starts retiring."""

from __future__ import annotations

import argparse
import datetime as dt

from keyops.cli import refusals
from keyops.cli.change import add_edit_arguments, run_change
from keyops.cli.proposal import Proposal, Target
from keyops.core import lifecycle


def register(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    parser.add_argument("--id", metavar="ID", help="the pending credential (default: the only one)")


def retire_hint(target: Target, ident: str, since: dt.date) -> str:
    earliest = target.settings.earliest_retirement(since)
    return (
        f"retire {ident} after {earliest.isoformat()}, once adoption is below "
        f"{target.settings.max_retire_adoption_percent:g}% (keyops retire --stack {target.stack} "
        f"--client {target.client} --id {ident})"
    )


def promote(args: argparse.Namespace) -> int:
    def build(target: Target) -> Proposal:
        ident = lifecycle.pick_pending(target.document, args.id)
        refusals.promote(target, ident)
        document, demoted = lifecycle.promote(target.document, ident, target.today)
        changes = [f"{ident}: pending → active (activated {target.today.isoformat()})"]
        changes += [
            f"{old}: active → retiring (retiring_since {target.today.isoformat()})"
            for old in demoted
        ]
        hints = [retire_hint(target, old, target.today) for old in demoted]
        return Proposal(
            document=document,
            action="promote",
            subject=ident,
            changes=changes,
            why=f"{ident} replaces {', '.join(demoted) or 'no previous credential'} for "
            f"{target.client} in {target.stack}",
            next_step="; ".join(hints) or "nothing: no credential started retiring",
            verify=[
                f"{ident} works: its rollout was healthy (served) or the release that carries "
                "it is out (bundled)",
                "the retiring credential stays in the auth keyring during the overlap",
            ],
        )

    return run_change(args, build)
