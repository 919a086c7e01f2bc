"""Watching a bundle file and swapping it in atomically, keeping the last good one on failure.

A new ``bundle.jws`` is taken only when it verifies: signature by a pinned key, structure, every
payload JWS, ``exp`` in the future, same stack, and a ``bundle_version`` not below the one being
served. Otherwise it is ignored, logged (the reason only — never content) and counted, and the
last good bundle keeps serving. The check is retried only when the file changes again.

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
from keyops.endpoint.core import Endpoint
from keyops.protocol.bundle import BUNDLE_FILE, Bundle

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
            fresh = Bundle.load(self.file, now=now, jwks=self.pin)
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
        except BundleError as exc:
            self.endpoint.metrics.reload_failures += 1
            if serving is None:
                log.error("no bundle loaded: %s", exc.render())
            else:
                log.warning(
                    "ignored a new bundle, still serving version %d: %s",
                    serving.bundle_version,
                    exc.render(),
                )
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
