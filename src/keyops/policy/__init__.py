"""The change-aware policy engine behind ``keyops check`` (docs/policies.md).

Public interface (other commands code against it):

- :class:`Review`, :class:`Context`, :func:`load_reviews`: what the check knows besides files;
- :class:`Evidence`, :func:`load_adoption`: the adoption file (share of installs per credential);
- :func:`evaluate` (base, head, context, settings) -> findings, waivers applied;
- :func:`replace_document`: check a proposed edit in memory before writing it;
- :func:`client_view`: what a served or bundled client receives for one credential;
- :data:`RULES`: rule id -> :class:`Rule` (id, severity, rationale, fix, history_free).
"""

from keyops.policy.context import Context, Review, load_reviews, parse_reviews
from keyops.policy.engine import evaluate, in_memory, replace_document
from keyops.policy.evidence import Evidence, load_adoption
from keyops.policy.rules import ORDER, RULES, Rule
from keyops.protocol.client_view import client_view

__all__ = [
    "ORDER",
    "RULES",
    "Context",
    "Evidence",
    "Review",
    "Rule",
    "client_view",
    "evaluate",
    "in_memory",
    "load_adoption",
    "load_reviews",
    "parse_reviews",
    "replace_document",
]
