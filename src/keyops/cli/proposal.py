"""What a lifecycle command proposes (:class:`Proposal`) and what it works on (:class:`Target`).

Shared by the change workflow (``keyops.cli.change``) and the pull-request step
(``keyops.cli.pr``), so neither imports the other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyops.policy.evidence import Evidence
from keyops.store.loader import LoadResult
from keyops.store.settings import Settings
from keyops.store.sops import Sops


@dataclass
class Proposal:
    """What a command wants to change, and how to explain it to a reviewer."""

    document: dict[str, Any]
    action: str  # rotate | promote | retire | revoke | rollout | app-auth-rotate | ...
    subject: str  # the credential id or app_auth kid the change is named after
    changes: list[str]  # one line per effect, e.g. "ios-2026-12: pending → active"
    why: str
    next_step: str
    verify: list[str] = field(default_factory=list)
    adoption: Mapping[str, Evidence | float] | None = None


@dataclass
class Target:
    root: Path
    stack: str
    client: str
    relpath: str
    today: dt.date
    settings: Settings
    current: LoadResult
    document: dict[str, Any]
    raw: bytes
    sops: Sops
    skipped_stacks: list[str]
    #: The keyops command whose uncommitted write of this file the edit builds on, if any.
    builds_on: str | None = None
    #: True when the change creates the file (``keyops client add``): ``raw`` is then empty.
    new: bool = False
