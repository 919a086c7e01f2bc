"""The one way keyops writes a file: complete or not at all, and never through a planted link.

Every write goes to a new file beside the target, named ``.<name>.keyops-<random>.tmp`` and
created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (so a symlink or file planted at any name an
attacker could predict is never followed or reused), with the final mode set before any byte is
written. The data is fsynced, an optional ``verify`` callback reads the temporary file back, and
only then is it renamed over the target and the directory fsynced. A crash at any point leaves
the old file or the new one; a leftover temporary file is named so the next write removes it.

``overwrite=False`` publishes with ``link`` instead of ``rename``, which fails when the target
exists: a file keyops must never replace (a secret handed to a user) is refused atomically.

The same rules for the rest: :func:`make_dirs` creates directories and refuses one that is a
symlink; :func:`stage_dir` and :func:`publish_dir` build a whole directory under a random name
(``mkdtemp``: mode 0700, created exclusively) and rename it into place; :func:`append_nofollow`
appends to a file another program owns (the Actions job summary) without following a link.
Nothing else in keyops creates or writes a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from keyops.core.errors import InputError, WriteError

TEMP_MARK = ".keyops-"
TEMP_SUFFIX = ".tmp"
#: Holds nothing secret: readable by others, as git would check it out.
PUBLIC = 0o644
#: Holds a secret (or a file only its owner should read): owner read/write only.
PRIVATE = 0o600

Verify = Callable[[Path], None]


def leftover_temps(target: Path) -> list[Path]:
    """Temporary files an interrupted write of ``target`` may have left behind."""
    prefix = f".{target.name}{TEMP_MARK}"
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    return sorted(
        target.parent / n for n in names if n.startswith(prefix) and n.endswith(TEMP_SUFFIX)
    )


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C back during the rename, so the outcome is known when it is delivered."""
    if hasattr(signal, "pthread_sigmask"):
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    else:  # pragma: no cover - not POSIX
        yield


def _create_temp(target: Path, mode: int) -> tuple[Path, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    while True:
        temp = target.parent / f".{target.name}{TEMP_MARK}{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            fd = os.open(temp, flags, mode)
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue
        return temp, fd


def write_atomic(
    path: Path | str,
    data: bytes,
    *,
    mode: int = PUBLIC,
    verify: Verify | None = None,
    overwrite: bool = True,
) -> None:
    """Write ``data`` to ``path`` atomically, with ``mode``, after ``verify`` accepts it.

    Raises :class:`~keyops.core.errors.InputError` when the file cannot be written (the target is
    then unchanged) or, with ``overwrite=False``, when it already exists. Whatever ``verify``
    raises propagates, and the target is unchanged.
    """
    target = Path(path)
    for stale in leftover_temps(target):
        with contextlib.suppress(OSError):
            stale.unlink()
    if not overwrite and (target.exists() or target.is_symlink()):
        raise InputError(f"{target} already exists", "Name a new file; keyops never overwrites it.")
    try:
        temp, fd = _create_temp(target, mode)
    except OSError as exc:
        raise WriteError(
            str(target),
            exc.strerror or str(exc),
            "Check that the directory exists and is writable.",
        ) from None
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), mode)  # exact mode, whatever the umask
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise WriteError(
                str(target),
                exc.strerror or str(exc),
                "Check free space and permissions; the previous file is unchanged.",
            ) from None
        if verify is not None:
            verify(temp)
        with _sigint_deferred():
            try:
                if overwrite:
                    os.replace(temp, target)
                else:
                    os.link(temp, target, follow_symlinks=False)
                    temp.unlink()
            except FileExistsError:
                raise InputError(
                    f"{target} already exists", "Name a new file; keyops never overwrites it."
                ) from None
            except OSError as exc:
                raise WriteError(
                    str(target),
                    exc.strerror or str(exc),
                    "Check the directory's permissions; the previous file is unchanged.",
                ) from None
            fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def make_dirs(path: Path | str, mode: int = 0o755) -> Path:
    """Create ``path`` and its missing parents, and refuse it when it is a symlink.

    A directory keyops writes into by a name anyone can predict (the crash-log directory, one
    inside ``.git``) must not be a link planted to send the files elsewhere.
    """
    target = Path(path)
    try:
        os.makedirs(target, mode=mode, exist_ok=True)
    except FileExistsError:
        pass  # a file, or a dangling link: told apart below
    except OSError as exc:
        raise WriteError(
            str(target), exc.strerror or str(exc), "Check the parent directory's permissions."
        ) from None
    info = os.lstat(target)
    if stat.S_ISLNK(info.st_mode):
        raise WriteError(
            str(target), "it is a symlink", "Remove the link; keyops writes into real directories."
        )
    if not stat.S_ISDIR(info.st_mode):
        raise WriteError(str(target), "it is not a directory", "Move that file away.")
    return target


def stage_dir(target: Path | str) -> Path:
    """A new, empty, private (0700) directory beside ``target``, under a random name.

    Fill it, then :func:`publish_dir` it: readers of ``target`` see the old directory or the
    complete new one, and a link planted at any predictable staging name is never used.
    """
    final = Path(target)
    make_dirs(final.parent)
    try:
        # why: mkdtemp is mkdir with a random name and mode 0700; it fails on any existing name
        return Path(tempfile.mkdtemp(prefix=f".{final.name}{TEMP_MARK}", dir=final.parent))
    except OSError as exc:
        raise WriteError(
            str(final), exc.strerror or str(exc), "Check the directory's permissions."
        ) from None


def publish_dir(staging: Path, target: Path | str, *, replace: bool = False) -> None:
    """Rename ``staging`` to ``target``; with ``replace``, an existing directory goes first.

    A ``target`` that is a symlink or a file is refused, never followed or removed.
    """
    final = Path(target)
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise WriteError(str(final), "it is not a directory", "Choose another output path.")
    try:
        if replace and final.exists():
            shutil.rmtree(final)
        # why: rename(2) of a directory replaces at most an empty directory, never follows a link
        os.rename(staging, final)
    except OSError as exc:
        raise WriteError(
            str(final), exc.strerror or str(exc), "Check the directory's permissions."
        ) from None
    fsync_dir(final.parent)


def append_nofollow(path: Path | str, data: bytes, *, mode: int = PUBLIC) -> None:
    """Append ``data`` to ``path`` (created if missing), never through a symlink.

    For a file another program owns and keeps appending to, such as the Actions job summary:
    replacing it would drop what earlier steps wrote, so this is the one write that is not
    atomic; ``O_NOFOLLOW`` still refuses a link planted at the name.
    """
    target = Path(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(target, flags, mode)
    except OSError as exc:
        reason = "it is a symlink" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise WriteError(str(target), reason, "Name a regular file.") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WriteError(str(target), "it is not a regular file", "Name a regular file.")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "ab", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise WriteError(str(target), exc.strerror or str(exc), "Check free space.") from None
    finally:
        os.close(fd)
