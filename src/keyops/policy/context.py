"""What a policy check knows besides the two repository states: date, author, reviews, adoption.

The adoption file is read by :mod:`keyops.policy.evidence`.

Reviews come from GitHub's REST API (``GET /repos/{o}/{r}/pulls/{n}/reviews``): a JSON list of
objects with ``user.login``, ``state`` and ``commit_id``. Only each reviewer's latest review counts,
as on GitHub: a later COMMENTED or CHANGES_REQUESTED replaces an earlier APPROVED.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyops.core.errors import InputError
from keyops.policy.evidence import Evidence


@dataclass(frozen=True)
class Review:
    login: str
    state: str
    commit_id: str
    submitted_at: str | None = None


@dataclass(frozen=True)
class Context:
    now: dt.date
    author: str | None = None
    #: None when no reviews were given (``--approvals`` absent): approval needs become warnings.
    approvals: tuple[Review, ...] | None = None
    #: None when there is no adoption evidence file. Bare shares (floats) are accepted too.
    adoption: Mapping[str, Evidence | float] | None = None
    head_sha: str | None = None


def _read_json(path: Path, option: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{option} {path} does not exist", "Check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{option} {path} cannot be read: {exc}", "Check the file.") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(
            f"{option} {path} is not valid JSON (line {getattr(exc, 'lineno', '?')})",
            "Pass the JSON the GitHub API returned, unchanged.",
        ) from None


def parse_reviews(data: Any, label: str = "reviews") -> tuple[Review, ...]:
    """Latest review per reviewer, in the order of their latest review."""
    if not isinstance(data, list):
        raise InputError(
            f"{label} must be a JSON list of review objects", "Use GitHub's reviews API output."
        )
    latest: dict[str, tuple[int, Review]] = {}
    for index, item in enumerate(data):
        user = item.get("user") if isinstance(item, dict) else None
        login = user.get("login") if isinstance(user, dict) else None
        state = item.get("state") if isinstance(item, dict) else None
        commit = item.get("commit_id") if isinstance(item, dict) else None
        if not (isinstance(login, str) and isinstance(state, str) and isinstance(commit, str)):
            raise InputError(
                f"{label}[{index}] lacks user.login, state or commit_id",
                "Use GitHub's reviews API output (GET /repos/{owner}/{repo}/pulls/{n}/reviews).",
            )
        if state.upper() == "PENDING":
            continue  # a review not yet submitted counts for nothing
        submitted = item.get("submitted_at")
        review = Review(
            login, state.upper(), commit, submitted if isinstance(submitted, str) else None
        )
        # GitHub lists reviews oldest first; submitted_at breaks ties when the order is lost.
        key = (review.submitted_at or "", index)
        previous = latest.get(login)
        if previous is None or key >= (previous[1].submitted_at or "", previous[0]):
            latest[login] = (index, review)
    return tuple(review for _, review in sorted(latest.values(), key=lambda p: p[0]))


def load_reviews(path: Path) -> tuple[Review, ...]:
    return parse_reviews(_read_json(path, "--approvals"), f"--approvals {path}")
