"""Rules about key and secret values: unique, immutable, and never shipped to an app.

Messages name credentials and files, never the values themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from keyops.core.findings import Finding, Severity
from keyops.policy.rules.base import Facts, Located, rule
from keyops.protocol.client_view import client_view

_SECRET_NAMES = frozenset({"secret", "private_jwk", "encryption_master_key", "d"})


@rule(
    "unique-key",
    Severity.ERROR,
    "A key or secret shared by two credentials cannot be rotated or revoked alone.",
    "Create a new credential set in the Pusher dashboard for one of them; never copy values.",
    history_free=True,
)
def unique_key(facts: Facts) -> Iterable[Finding]:
    seen: dict[str, tuple[Located, str]] = {}
    base = facts.base_index()

    def unchanged_first(loc: Located) -> tuple[bool, str, int]:
        # Blame the credential this change introduced or edited, not the one already there.
        before = base.get((loc.client.stack, loc.cred.id))
        same = before is not None and (before.cred.key, before.cred.secret) == (
            loc.cred.key,
            loc.cred.secret,
        )
        return (not same, loc.client.path, loc.cred.index)

    for located in sorted(facts.head_index().values(), key=unchanged_first):
        for field in ("key", "secret"):
            value = getattr(located.cred, field)
            if value is None:
                continue
            if value in seen:
                other, other_field = seen[value]
                same = other.cred.id == located.cred.id and other.client.path == located.client.path
                where = (
                    f"its own {other_field}"
                    if same
                    else f"the {other_field} of {other.cred.id} ({other.client.path})"
                )
                yield unique_key.at(
                    facts,
                    located,
                    f"the {field} of {located.cred.id} is also {where}; every credential needs "
                    "its own key and secret",
                    suffix=f".{field}",
                )
            else:
                seen[value] = (located, field)


@rule(
    "immutable-secret",
    Severity.ERROR,
    "A key or secret never changes in place: apps and servers holding the old value would break "
    "without any overlap.",
    "Restore the old value and add the new pair as a new credential id (keyops rotate).",
    history_free=False,
)
def immutable_secret(facts: Facts) -> Iterable[Finding]:
    for base, head in facts.pairs():
        for field in ("key", "secret"):
            old, new = getattr(base.cred, field), getattr(head.cred, field)
            if old is not None and new is not None and old != new:
                yield immutable_secret.at(
                    facts,
                    head,
                    f"the {field} of {head.cred.id} changed in place; a rotation is always a new "
                    "credential id: restore the old value and add the new one with "
                    "`keyops rotate`",
                    suffix=f".{field}",
                )


def _strings(node: Any, name: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, str(key))
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, name)
    elif isinstance(node, str):
        yield name, node


def _secret_values(facts: Facts) -> dict[str, str]:
    """Every secret value the head holds, mapped to a description of where it lives."""
    out: dict[str, str] = {}
    for stack in facts.head.stacks.values():
        for client in stack.clients.values():
            for cred in client.credentials:
                if cred.secret:
                    out.setdefault(cred.secret, f"the secret of {cred.id}")
            for auth in client.app_auth:
                if auth.secret:
                    out.setdefault(auth.secret, f"the app_auth secret {auth.kid}")
        if stack.stack_file is not None:
            sf = stack.stack_file
            if sf.encryption_master_key:
                out.setdefault(sf.encryption_master_key, f"the encryption_master_key of {sf.stack}")
            for key in sf.signing_keys:
                if key.private_jwk:
                    try:
                        private = json.loads(key.private_jwk).get("d")
                    except (ValueError, AttributeError):
                        private = None
                    if isinstance(private, str):
                        out.setdefault(private, f"the private signing key {key.kid}")
    return out


@rule(
    "no-secret-to-clients",
    Severity.ERROR,
    "Apps receive only key and cluster; a secret in an app can sign API calls and channel auth.",
    "Put the public key in `key`; secrets stay in `secret` and reach servers only.",
    history_free=True,
)
def no_secret_to_clients(facts: Facts) -> Iterable[Finding]:
    secrets = _secret_values(facts)
    for client in facts.clients():
        if client.delivery not in ("served", "bundled"):
            continue
        for cred in client.credentials:
            if cred.state not in ("active", "pending"):
                continue
            view = client_view(client, cred)
            for name, value in _strings(view):
                problem = None
                if name in _SECRET_NAMES:
                    problem = f"a field named {name!r}"
                elif value in secrets:
                    problem = f"{secrets[value]} (in {name!r})"
                if problem:
                    yield no_secret_to_clients.at(
                        facts,
                        Located(client, cred),
                        f"what {client.delivery} client {client.client} would receive for "
                        f"{cred.id} contains {problem}; treat that secret as exposed and rotate it",
                        suffix=f".{name}" if name in ("key",) else "",
                    )
