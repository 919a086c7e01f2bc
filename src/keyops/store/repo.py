"""Finding the keyops repository a command works on."""

from __future__ import annotations

import os
from pathlib import Path

from keyops.core.errors import InputError, RepositoryError
from keyops.store.sources import CREDENTIALS_DIR


def find_root(explicit: Path | None = None) -> Path:
    """The repository root: ``--repo``, ``$KEYOPS_REPO``, or upward from the current directory.

    A root is a directory holding ``credentials/`` or ``.sops.yaml``. A ``credentials/`` that is
    a symlink is refused here, so that no command reads or writes through it.
    """
    given = explicit or (Path(os.environ["KEYOPS_REPO"]) if os.environ.get("KEYOPS_REPO") else None)
    if given is not None:
        if not given.is_dir():
            raise InputError(f"repository directory {given} does not exist", "Check --repo.")
        root = given.resolve()
        if not (root / CREDENTIALS_DIR).is_dir() and not (root / ".sops.yaml").is_file():
            raise RepositoryError(
                f"{given} is not a keyops repository (no {CREDENTIALS_DIR}/ or .sops.yaml)",
                "Point --repo at the directory that holds credentials/ and .sops.yaml.",
            )
        return _refuse_linked_credentials(root)
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / CREDENTIALS_DIR).is_dir() or (candidate / ".sops.yaml").is_file():
            return _refuse_linked_credentials(candidate)
    raise RepositoryError(
        f"{here} is not inside a keyops repository (no {CREDENTIALS_DIR}/ or .sops.yaml above it)",
        "Run keyops from the repository, or pass --repo DIR.",
    )


def _refuse_linked_credentials(root: Path) -> Path:
    """``root``, unless its ``credentials/`` is a symlink.

    A symlinked credential file is refused (git keeps only a link's target text, so CI would
    read something else than this working tree); a symlinked directory is the same hole one
    level up, and a rotation would write wherever it points.
    """
    credentials = root / CREDENTIALS_DIR
    if credentials.is_symlink():
        raise RepositoryError(
            f"{credentials} is a symlink (to {os.readlink(credentials)}); keyops refuses a "
            "symlinked credentials directory, as it refuses a symlinked credential file",
            "Replace the link with the directory itself.",
        )
    return root


def relative_arg(root: Path, raw: str) -> str:
    """Turn a PATH argument into a repository-relative posix path, refusing paths outside."""
    path = Path(raw)
    absolute = path if path.is_absolute() else Path.cwd() / path
    if not absolute.exists() and not absolute.is_symlink():
        raise InputError(f"{raw} does not exist", "Check the path.")
    lexical = Path(os.path.normpath(absolute))
    try:
        return lexical.relative_to(root).as_posix()
    except ValueError:
        raise InputError(
            f"{raw} is outside the repository {root}", "Name files under credentials/."
        ) from None
