"""Where credential files are read from: the working tree, or a git revision.

The policy engine compares a base revision with the working tree. The base is read straight
from git objects (``git ls-tree`` / ``git cat-file``), never checked out, so no plaintext or
second work tree is ever written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from keyops.core.errors import InputError, RepositoryError
from keyops.store import git
from keyops.store.yamlload import MAX_FILE_BYTES, too_large

CREDENTIALS_DIR = "credentials"
STACK_FILE = "_stack.yaml"


@dataclass(frozen=True)
class Entry:
    relpath: str
    #: "file", or "escaping-symlink" for a symlink whose target leaves the repository,
    #: or "symlink" for any symlink in a git tree (git stores only the target text).
    kind: str = "file"
    target: str | None = None


class Source(Protocol):
    label: str

    def entries(self) -> list[Entry]: ...

    def read(self, relpath: str) -> bytes: ...

    def read_text_file(self, relpath: str) -> bytes | None: ...


class WorktreeSource:
    """Files as they are on disk under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = "working tree"

    def entries(self) -> list[Entry]:
        base = self.root / CREDENTIALS_DIR
        out: list[Entry] = []
        if not base.is_dir():
            return out
        real_root = self.root.resolve()
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames) + [
                d for d in dirnames if os.path.islink(Path(dirpath) / d)
            ]:
                if name.startswith("."):
                    continue
                full = Path(dirpath) / name
                rel = full.relative_to(self.root).as_posix()
                if full.is_symlink():
                    # Any symlink is refused, as in a git tree (GitSource), so validate agrees
                    # with check in CI; one leaving the repository is named as such.
                    target = full.resolve()
                    inside = target.is_relative_to(real_root)
                    kind = "symlink" if inside else "escaping-symlink"
                    out.append(Entry(rel, kind, os.readlink(full)))
                    continue
                out.append(Entry(rel))
        return out

    def read(self, relpath: str) -> bytes:
        path = self.root / relpath
        try:
            # Never pull a huge file into memory just to refuse it.
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
                if len(data) > MAX_FILE_BYTES:
                    raise InputError(too_large(os.fstat(handle.fileno()).st_size))
                return data
        except FileNotFoundError as exc:
            raise InputError(f"{relpath} does not exist", "Check the path.") from exc
        except IsADirectoryError as exc:
            raise InputError(f"{relpath} is a directory, not a file", "Name a file.") from exc
        except OSError as exc:
            raise InputError(
                f"cannot read {relpath}: {exc.strerror}", "Check permissions."
            ) from exc

    def read_text_file(self, relpath: str) -> bytes | None:
        path = self.root / relpath
        return path.read_bytes() if path.is_file() else None


class GitSource:
    """Files as they are in a git revision, read from objects without a checkout."""

    def __init__(self, root: Path, ref: str) -> None:
        self.root = root
        self.ref = ref
        self.label = f"git {ref}"
        commit = git.resolve_commit(root, ref)
        if commit is None:
            raise RepositoryError(
                f"{ref!r} is not a commit in {root}",
                "Fetch it first (git fetch origin <branch>) or pass another --base.",
            )
        self.commit = commit
        self._tree: dict[str, tuple[str, str]] | None = None

    def _git_bytes(self, *args: str, stdin: bytes | None = None) -> bytes:
        return git.run(self.root, *args, stdin=stdin)

    def _load_tree(self) -> dict[str, tuple[str, str]]:
        if self._tree is None:
            listing = self._git_bytes("ls-tree", "-r", "-z", self.commit, "--", CREDENTIALS_DIR)
            tree: dict[str, tuple[str, str]] = {}
            for record in listing.split(b"\0"):
                if not record:
                    continue
                meta, _, path = record.partition(b"\t")
                mode, _kind, sha = meta.decode().split()
                tree[path.decode("utf-8", "replace")] = (mode, sha)
            self._tree = tree
        return self._tree

    def entries(self) -> list[Entry]:
        out = []
        for rel, (mode, _sha) in sorted(self._load_tree().items()):
            name = rel.rsplit("/", 1)[-1]
            if name.startswith("."):
                continue
            if mode == "120000":
                out.append(Entry(rel, "symlink", self.read(rel).decode("utf-8", "replace")))
            else:
                out.append(Entry(rel))
        return out

    def read(self, relpath: str) -> bytes:
        tree = self._load_tree()
        if relpath not in tree:
            raise InputError(f"{relpath} does not exist at {self.ref}", "Check the path.")
        return self._git_bytes("cat-file", "blob", tree[relpath][1])

    def read_many(self, relpaths: list[str]) -> dict[str, bytes]:
        """Read many blobs with one ``git cat-file --batch`` process."""
        tree = self._load_tree()
        wanted = [p for p in relpaths if p in tree]
        if not wanted:
            return {}
        request = "".join(f"{tree[p][1]}\n" for p in wanted).encode()
        out = self._git_bytes("cat-file", "--batch", stdin=request)
        result: dict[str, bytes] = {}
        offset = 0
        for path in wanted:
            header_end = out.index(b"\n", offset)
            size = int(out[offset:header_end].split()[2])
            start = header_end + 1
            result[path] = out[start : start + size]
            offset = start + size + 1
        return result

    def read_text_file(self, relpath: str) -> bytes | None:
        return git.show(self.root, self.commit, relpath)
