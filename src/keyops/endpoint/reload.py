"""Watching a bundle file and swapping it in atomically, keeping the last good one on failure.

A new ``bundle.jws`` is taken only when it is a regular file (a FIFO, directory or device at the
path is refused without blocking: see ``read_regular_file``) and verifies: signature by a pinned
key, structure, every payload JWS, ``exp`` in the future, same stack, and a ``bundle_version``
not below the one being served. Otherwise it is ignored, logged (the reason only — never
content) and counted, and the last good bundle keeps serving. The check is retried only when
the file changes again.

:meth:`BundleWatcher.check` blocks on the file system and on signature checks, so servers run it
off their event loop (``keyops.endpoint.server``); it never raises.

Pinning: an explicit JWKS (``--jwks``) stays fixed. Without one, the keys of the first bundle
loaded are trusted, and each later bundle must be signed by a key the serving bundle trusts
(a chain, so a signing-key rotation through ``next`` needs no restart).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keyops.core.errors import BundleError
from keyops.endpoint.core import Endpoint, log_unexpected
from keyops.protocol.bundle import BUNDLE_FILE, MAX_BUNDLE_BYTES, Bundle, read_regular_file

log = logging.getLogger("keyops.serve")

Stamp = tuple[int, int, int]


def bundle_file(path: Path) -> Path:
    return path / BUNDLE_FILE if path.is_dir() else path


class BundleWatcher:
    def __init__(
        self,
        path: Path,
        endpoint: Endpoint,
        *,
        jwks: Mapping[str, Any] | None = None,
        fixed: bool = True,
    ) -> None:
        self.file = bundle_file(Path(path))
        self.endpoint = endpoint
        #: A fixed pin never changes; otherwise each accepted bundle's keys become the pin.
        self.fixed_pin = jwks is not None and fixed
        self.pin: Mapping[str, Any] | None = jwks
        self._stamp: Stamp | None = None

    def _current_stamp(self) -> Stamp | None:
        try:
            st = os.stat(self.file)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def check(self) -> bool:
        """Load the bundle if the file changed and verifies. True when a new one was swapped in."""
        stamp = self._current_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        now = self.endpoint.clock()
        serving = self.endpoint.bundle
        try:
            data = read_regular_file(self.file, MAX_BUNDLE_BYTES + 1)
            fresh = Bundle.from_bytes(data, label=str(self.file), now=now, jwks=self.pin)
            if serving is not None and fresh.raw == serving.raw:
                return False
            if serving is not None and fresh.stack != serving.stack:
                raise BundleError(
                    f"the new bundle is for stack {fresh.stack!r}, not {serving.stack!r}",
                    "Point each server at one stack's bundle.",
                )
            if serving is not None and fresh.bundle_version < serving.bundle_version:
                raise BundleError(
                    f"the new bundle's version {fresh.bundle_version} is below the serving "
                    f"version {serving.bundle_version}",
                    "Rebuild with keyops build into the same directory; versions only go up.",
                )
        except Exception as exc:
            self._refused(exc, serving)
            return False
        self.endpoint.bundle = fresh
        if not self.fixed_pin:
            self.pin = fresh.jwks()
        log.info(
            "serving bundle version %d of stack %s (signed by %s)",
            fresh.bundle_version,
            fresh.stack,
            fresh.signing_kid,
        )
        return True

    def _refused(self, exc: Exception, serving: Bundle | None) -> None:
        self.endpoint.metrics.count_reload_failure()
        if not isinstance(exc, BundleError):
            # A bug, not a bad bundle: one line without values, and the last good one serves.
            log_unexpected("checking a new bundle", exc)
        elif serving is None:
            log.error("no bundle loaded: %s", exc.render())
        else:
            log.warning(
                "ignored a new bundle, still serving version %d: %s",
                serving.bundle_version,
                exc.render(),
            )
