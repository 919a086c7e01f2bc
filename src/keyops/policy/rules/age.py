"""``max-age``: keys are rotated regularly, so a leaked key has a bounded life."""

from __future__ import annotations

from collections.abc import Iterable

from keyops.core.findings import Finding, Severity
from keyops.policy.rules.base import Facts, Located, rule


@rule(
    "max-age",
    Severity.ERROR,
    "Regular rotation bounds how long a leaked key stays useful.",
    "Start a rotation (keyops rotate) before max_age_days.",
    history_free=True,
)
def max_age(facts: Facts) -> Iterable[Finding]:
    warn, limit = facts.settings.warn_age_days, facts.settings.max_age_days
    for client in facts.clients():
        for cred in client.credentials:
            age = cred.age_days(facts.now)
            if age is None or not cred.live or age < warn:
                continue
            error = cred.state == "active" and age > limit
            yield max_age.at(
                facts,
                Located(client, cred),
                f"{cred.id} is {age} days old ({cred.state}); "
                + (
                    f"max_age_days is {limit}: rotate it now"
                    if error
                    else f"rotate before it is {limit} days old (warn_age_days is {warn})"
                ),
                severity=Severity.ERROR if error else Severity.WARNING,
                suffix=".created",
            )
