"""Writing small private files (the client cache, a bootstrap config holding a secret).

The file is created 0600 from its first byte (a temporary file in the same directory, created
with that mode, so the content is never readable by others even for a moment), fsynced, renamed
over the target, the directory fsynced, and then read back and compared. A crash or a full disk
leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_MODE = 0o600


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600. Raises OSError on failure."""
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            # The umask can only narrow the mode; fchmod pins it whatever the umask is.
            os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if path.read_bytes() != data:
        raise OSError(0, f"{path} did not read back as written")
