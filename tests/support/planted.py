"""Symlinks planted at every name a writer of a file could predict, and what they point to.

A writer that opens a fixed temporary name (``.out.tmp``, ``out.<pid>.tmp``...) or the target
itself without ``O_NOFOLLOW`` writes through a link someone planted there: into a file of the
attacker's choosing, or creating one where the link points. ``plant`` puts a link at each of
these names, to a file outside the directory (``dangling=False``) or to a name that does not
exist yet (``dangling=True``); ``Planted.disturbed`` lists every victim that changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def predictable_names(target: Path, pid: int | None = None) -> list[Path]:
    """The target and the temporary names a hand-written atomic write tends to use."""
    pid = os.getpid() if pid is None else pid
    name = target.name
    names = [
        name,
        f".{name}.tmp",
        f"{name}.tmp",
        f".{name}.{pid}.tmp",
        f"{name}.{pid}.tmp",
        f".{name}.tmp-{pid}",
        f"{name}.tmp-{pid}",
        f".{name}.new",
        f"{name}.new",
        f"{name}~",
        f".{name}.swp",
        f".{name}.keyops-0000000000000000.tmp",
    ]
    return [target.with_name(n) for n in names]


@dataclass
class Planted:
    target: Path
    #: Each victim and its bytes when planted (None: it did not exist, the link dangles).
    victims: dict[Path, bytes | None] = field(default_factory=dict)

    def disturbed(self) -> list[str]:
        """Victims written, created or removed since they were planted."""
        out = []
        for victim, before in self.victims.items():
            now = victim.read_bytes() if victim.exists() else None
            if now != before:
                out.append(f"{victim}: {before!r} -> {now!r}")
        return out


def plant(
    target: Path, outside: Path, *, dangling: bool = False, at_target: bool = True
) -> Planted:
    """Links at ``predictable_names(target)`` (without the target itself unless ``at_target``)."""
    outside.mkdir(parents=True, exist_ok=True)
    planted = Planted(target)
    for i, link in enumerate(predictable_names(target)):
        if link == target and not at_target:
            continue
        victim = outside / f"victim-{i}"
        before = None if dangling else f"victim {i}, not to be written\n".encode()
        if before is not None:
            victim.write_bytes(before)
        planted.victims[victim] = before
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(victim, link)
    return planted
