"""New secrets typed in or read from a file: never from argv or the environment.

Shared by every command that takes a new Pusher key and secret (``rotate`` for a successor,
``client add`` for a client's first key) or a new HMAC secret (``app-auth rotate``): from stdin
(two lines; typed without echo on a terminal) or from ``--from-file``, where other users and
logs cannot see them. Nothing here ever puts a value into a message. A file holding a new secret
should be readable by its owner only; one that others can read gets a warning, since the secret
may already have been copied.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import stat
import sys
from pathlib import Path

from keyops.core import lifecycle
from keyops.core.errors import InputError, UsageError

FROM_FILE_HELP = "read the key (line 1) and secret (line 2) from this file instead of stdin"


def add_credential_arguments(parser: argparse.ArgumentParser) -> None:
    """``--id`` and ``--from-file``, the same for every command that adds a credential."""
    parser.add_argument(
        "--id", metavar="ID", help="credential id (default: <client>-<yyyy-mm>, suffixed if taken)"
    )
    parser.add_argument("--from-file", metavar="PATH", type=Path, help=FROM_FILE_HELP)


def warn_if_readable_by_others(path: Path, option: str) -> None:
    """A warning on stderr when ``path`` is readable by its group or by everyone."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return  # reading it reports the problem
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        print(
            f"warning: {option} {path} is readable by other users (mode {mode:04o}); a new secret "
            "belongs in a file only you can read (chmod 600, or umask 077 before writing it). "
            "Delete it once keyops has read it.",
            file=sys.stderr,
        )


def read_pair(from_file: Path | None, command: str = "rotate") -> tuple[str, str]:
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
        warn_if_readable_by_others(from_file, "--from-file")
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
            f'Example: printf \'%s\\n%s\\n\' "$KEY" "$SECRET" | keyops {command} … '
            "(or use --from-file).",
        )
    return lines[0], lines[1]


def read_checked_pair(from_file: Path | None, command: str = "rotate") -> tuple[str, str]:
    """:func:`read_pair`, refusing anything but two different values in Pusher's format."""
    key, secret = read_pair(from_file, command)
    lifecycle.check_pusher_hex(key, "key")
    lifecycle.check_pusher_hex(secret, "secret")
    if key == secret:
        raise UsageError(
            "the key and the secret are the same value",
            "Copy both from the Pusher dashboard (App Keys): they differ.",
        )
    return key, secret


def credential_id(
    requested: str | None, client: str, stack: str, today: dt.date, taken: set[str]
) -> str:
    """``--id`` when it is valid and free in the stack, else the default id."""
    if requested is None:
        return lifecycle.default_id(client, today, taken)
    if not lifecycle.ID_RE.fullmatch(requested):
        raise UsageError(
            f"--id {requested!r} is not a valid credential id",
            "Use 3-63 characters of lowercase letters, digits and '-'.",
        )
    if requested in taken:
        raise UsageError(
            f"credential id {requested!r} is already used in stack {stack}",
            "Ids are unique within a stack and never reused; pick another --id or omit "
            "it for the default.",
        )
    return requested
