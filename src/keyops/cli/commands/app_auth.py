"""``keyops app-auth``: rotate or retire the HMAC secrets app builds sign their requests with.

``rotate`` adds a new active secret: from ``--secret-from-file`` or, by default, 32 bytes from
the operating system's CSPRNG (base64url). A generated secret is never printed; ask for it with
``--secret-out FILE`` (a new file, mode 0600) to hand it to the app build. Older secrets stay
active until ``retire``, because builds in users' hands still sign with them.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from keyops.cli import secret_input
from keyops.cli.change import add_edit_arguments, run_change
from keyops.cli.proposal import Proposal, Target
from keyops.core import lifecycle
from keyops.core.atomic import PRIVATE, write_atomic
from keyops.core.errors import InputError, UsageError
from keyops.store.scaffold import app_auth_secret

SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{43,}$")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("rotate", "retire"))
    add_edit_arguments(parser)
    parser.add_argument(
        "--kid", metavar="K", help="key id (rotate: default <client>-build-<yyyy><letter>)"
    )
    parser.add_argument(
        "--secret-from-file",
        metavar="PATH",
        type=Path,
        help="rotate: use this base64url secret (>= 32 bytes) instead of generating one",
    )
    parser.add_argument(
        "--secret-out",
        metavar="FILE",
        type=Path,
        help="rotate: write the new secret to this new file, mode 0600, for the app build",
    )


def _read_secret(path: Path) -> str:
    secret_input.warn_if_readable_by_others(path, "--secret-from-file")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise InputError(f"--secret-from-file {path} cannot be read", "Check the path.") from None
    if not SECRET_RE.fullmatch(value):
        raise UsageError(
            f"the secret in {path} is not base64url (no padding) of at least 32 bytes",
            "Generate one with: python -c 'import secrets,base64;"
            'print(base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode())\'',
        )
    return value


def app_auth(args: argparse.Namespace) -> int:
    if args.action == "retire":
        if args.kid is None:
            raise UsageError("app-auth retire needs --kid", "Name the kid to retire.")
        if args.secret_from_file or args.secret_out:
            raise UsageError("--secret-from-file and --secret-out apply to rotate only", "")
        return run_change(args, _retire(args.kid))
    # Checked before the rotation, or its secret could not be handed over; lexists, so that a
    # dangling link planted at the name counts as taken (write_atomic refuses it too).
    if args.secret_out is not None and os.path.lexists(args.secret_out):
        raise InputError(
            f"{args.secret_out} already exists", "Name a new file; keyops never overwrites it."
        )
    generated = args.secret_from_file is None
    secret = app_auth_secret() if generated else _read_secret(args.secret_from_file)

    def build(target: Target) -> Proposal:
        taken = {
            str(a.get("kid")) for a in target.document.get("app_auth", []) if isinstance(a, dict)
        }
        kid = args.kid or lifecycle.default_kid(target.client, target.today, taken)
        document = lifecycle.app_auth_rotate(target.document, kid, secret, target.today)
        old = sorted(taken)
        return Proposal(
            document=document,
            action="app-auth-rotate",
            subject=kid,
            changes=[
                f"app_auth {kid}: new active secret"
                + (" (generated, 32 random bytes)" if generated else "")
            ],
            why=f"new request-signing secret for {target.client} app builds",
            next_step=f"build the next {target.client} release with keyops client-config; once "
            f"builds using {', '.join(old) or 'older kids'} have faded out, retire them "
            f"(keyops app-auth retire --stack {target.stack} --client {target.client} --kid K)",
            verify=[f"{kid} is new and no other app_auth entry changed"],
        )

    code = run_change(args, build)
    if args.secret_out is not None:
        write_atomic(args.secret_out, (secret + "\n").encode(), mode=PRIVATE, overwrite=False)
        print(f"wrote the new secret to {args.secret_out} (mode 0600)")
    return code


def _retire(kid: str) -> Any:
    def build(target: Target) -> Proposal:
        document = lifecycle.app_auth_retire(target.document, kid, target.today)
        return Proposal(
            document=document,
            action="app-auth-retire",
            subject=kid,
            changes=[f"app_auth {kid}: active → retired"],
            why=f"app builds signing with {kid} have faded out",
            next_step=f"requests signed with {kid} are refused once the next bundle deploys",
            verify=[f"no supported {target.client} release still signs with {kid}"],
        )

    return build
