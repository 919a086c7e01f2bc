"""A branch that makes several lifecycle steps at once: say so, and suggest merging step by step.

``keyops check --base REF`` judges the change from REF to the working tree as one move. A branch
that rotates, then promotes, then retires (one commit each) is refused as a whole, since active
→ retired skips a state, although every commit on it is a valid step. This module walks the
commits between REF and HEAD (cleartext metadata only, no key) and, for a ``transition``
finding whose credential went there one valid step at a time, extends the message with those
steps and the advice to merge them one pull request at a time. The finding stays an error: each
step needs its own review, and some rules (overlap, adoption) only make sense between merges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from keyops.core.findings import Finding
from keyops.policy.rules.lifecycle import ALLOWED
from keyops.store import git, history
from keyops.store.history import States


@dataclasses.dataclass(frozen=True)
class Step:
    where: str  # a short commit id, or "the working tree"
    old: str | None  # None: the credential first appears here
    new: str

    @property
    def valid(self) -> bool:
        if self.old is None:
            return self.new == "pending"
        return self.new in ALLOWED.get(self.old, frozenset())

    def describe(self) -> str:
        move = f"added as {self.new}" if self.old is None else f"{self.old} → {self.new}"
        return f"{move} in {self.where}"


def _versions(root: Path, base_commit: str, relpath: str) -> list[tuple[str, States]]:
    """The file's states at the base, after each commit since, and in the working tree."""
    out = [("the base", history.cleartext_states(git.show(root, base_commit, relpath)))]
    for revision in history.revisions(root, relpath, since=base_commit):
        out.append((revision.commit[:12], revision.states))
    try:
        current = (root / relpath).read_bytes()
    except OSError:
        current = None
    out.append(("the working tree", history.cleartext_states(current)))
    return out


def steps(versions: list[tuple[str, States]], credential: str) -> list[Step]:
    """Each change of the credential's state after the first of ``versions`` (the base)."""
    out: list[Step] = []
    previous: str | None = None
    for index, (where, states) in enumerate(versions):
        state = states.get(credential, {}).get("state")
        if not isinstance(state, str) or state == previous:
            continue
        if index > 0:
            out.append(Step(where, previous, state))
        previous = state
    return out


def explain(findings: Iterable[Finding], root: Path, base_commit: str) -> list[Finding]:
    """``findings``, with each stepwise-valid ``transition`` finding saying so."""
    cache: dict[str, list[tuple[str, States]]] = {}
    out: list[Finding] = []
    for finding in findings:
        if finding.rule == "transition" and finding.credential_id:
            if finding.path not in cache:
                cache[finding.path] = _versions(root, base_commit, finding.path)
            path = steps(cache[finding.path], finding.credential_id)
            if len(path) > 1 and all(step.valid for step in path):
                finding = dataclasses.replace(
                    finding,
                    message=f"{finding.message}. This branch does it in {len(path)} steps, each "
                    f"valid on its own ({', '.join(s.describe() for s in path)}): merge them one "
                    "pull request at a time, so that each step is reviewed and checked on its own",
                )
        out.append(finding)
    return out
