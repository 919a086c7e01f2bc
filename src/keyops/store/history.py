"""A credential file through git history, from its cleartext metadata only.

States, dates and rollout shares are not encrypted, so walking history needs no key and touches
no secret: ``key`` and ``secret`` are dropped as soon as a revision is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from keyops.store import git

States = dict[str, dict[str, Any]]


def cleartext_states(raw: bytes | None) -> States:
    """``{"<id>": {...cleartext fields}}`` for credentials and app_auth (``app_auth <kid>``)."""
    if raw is None:
        return {}
    try:
        data = yaml.safe_load(raw.decode("utf-8", "replace"))
    except yaml.YAMLError:
        return {}
    out: States = {}
    if not isinstance(data, dict):
        return out
    for section, field, prefix in (("credentials", "id", ""), ("app_auth", "kid", "app_auth ")):
        for item in data.get(section) or []:
            if isinstance(item, dict) and isinstance(item.get(field), str):
                out[prefix + item[field]] = {
                    k: v for k, v in item.items() if k not in ("key", "secret")
                }
    return out


@dataclass(frozen=True)
class Revision:
    commit: str
    date: str
    author: str
    states: States


def revisions(root: Path, relpath: str, *, since: str | None = None) -> list[Revision]:
    """Each commit that touches ``relpath``, oldest first; with ``since``, only those after it
    on the way to HEAD (``since..HEAD``)."""
    selection = [f"{since}..HEAD"] if since else []
    log = git.text(
        root,
        "log",
        "--reverse",
        "--format=%H%x1f%as%x1f%an",
        *selection,
        "--",
        relpath,
        fix="Run keyops inside the git repository.",
    )
    out = []
    for line in log.splitlines():
        sha, date, author = line.split("\x1f")
        out.append(Revision(sha, date, author, cleartext_states(git.show(root, sha, relpath))))
    return out
