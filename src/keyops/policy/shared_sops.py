"""A sops runner shared by both sides of ``keyops check``: each distinct ciphertext is decrypted
once, and at most one sops process per CPU runs at a time across both sides.

A pull request usually touches a few files; the rest are byte-identical blobs on both sides.
Their plaintext is the same, so whichever side asks first decrypts and the other waits for that
result instead of starting sops again. The two sides load concurrently (their YAML parsing and
schema checks overlap the other side's decryption), so the process limit is enforced here,
not per call. Plaintext stays in this process's memory only.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from keyops.store import loader, names
from keyops.store.loader import LoadResult, ProgressHook
from keyops.store.sops import Sops, timeout_from_env
from keyops.store.sources import GitSource, WorktreeSource


class SharedSops(Sops):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._results: dict[bytes, Future[bytes]] = {}
        self._slots = threading.BoundedSemaphore(os.cpu_count() or 1)
        #: sops processes actually started, for tests and the benchmark.
        self.decrypted = 0

    def decrypt_bytes(self, ciphertext: bytes, label: str) -> bytes:
        digest = hashlib.sha256(ciphertext).digest()
        with self._lock:
            future = self._results.get(digest)
            owner = future is None
            if future is None:
                future = self._results[digest] = Future()
        if not owner:
            return future.result()  # the same bytes: the same plaintext, or the same error
        try:
            with self._slots:
                plain = super().decrypt_bytes(ciphertext, label)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            with self._lock:
                self.decrypted += 1
        future.set_result(plain)
        return plain


def load_change(
    root: Path,
    base_source: GitSource | None,
    *,
    stacks: Iterable[str] | None = None,
    progress: ProgressHook | None = None,
    skip_stacks_without_key: bool = False,
) -> tuple[LoadResult | None, LoadResult]:
    """The base revision (if any) and the working tree, loaded at once with one SharedSops.

    One side's parsing overlaps the other's decryption, sops processes stay at one per CPU,
    and each blob is decrypted once: what ``keyops check`` and ``keyops approval`` both need.

    With ``skip_stacks_without_key`` a stack no key here decrypts is left out of both sides
    (see ``loader.refuse_missing_keys`` for what is still refused); otherwise it raises.
    """
    head_source = WorktreeSource(root)
    known = set(loader.list_stacks(head_source))
    if base_source is not None:
        known |= set(loader.list_stacks(base_source))
    for stack in stacks or []:
        if stack not in known:
            raise names.unknown_stack(stack, sorted(known))
    sops = SharedSops(root, timeout=timeout_from_env())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="base") as pool:
        pending = (
            pool.submit(
                loader.load,
                root,
                base_source,
                stacks=stacks,
                sops=sops,
                skip_stacks_without_key=skip_stacks_without_key,
            )
            if base_source is not None
            else None
        )
        head = loader.load(
            root,
            head_source,
            stacks=stacks,
            sops=sops,
            progress=progress,
            skip_stacks_without_key=skip_stacks_without_key,
        )
        base = pending.result() if pending is not None else None
    if skip_stacks_without_key:
        sides = [head] if base is None else [head, base]
        skipped = loader.refuse_missing_keys(stacks, *sides)
        for side in sides:
            loader.drop_stacks(side, skipped)
    return base, head
