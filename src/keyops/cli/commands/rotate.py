"""``keyops rotate``: add a new pending credential (key + secret from the Pusher dashboard).

The key and secret are read from stdin (two lines; typed without echo on a terminal) or from
``--from-file PATH``, never from argv or the environment, where other users and logs see them.
"""

from __future__ import annotations

import argparse

from keyops.cli.change import add_edit_arguments, run_change
from keyops.cli.proposal import Proposal, Target
from keyops.cli.secret_input import (
    add_credential_arguments,
    credential_id,
    read_checked_pair,
)
from keyops.core import lifecycle


def register(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    add_credential_arguments(parser)
    parser.add_argument(
        "--rollout-percent", type=int, metavar="N", help="serve to this share of installs (1-100)"
    )
    parser.add_argument(
        "--min-app-version", metavar="V", help="serve only to app versions >= V (semver)"
    )


def _next_step(target: Target, cred_id: str, delivery: str) -> str:
    where = f"--stack {target.stack} --client {target.client} --id {cred_id}"
    if delivery == "served":
        return (
            f"after merge, raise the rollout (keyops rollout {where} --percent N) and promote "
            f"{cred_id} (keyops promote {where}) once its rollout is healthy"
        )
    if delivery == "bundled":
        return (
            f"after merge, promote {cred_id} (keyops promote {where}), then build the next app "
            f"release with keyops export --stack {target.stack} --client {target.client}"
        )
    return (
        f"after merge, deploy the auth keyring (it now holds {cred_id}), move servers to the "
        f"new key, then promote {cred_id} (keyops promote {where})"
    )


def rotate(args: argparse.Namespace) -> int:
    def build(target: Target) -> Proposal:
        # Asked only once the file is known to be editable, so nobody types a secret in vain.
        key, secret = read_checked_pair(args.from_file, "rotate")
        stack = target.current.stacks.get(target.stack)
        taken = {c.id for _, c in stack.credentials()} if stack else set()
        cred_id = credential_id(args.id, target.client, target.stack, target.today, taken)
        document = lifecycle.rotate(
            target.document,
            cred_id=cred_id,
            key=key,
            secret=secret,
            today=target.today,
            rollout_percent=args.rollout_percent,
            min_app_version=args.min_app_version,
        )
        extras = []
        if args.rollout_percent is not None:
            extras.append(f"rollout {args.rollout_percent}%")
        if args.min_app_version is not None:
            extras.append(f"min app version {args.min_app_version}")
        detail = f" ({', '.join(extras)})" if extras else ""
        delivery = str(target.document.get("delivery"))
        return Proposal(
            document=document,
            action="rotate",
            subject=cred_id,
            changes=[f"{cred_id}: new pending credential{detail}"],
            why=f"routine rotation of the {target.client} credential set in {target.stack}",
            next_step=_next_step(target, cred_id, delivery),
            verify=[
                f"the key and secret of {cred_id} were created in the Pusher dashboard for app "
                f"{target.document.get('pusher', {}).get('app_id')} "
                f"({target.document.get('pusher', {}).get('cluster')})",
                "no other credential changed (keyops check's summary lists every change)",
            ],
        )

    return run_change(args, build)
