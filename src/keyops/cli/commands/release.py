"""``keyops release``: record which credential a bundled app release carries.

A bundled key lives on in every binary that shipped it, so retiring it needs the share of
active installs on app versions that carry it. ``keyops release --stack S --client C
--app-version V --id ID`` appends ``{app_version, credential_id, recorded}`` to the client
file's ``releases:`` list, through the same checked, verified edit as the lifecycle commands
(add ``--pr`` for a branch and a pull request). ``keyops adoption --from versions`` then turns
an app store's installs-per-version export into adoption evidence with these records.
"""

from __future__ import annotations

import argparse

from keyops.cli.change import add_edit_arguments, run_change
from keyops.cli.proposal import Proposal, Target
from keyops.core import lifecycle
from keyops.core.errors import UsageError
from keyops.protocol.selection import SEMVER_RE


def register(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    parser.add_argument(
        "--app-version", required=True, metavar="V", help="the release's version, e.g. 5.2.0"
    )
    parser.add_argument(
        "--id", required=True, metavar="ID", help="the credential built into it (keyops export)"
    )


def release(args: argparse.Namespace) -> int:
    if len(args.app_version) > 256 or not SEMVER_RE.fullmatch(args.app_version):
        raise UsageError(
            f"--app-version {args.app_version[:40]!r} is not a semantic version",
            "Pass the version the app store shows, e.g. 5.2.0.",
        )

    def build(target: Target) -> Proposal:
        delivery = target.document.get("delivery")
        if delivery != "bundled":
            raise UsageError(
                f"{target.relpath} is a {delivery} client; release records are for bundled "
                "clients, whose key ships inside the app",
                "Served clients' adoption comes from the endpoint: keyops adoption --from "
                "cloudwatch (docs/rotation.md).",
            )
        document = lifecycle.record_release(
            target.document, args.app_version, args.id, target.today
        )
        return Proposal(
            document=document,
            action="release",
            subject=args.app_version,
            changes=[f"release {args.app_version} carries {args.id}"],
            why=f"installs of {target.client} {args.app_version} hold {args.id}; adoption "
            "evidence for its retirement counts them",
            next_step=(
                f"when retiring a key of {target.client}, export active installs per app version "
                f"and run keyops adoption --from versions FILE --stack {target.stack} "
                f"--client {target.client}"
            ),
            verify=[f"the {args.app_version} build was made from keyops export with {args.id}"],
        )

    return run_change(args, build)
