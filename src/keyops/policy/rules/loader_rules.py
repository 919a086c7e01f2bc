"""``schema``, ``encrypted``, ``recipients``: what the loader (``keyops validate``) found."""

from __future__ import annotations

from collections.abc import Iterable

from keyops.core.findings import Finding, Severity
from keyops.policy.rules.base import Check, Facts, rule


def _from_loader(rule_id: str) -> Check:
    def check(facts: Facts) -> Iterable[Finding]:
        return [f for f in facts.head.findings if f.rule == rule_id]

    return check


schema = rule(
    "schema",
    Severity.ERROR,
    "Files must be strict YAML that matches the credential or stack file schema.",
    "Fix the field named in the message; `keyops validate` shows the same finding.",
    history_free=True,
)(_from_loader("schema"))
encrypted = rule(
    "encrypted",
    Severity.ERROR,
    "Secrets are encrypted with sops, lifecycle metadata is not, and the MAC is intact.",
    "Re-encrypt with sops under the .sops.yaml creation rule; rotate anything committed in clear.",
    history_free=True,
)(_from_loader("encrypted"))
recipients = rule(
    "recipients",
    Severity.ERROR,
    "Each file is encrypted to exactly the recipients of its .sops.yaml creation rule.",
    "Run `sops updatekeys <file>` after changing .sops.yaml.",
    history_free=True,
)(_from_loader("recipients"))
