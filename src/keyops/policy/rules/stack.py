"""Stack-wide rules: the test identity, the channel encryption key, an app's id and cluster."""

from __future__ import annotations

from collections.abc import Iterable

from keyops.core.errors import KeyopsError
from keyops.core.findings import Finding, Severity
from keyops.policy.rules.base import Facts, rule
from keyops.store import sopsconfig
from keyops.store.sops import metadata_recipients


def _is_test(recipient: str, test_recipients: Iterable[str]) -> bool:
    bare = recipient.split(":", 1)[-1]
    return any(bare == t.split(":", 1)[-1] for t in test_recipients)


@rule(
    "dev-key-in-real-stack",
    Severity.ERROR,
    "The test identity is committed to git; anything encrypted to it is public.",
    "Remove the test recipient from the stack's .sops.yaml rule, run `sops updatekeys`, and "
    "rotate every credential that was encrypted to it.",
    history_free=True,
)
def dev_key_in_real_stack(facts: Facts) -> Iterable[Finding]:
    tests, test_stacks = facts.settings.test_recipients, set(facts.settings.test_stacks)
    if not tests:
        return
    for path, record in sorted(facts.head.records.items()):
        if record.stack in test_stacks or record.doc is None:
            continue
        meta = record.doc.data.get("sops") if isinstance(record.doc.data, dict) else None
        for recipient in metadata_recipients(meta).entries:
            if _is_test(recipient, tests):
                yield dev_key_in_real_stack.finding(
                    facts,
                    path,
                    f"{path} (stack {record.stack}) is encrypted to the committed test identity "
                    f"{recipient}; its secrets must be treated as public: re-encrypt without it "
                    "and rotate them",
                    "$.sops",
                )
    if facts.root is None:
        return
    try:
        config = sopsconfig.load(facts.root)
    except KeyopsError:
        return  # the loader already reported an unreadable .sops.yaml
    probes = sorted({r.stack for r in facts.head.records.values()} | {"prod"})
    for creation in config.rules:
        if not any(_is_test(r, tests) for r in creation.recipients):
            continue
        real = [
            s
            for s in probes
            if s not in test_stacks and creation.matches(f"credentials/{s}/client.yaml")
        ]
        if real:
            yield dev_key_in_real_stack.finding(
                facts,
                ".sops.yaml",
                f"{creation.describe()} lists the committed test identity and also matches "
                f"stack(s) {', '.join(real)}; restrict it to {', '.join(sorted(test_stacks))}",
                f"$.creation_rules[{creation.index}]",
                line=creation.line,
            )


@rule(
    "master-key-change",
    Severity.WARNING,
    "Pusher has no dual-key support for private-encrypted channels: messages in flight when the "
    "encryption_master_key changes are lost.",
    "Schedule the cut-over, deploy all servers together, and get an approving review.",
    history_free=False,
)
def master_key_change(facts: Facts) -> Iterable[Finding]:
    if facts.base is None:
        return
    for name, stack in sorted(facts.head.stacks.items()):
        before = facts.base.stacks.get(name)
        new_sf, old_sf = stack.stack_file, before.stack_file if before else None
        if new_sf is None or old_sf is None:
            continue
        if (
            old_sf.encryption_master_key is not None
            and new_sf.encryption_master_key is not None
            and old_sf.encryption_master_key != new_sf.encryption_master_key
        ):
            yield master_key_change.finding(
                facts,
                new_sf.path,
                f"the encryption_master_key of stack {name} changes: messages on "
                "private-encrypted channels in flight during the cut-over will be lost; deploy "
                "every server at once, and this needs an approving review",
                "$.encryption_master_key",
            )


@rule(
    "cluster-consistent",
    Severity.ERROR,
    "A Pusher app's id and cluster never change; credentials only work on the app that "
    "created them.",
    "Restore the app_id and cluster; a different app is a new client file.",
    history_free=True,
)
def cluster_consistent(facts: Facts) -> Iterable[Finding]:
    apps: dict[tuple[str, str], tuple[str, str]] = {}
    for client in facts.clients():
        known = apps.setdefault((client.stack, client.app_id), (client.cluster, client.path))
        if known[0] != client.cluster:
            yield cluster_consistent.finding(
                facts,
                client.path,
                f"app {client.app_id} is on cluster {client.cluster} here but on {known[0]} in "
                f"{known[1]}; an app has exactly one cluster",
                "$.pusher.cluster",
            )
    if facts.base is None:
        return
    for name, stack in sorted(facts.head.stacks.items()):
        before = facts.base.stacks.get(name)
        for cname, client in sorted(stack.clients.items()):
            old = before.clients.get(cname) if before else None
            if old is None:
                continue
            for field in ("app_id", "cluster"):
                was, now = getattr(old, field), getattr(client, field)
                if was != now:
                    live = [c.id for c in old.credentials if c.live]
                    yield cluster_consistent.finding(
                        facts,
                        client.path,
                        f"{field} of client {cname} changed from {was} to {now}; its credentials "
                        f"({', '.join(live) or 'none live'}) belong to the app they were created "
                        "in. Restore it, or create a new client file for the other app",
                        f"$.pusher.{field}",
                    )
