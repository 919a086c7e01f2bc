"""The only caller of git in keyops, with one mapping of its failures.

Like ``keyops.store.sops`` for sops: every other module asks this one, so a missing git, a path
that is not a repository and a failed command are reported the same way everywhere. Output is
bytes from :func:`run` (blobs are binary) and stripped text from :func:`text`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from keyops.core.errors import GitError, RepositoryError

GIT_MISSING_FIX = "Install git (e.g. apt-get install git) and run the command again."


def _invoke(
    root: Path, args: tuple[str, ...], stdin: bytes | None
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=root, input=stdin, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise RepositoryError("git is not installed", GIT_MISSING_FIX) from None
    except OSError as exc:
        what = f"git could not run: {exc.strerror or exc}"
        raise RepositoryError(what, GIT_MISSING_FIX) from None


def run(root: Path, *args: str, stdin: bytes | None = None, fix: str = "") -> bytes:
    """Run ``git ARGS`` in ``root``; raise :class:`GitError` when it fails."""
    proc = _invoke(root, args, stdin)
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(
            " ".join(args[:2]),
            lines[0] if lines else f"exit code {proc.returncode}",
            fix or "Check that the directory is a git repository with that revision.",
        )
    return proc.stdout


def text(root: Path, *args: str, fix: str = "") -> str:
    """``git ARGS`` output as stripped text; raise :class:`GitError` when it fails."""
    return run(root, *args, fix=fix).decode("utf-8", "replace").strip()


def try_text(root: Path, *args: str) -> str | None:
    """``git ARGS`` output as stripped text, or None when git fails (a question, not an order)."""
    proc = _invoke(root, args, None)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace").strip()


# -- the questions keyops asks -----------------------------------------------------------------


def is_repository(root: Path) -> bool:
    return try_text(root, "rev-parse", "--git-dir") is not None


def git_dir(root: Path) -> Path | None:
    """The repository's private directory (``.git``, or a worktree's), or None outside git."""
    found = try_text(root, "rev-parse", "--absolute-git-dir")
    return Path(found) if found else None


def head(root: Path) -> str | None:
    """The commit HEAD names, or None (no commits yet, or not a repository)."""
    return try_text(root, "rev-parse", "--verify", "--quiet", "HEAD") or None


def resolve_commit(root: Path, ref: str) -> str | None:
    return try_text(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") or None


def uncommitted(root: Path, *paths: str) -> str | None:
    """``git status --porcelain`` for ``paths`` (empty when clean), or None outside git."""
    return try_text(root, "status", "--porcelain", "--", *paths)


def commit_count(root: Path, pathspec: str) -> int:
    """Commits reachable from HEAD that touch ``pathspec``; 0 outside git or before a commit."""
    count = try_text(root, "rev-list", "--count", "HEAD", "--", pathspec)
    return int(count) if count is not None and count.isdigit() else 0


def show(root: Path, revision: str, relpath: str) -> bytes | None:
    """The blob at ``revision:relpath``, or None when it does not exist there."""
    proc = _invoke(root, ("show", f"{revision}:{relpath}"), None)
    return proc.stdout if proc.returncode == 0 else None


def config_value(root: Path, key: str) -> str | None:
    """``git config --get KEY`` in ``root``, or None when it is not set."""
    return try_text(root, "config", "--get", key) or None
