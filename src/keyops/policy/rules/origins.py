"""``allowed-origins``: the web pages a browser may call the endpoint from are exact and safe.

Each entry of a served web client's ``allowed_origins`` must be an exact origin as browsers send
it; ``http://`` (loopback hosts only, with an exact port or ``:*``) is for dev stacks, the stacks
of ``test_stacks`` in policies/keyops.yaml; ``*`` never. What an entry means, and how the
endpoint matches it, has one home: ``keyops.endpoint.cors``.
"""

from __future__ import annotations

from collections.abc import Iterable

from keyops.core.findings import Finding, Severity
from keyops.endpoint import cors
from keyops.policy.rules.base import Facts, rule


@rule(
    "allowed-origins",
    Severity.ERROR,
    "A browser lets a page use the endpoint only from the origins listed; a loose entry (any "
    "page, plain http on a deployed stack) would let other sites' pages fetch the key.",
    "List each web page origin exactly as the browser sends it, e.g. https://app.example.com; "
    "http://localhost:* only in a dev stack.",
    history_free=True,
)
def allowed_origins(facts: Facts) -> Iterable[Finding]:
    dev_stacks = set(facts.settings.test_stacks)
    for client in facts.clients():
        for index, entry in enumerate(client.allowed_origins):
            problem = cors.entry_problem(entry, dev=client.stack in dev_stacks)
            if problem is not None:
                yield allowed_origins.finding(
                    facts, client.path, problem, f"$.allowed_origins[{index}]"
                )
        for index, message in cors.redundant(client.allowed_origins):
            yield allowed_origins.finding(
                facts, client.path, message, f"$.allowed_origins[{index}]"
            )
