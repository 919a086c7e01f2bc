"""``keyops rotate``: add a new pending credential (key + secret from the Pusher dashboard).

The key and secret are read from stdin (two lines; typed without echo on a terminal) or from
``--from-file PATH``, never from argv or the environment, where other users and logs see them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from keyops.cli.change import add_edit_arguments, run_change
from keyops.cli.proposal import Proposal, Target
from keyops.core import lifecycle
from keyops.core.errors import InputError, UsageError


def register(parser: argparse.ArgumentParser) -> None:
    add_edit_arguments(parser)
    parser.add_argument(
        "--id", metavar="ID", help="credential id (default: <client>-<yyyy-mm>, suffixed if taken)"
    )
    parser.add_argument(
        "--from-file",
        metavar="PATH",
        type=Path,
        help="read the key (line 1) and secret (line 2) from this file instead of stdin",
    )
    parser.add_argument(
        "--rollout-percent", type=int, metavar="N", help="serve to this share of installs (1-100)"
    )
    parser.add_argument(
        "--min-app-version", metavar="V", help="serve only to app versions >= V (semver)"
    )


def read_pair(from_file: Path | None) -> tuple[str, str]:
    """Key and secret, from a file or stdin; never echoed, never in an error message."""
    if from_file is not None:
        try:
            text = from_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"--from-file {from_file} does not exist", "Check the path.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"--from-file {from_file} cannot be read ({type(exc).__name__})",
                "It must be a UTF-8 text file with the key on line 1 and the secret on line 2.",
            ) from None
        where = f"--from-file {from_file}"
    elif sys.stdin.isatty():
        key = getpass.getpass("Pusher key (hidden): ")
        secret = getpass.getpass("Pusher secret (hidden): ")
        return key.strip(), secret.strip()
    else:
        text = sys.stdin.read()
        where = "stdin"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 2:
        raise UsageError(
            f"{where} must hold exactly two non-empty lines, the key then the secret; "
            f"found {len(lines)}",
            'Example: printf \'%s\\n%s\\n\' "$KEY" "$SECRET" | keyops rotate … '
            "(or use --from-file).",
        )
    return lines[0], lines[1]


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


def read_checked_pair(from_file: Path | None) -> tuple[str, str]:
    key, secret = read_pair(from_file)
    lifecycle.check_pusher_hex(key, "key")
    lifecycle.check_pusher_hex(secret, "secret")
    if key == secret:
        raise UsageError(
            "the key and the secret are the same value",
            "Copy both from the Pusher dashboard (App Keys): they differ.",
        )
    return key, secret


def rotate(args: argparse.Namespace) -> int:
    def build(target: Target) -> Proposal:
        # Asked only once the file is known to be editable, so nobody types a secret in vain.
        key, secret = read_checked_pair(args.from_file)
        stack = target.current.stacks.get(target.stack)
        taken = {c.id for _, c in stack.credentials()} if stack else set()
        if args.id is not None:
            if not lifecycle.ID_RE.match(args.id):
                raise UsageError(
                    f"--id {args.id!r} is not a valid credential id",
                    "Use 3-63 characters of lowercase letters, digits and '-'.",
                )
            if args.id in taken:
                raise UsageError(
                    f"credential id {args.id!r} is already used in stack {target.stack}",
                    "Ids are unique within a stack and never reused; pick another --id or omit "
                    "it for the default.",
                )
        cred_id = args.id or lifecycle.default_id(target.client, target.today, taken)
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
