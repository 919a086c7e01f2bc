"""A sops runner that decrypts each distinct ciphertext once per ``keyops check`` run.

A pull request usually touches a few files; the rest are byte-identical blobs on both sides.
Their plaintext is the same, so the head reuses the base's result instead of starting sops
again. Plaintext stays in this process's memory only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from keyops.errors import KeyopsError
from keyops.sops import Sops


class SharedSops(Sops):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._plain: dict[bytes, bytes] = {}
        self.decrypted = 0  # sops processes actually started, for tests and the benchmark

    def decrypt_many(
        self,
        items: Iterable[tuple[str, bytes | None]],
        *,
        on_done: Callable[[int, int], None] | None = None,
    ) -> dict[str, bytes | KeyopsError]:
        results: dict[str, bytes | KeyopsError] = {}
        todo: list[tuple[str, bytes | None]] = []
        for label, data in items:
            digest = hashlib.sha256(data).digest() if data is not None else None
            if digest is not None and digest in self._plain:
                results[label] = self._plain[digest]
            else:
                todo.append((label, data))
        reused = len(results)

        def progress(done: int, total: int) -> None:
            if on_done is not None:
                on_done(reused + done, reused + total)

        fresh = super().decrypt_many(todo, on_done=progress)
        self.decrypted += len(todo)
        for label, data in todo:
            outcome = fresh[label]
            if data is not None and isinstance(outcome, bytes):
                self._plain[hashlib.sha256(data).digest()] = outcome
        results.update(fresh)
        return results
