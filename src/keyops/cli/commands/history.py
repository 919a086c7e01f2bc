"""``keyops history``: each credential's lifecycle, read from git history.

Only cleartext lifecycle metadata is read (``git log`` and ``git show`` of the encrypted file),
so no decryption key is needed and no secret is ever touched.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from keyops.core.errors import EXIT_OK, InputError
from keyops.store import history as store_history
from keyops.store import names, repo
from keyops.store.sources import CREDENTIALS_DIR


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, metavar="S")
    parser.add_argument("--client", required=True, metavar="C")
    parser.add_argument("--format", choices=("text", "json"), default="text")


@dataclass(frozen=True)
class Event:
    commit: str
    date: str
    author: str
    credential: str
    transition: str


def _describe(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str | None:
    if before is None and after is not None:
        return f"added as {after.get('state')}"
    if after is None and before is not None:
        return f"removed from the file (was {before.get('state')})"
    assert before is not None and after is not None
    if before.get("state") != after.get("state"):
        text = f"{before.get('state')} → {after.get('state')}"
        if after.get("state") == "revoked":
            text += f" (reason: {after.get('reason')}; incident: {after.get('incident')})"
        return text
    if before.get("rollout_percent") != after.get("rollout_percent"):
        return f"rollout {before.get('rollout_percent')} → {after.get('rollout_percent')}"
    return None


def events(root: Path, relpath: str) -> list[Event]:
    out: list[Event] = []
    previous: dict[str, dict[str, Any]] = {}
    for revision in store_history.revisions(root, relpath):
        current = revision.states
        for ident in [*previous, *(i for i in current if i not in previous)]:
            change = _describe(previous.get(ident), current.get(ident))
            if change:
                out.append(
                    Event(revision.commit[:12], revision.date, revision.author, ident, change)
                )
        previous = current
    return out


def render(items: list[Event]) -> str:
    headers = ("DATE", "COMMIT", "AUTHOR", "CREDENTIAL", "TRANSITION")
    rows = [(e.date, e.commit, e.author, e.credential, e.transition) for e in items]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def history(args: argparse.Namespace) -> int:
    root = repo.find_root(args.repo)
    relpath = f"{CREDENTIALS_DIR}/{args.stack}/{args.client}.yaml"
    items = events(root, relpath)
    if not items and not (root / relpath).is_file():
        # Neither in git nor on disk: most likely a typo, so answer like every other command.
        if not (root / CREDENTIALS_DIR / args.stack).is_dir():
            raise names.unknown_stack(args.stack, names.stacks_in(root))
        raise names.unknown_client(args.stack, args.client, names.clients_in(root, args.stack))
    if not items:
        raise InputError(
            f"{relpath} has no history in git",
            "Check --stack and --client; history covers committed changes only.",
        )
    if args.format == "json":
        sys.stdout.write(json.dumps([asdict(e) for e in items], indent=2) + "\n")
    else:
        sys.stdout.write(render(items))
    return EXIT_OK
