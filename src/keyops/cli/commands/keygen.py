"""``keyops keygen``: a new age identity for sops, written to a new file (mode 0600).

The identity is made in this process (X25519 from the operating system's CSPRNG), so it never
passes through argv, the environment, another program or a temporary file. Its public recipient
goes to stdout, alone on its line, for ``keyops stack add --age``; what was written goes to
stderr. An existing file is never overwritten.

sops reads identities from ``$SOPS_AGE_KEY_FILE``, ``$SOPS_AGE_KEY`` and its default key file
(``~/.config/sops/age/keys.txt``) together, so a machine can hold the identities of several
stacks: see docs/getting-started.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from keyops.core.atomic import PRIVATE, make_dirs, write_atomic
from keyops.core.dates import utcnow
from keyops.core.errors import EXIT_OK, InputError
from keyops.store import age
from keyops.store.sops import default_age_key_file


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE",
        help="the new key file (mode 0600; missing directories are created mode 0700)",
    )


def _make_parents(path: Path) -> None:
    missing = [p for p in reversed(path.parents) if not p.exists()]
    for directory in missing:
        try:
            make_dirs(directory, mode=0o700)
        except OSError as exc:
            raise InputError(
                f"cannot create the directory {directory}: {exc.strerror or exc}",
                "Choose a --out in a directory you can write.",
            ) from None


def keygen(args: argparse.Namespace) -> int:
    out: Path = args.out.expanduser()
    if out.exists() or out.is_symlink():
        raise InputError(
            f"{out} already exists; keyops never overwrites a key file",
            "Name a new file. sops reads several identities at once (docs/getting-started.md).",
        )
    _make_parents(out)
    identity = age.generate()
    write_atomic(out, identity.key_file(utcnow()), mode=PRIVATE, overwrite=False)
    print(identity.recipient)
    default = default_age_key_file(os.environ)
    found = (
        "sops reads this file without any setting"
        if default is not None and out.absolute() == default.absolute()
        else f"for sops to find it: export SOPS_AGE_KEY_FILE={os.fspath(out)}"
    )
    print(
        f"wrote a new age identity to {out} (mode 0600); its recipient is above.\n"
        f"next: keyops stack add NAME --age {identity.recipient}; {found}. Back the file up: "
        "nothing encrypted to it opens without it.",
        file=sys.stderr,
    )
    return EXIT_OK
