"""Policy settings from ``policies/keyops.yaml``: thresholds and approvers.

Defaults apply when the file or a field is absent; an invalid value is a clear error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from keyops.core.errors import RepositoryError

SETTINGS_PATH = "policies/keyops.yaml"


@dataclass(frozen=True)
class Settings:
    min_overlap_days: int = 30
    max_retire_adoption_percent: float = 1.0
    tombstone_days: int = 90
    warn_age_days: int = 330
    max_age_days: int = 365
    approvers: tuple[str, ...] = ()
    #: Recipients that belong to the committed test identity; never allowed outside ``dev``.
    test_recipients: tuple[str, ...] = ()
    test_stacks: tuple[str, ...] = ("dev",)
    extra: dict[str, Any] = field(default_factory=dict)

    # The dates the lifecycle rules turn on, computed here once for the rules, the commands'
    # next-step hints and `keyops status`.
    def earliest_retirement(self, retiring_since: dt.date) -> dt.date:
        """The first day a retiring credential may become retired (``min-overlap``)."""
        return retiring_since + dt.timedelta(days=self.min_overlap_days)

    def removable_from(self, ended: dt.date) -> dt.date:
        """The first day a retired or revoked credential may leave the file (tombstone)."""
        return ended + dt.timedelta(days=self.tombstone_days)


_INT_FIELDS = ("min_overlap_days", "tombstone_days", "warn_age_days", "max_age_days")


def load(root: Path) -> Settings:
    path = root / SETTINGS_PATH
    if not path.exists():
        return Settings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RepositoryError(f"{SETTINGS_PATH} cannot be read: {exc}", "Fix its YAML.") from exc
    if not isinstance(data, dict):
        raise RepositoryError(f"{SETTINGS_PATH} must be a mapping", "See docs/policies.md.")
    known = {f.name for f in fields(Settings)} - {"extra"}
    values: dict[str, Any] = {}
    for name in _INT_FIELDS:
        if name in data:
            value = data[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise RepositoryError(
                    f"{SETTINGS_PATH}: {name} must be a whole number of days, not {value!r}",
                    "Fix the value.",
                )
            values[name] = value
    if "max_retire_adoption_percent" in data:
        value = data["max_retire_adoption_percent"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 100:
            raise RepositoryError(
                f"{SETTINGS_PATH}: max_retire_adoption_percent must be 0..100, not {value!r}",
                "Fix the value.",
            )
        values["max_retire_adoption_percent"] = float(value)
    for name in ("approvers", "test_recipients", "test_stacks"):
        if name in data:
            value = data[name]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RepositoryError(
                    f"{SETTINGS_PATH}: {name} must be a list of strings", "Fix the value."
                )
            values[name] = tuple(value)
    settings = Settings(**values, extra={k: v for k, v in data.items() if k not in known})
    if settings.warn_age_days > settings.max_age_days:
        raise RepositoryError(
            f"{SETTINGS_PATH}: warn_age_days ({settings.warn_age_days}) exceeds max_age_days "
            f"({settings.max_age_days})",
            "Warn before the maximum age.",
        )
    return settings
