"""The one way keyops writes a file: complete or not at all, and never through a planted link.

Every write goes to a new file beside the target, named ``.<name>.keyops-<random>.tmp`` and
created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (so a symlink or file planted at any name an
attacker could predict is never followed or reused), with the final mode set before any byte is
written. The data is fsynced, an optional ``verify`` callback reads the temporary file back, and
only then is it renamed over the target and the directory fsynced. A crash at any point leaves
the old file or the new one; a leftover temporary file is named so the next write removes it.

``overwrite=False`` publishes with ``link`` instead of ``rename``, which fails when the target
exists: a file keyops must never replace (a secret handed to a user) is refused atomically.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
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


def write_text_atomic(
    path: Path | str, text: str, *, mode: int = PUBLIC, overwrite: bool = True
) -> None:
    write_atomic(path, text.encode("utf-8"), mode=mode, overwrite=overwrite)
