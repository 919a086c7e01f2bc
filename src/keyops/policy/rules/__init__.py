"""Every policy rule, registered by id in :data:`RULES` (importing the modules registers them)."""

from keyops.policy.rules import (  # noqa: F401  (imported for registration)
    age,
    approval,
    counts,
    keys,
    lifecycle,
    loader_rules,
    origins,
    releases,
    removal,
    stack,
)
from keyops.policy.rules.base import RULES, Facts, Rule

#: The contract order of the rules: also the order of docs/policies.md.
ORDER = (
    "schema",
    "encrypted",
    "recipients",
    "unique-key",
    "single-active",
    "one-rotation-in-flight",
    "rollout-range",
    "transition",
    "immutable-secret",
    "retire-needs-successor",
    "min-overlap",
    "adoption",
    "revoke-reason",
    "release-record",
    "approval",
    "no-early-removal",
    "max-age",
    "no-secret-to-clients",
    "dev-key-in-real-stack",
    "master-key-change",
    "cluster-consistent",
    "allowed-origins",
)
assert set(ORDER) == set(RULES), sorted(set(ORDER) ^ set(RULES))

__all__ = ["ORDER", "RULES", "Facts", "Rule"]
