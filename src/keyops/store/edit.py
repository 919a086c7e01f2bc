"""Safe edits of one credential file: never lose or corrupt a credential Pusher cannot restore.

The steps, in order:

1. refuse when the file has uncommitted changes (unless ``allow_dirty``): the edit must be the
   only change a reviewer sees, and a half-finished hand edit must not be re-encrypted silently.
   Exactly the content the previous keyops edit wrote counts as clean (its hash is recorded
   under the git directory), so that an emergency revocation can build on the rotation just
   made without ``--allow-dirty``;
2. decrypt to memory (sops stdout, never disk);
3. rebuild the plaintext *from the encrypted file's structure* with a round-trip YAML parser, so
   key order and comments survive, and apply only the intended change on top of it;
4. encrypt with sops through stdin and ``--filename-override`` (the path's creation rule applies);
5. write the ciphertext to a temporary file in the same directory (only ciphertext ever reaches
   the disk), fsync it, decrypt it back *from disk* and compare it with the intended document;
6. only then rename it over the original and fsync the directory.

Steps 5 and 6 are ``keyops.core.atomic.write_atomic`` with a verify callback. A crash or signal
at any point leaves the old file or the new one. A leftover temporary file holds ciphertext
only, and the next edit of the same file removes it.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from keyops.core.atomic import PUBLIC, make_dirs, write_atomic
from keyops.core.errors import RepositoryError, SopsError, WriteError
from keyops.store import git
from keyops.store.sops import Sops

# -- 1. the working tree must be clean -------------------------------------------------------


def ensure_clean(root: Path, relpath: str, *, allow_dirty: bool) -> str | None:
    """Refuse a file with uncommitted changes, unless they are exactly what keyops last wrote.

    Returns the keyops command whose uncommitted write this edit builds on (e.g. ``keyops
    rotate`` before ``keyops revoke --promote-pending`` in an emergency), or None. A hand edit
    after that write changes the content, and the file counts as dirty again.
    """
    if allow_dirty:
        return None
    status = git.uncommitted(root, relpath)
    if status is None:
        raise RepositoryError(
            f"{root} is not a git repository, so uncommitted changes cannot be detected",
            "Run keyops in the credentials repository, or pass --allow-dirty.",
        )
    if not status:
        return None
    writer = last_written_by(root, relpath)
    if writer is not None:
        return writer
    raise RepositoryError(
        f"{relpath} has uncommitted changes",
        "Commit or discard them first (git diff -- FILE shows them), or pass --allow-dirty "
        "to build on top of them.",
    )


# -- what keyops itself wrote ----------------------------------------------------------------

#: Under the git directory: {relpath: {"sha256": <hex of the bytes written>, "by": <command>}}.
WRITTEN_RECORD = "keyops/written.json"


def _record_path(root: Path) -> Path | None:
    directory = git.git_dir(root)
    return directory / WRITTEN_RECORD if directory is not None else None


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_write(root: Path, relpath: str, data: bytes, by: str) -> None:
    """Remember that ``by`` wrote exactly ``data`` to ``relpath`` (best effort: outside git,
    or if the record cannot be written, the next edit simply needs a commit or --allow-dirty)."""
    path = _record_path(root)
    if path is None:
        return
    record = _read_record(path)
    record[relpath] = {"sha256": hashlib.sha256(data).hexdigest(), "by": by}
    try:
        make_dirs(path.parent)
        write_atomic(path, json.dumps(record, indent=2, sort_keys=True).encode())
    except (OSError, WriteError):
        return


def last_written_by(root: Path, relpath: str) -> str | None:
    """The command that wrote ``relpath`` as it is now, if keyops wrote exactly these bytes."""
    path = _record_path(root)
    entry = _read_record(path).get(relpath) if path is not None else None
    if not isinstance(entry, dict):
        return None
    try:
        current = hashlib.sha256((root / relpath).read_bytes()).hexdigest()
    except OSError:
        return None
    if current != entry.get("sha256"):
        return None
    by = entry.get("by")
    return by if isinstance(by, str) else "keyops"


# -- 3. plaintext from the encrypted file's structure ----------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    # Long values (reasons, ciphertext) must never be folded onto several lines.
    yaml.width = 4096
    return yaml


def _to_node(value: Any) -> Any:
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _to_node(item)
        return node
    if isinstance(value, list):
        return CommentedSeq(_to_node(item) for item in value)
    return value


def _identity(item: Any) -> str | None:
    if isinstance(item, dict):
        for field in ("id", "kid"):
            if isinstance(item.get(field), str):
                return f"{field}:{item[field]}"
    return None


def _same_scalar(old: Any, new: Any) -> bool:
    # bool is an int in Python; a flag turned into a number is a change.
    return type(old) is type(new) or (isinstance(old, str) and isinstance(new, str))


def merge(node: Any, new: Any) -> Any:
    """Make ``node`` (round-trip YAML) equal to ``new`` (plain data), keeping what is equal.

    Unchanged keys keep their place and their comments; new keys go right after the key that
    precedes them in ``new``; list items with an ``id``/``kid`` are matched by it.
    """
    if isinstance(node, CommentedMap) and isinstance(new, dict):
        for key in [k for k in node if k not in new]:
            del node[key]
        previous: Any = None
        for key, value in new.items():
            if key in node:
                merged = merge(node[key], value)
                if merged is not node[key]:
                    node[key] = merged
            else:
                position = list(node).index(previous) + 1 if previous is not None else 0
                node.insert(position, key, _to_node(value))
            previous = key
        return node
    if isinstance(node, CommentedSeq) and isinstance(new, list):
        wanted = [_identity(item) for item in new]
        if all(wanted) and len(set(wanted)) == len(wanted):
            for index in reversed(range(len(node))):
                if _identity(node[index]) not in wanted:
                    del node[index]
            for index, item in enumerate(new):
                ident = _identity(item)
                found = next(
                    (i for i in range(index, len(node)) if _identity(node[i]) == ident), None
                )
                if found is None:
                    node.insert(index, _to_node(item))
                    continue
                if found != index:
                    node.insert(index, node.pop(found))
                node[index] = merge(node[index], item)
            return node
        if len(node) == len(new):
            for index, item in enumerate(new):
                node[index] = merge(node[index], item)
            return node
        return _to_node(new)
    if isinstance(node, (CommentedMap, CommentedSeq)) or isinstance(new, (dict, list)):
        return _to_node(new)
    if node == new and _same_scalar(node, new):
        return node
    return new


def render_plaintext(encrypted: bytes, document: dict[str, Any]) -> bytes:
    """Plaintext YAML of ``document``, laid out like the encrypted file (order, comments)."""
    yaml = _yaml()
    tree = yaml.load(encrypted.decode("utf-8"))
    if not isinstance(tree, CommentedMap):
        tree = CommentedMap()
    tree.pop("sops", None)
    merge(tree, document)
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue().encode("utf-8")


# -- 5 and 6. verified atomic replacement ----------------------------------------------------


def write_verified(
    root: Path,
    relpath: str,
    ciphertext: bytes,
    intended: dict[str, Any],
    sops: Sops,
    *,
    new: bool = False,
) -> None:
    """Replace ``relpath`` with ``ciphertext`` only once it decrypts to ``intended``.

    ``new``: the file must not exist yet; one that appears meanwhile is never replaced.
    """
    target = root / relpath

    def decrypts_as_intended(temp: Path) -> None:
        back = json.loads(sops.decrypt_bytes(temp.read_bytes(), relpath))
        if back != intended:
            raise SopsError(
                f"{relpath}: the re-encrypted file does not decrypt to the intended content",
                "Nothing was replaced. Report this with `sops --version`; edit with sops edit.",
            )

    mode = target.stat().st_mode & 0o777 if target.exists() else PUBLIC
    write_atomic(target, ciphertext, mode=mode, verify=decrypts_as_intended, overwrite=not new)


def save(
    root: Path,
    relpath: str,
    before_raw: bytes,
    document: dict[str, Any],
    sops: Sops,
    *,
    by: str = "keyops",
    new: bool = False,
) -> None:
    """Encrypt ``document`` laid out like ``before_raw`` and replace the file, verified.

    ``by`` (the command, e.g. ``keyops rotate``) is recorded with the hash of what was written,
    so that the next keyops edit accepts exactly this uncommitted content (:func:`ensure_clean`).
    ``new``: create the file (``before_raw`` is empty); it must not exist yet.
    """
    plaintext = render_plaintext(before_raw, document)
    ciphertext = sops.encrypt(plaintext, relpath)
    write_verified(root, relpath, ciphertext, document, sops, new=new)
    record_write(root, relpath, ciphertext, by)
