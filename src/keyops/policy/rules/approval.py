"""``approval``: changes that end a credential or change who can decrypt need a second person.

What needs approval: a credential moving to retired or revoked, a credential removed, a file's
recipients changing, a stack's encryption_master_key changing, and a change to the files that
govern the checks themselves (``.sops.yaml``, ``policies/keyops.yaml``, ``policies/waivers.yaml``):
otherwise a pull request could waive or loosen the very rule that blocks it.

The approval is an APPROVED review on the head commit, by a configured approver who is not the
change's author, counting only each reviewer's latest review.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from keyops.core.findings import Finding, Severity
from keyops.policy.context import Review
from keyops.policy.rules.base import Facts, rule
from keyops.store.sops import metadata_recipients


@dataclass(frozen=True)
class Need:
    """One change that needs an approving review."""

    path: str
    pointer: str
    what: str
    credential_id: str | None = None


def _recipients(record: object) -> tuple[str, ...] | None:
    doc = getattr(record, "doc", None)
    data = doc.data if doc is not None else None
    if not isinstance(data, dict) or not isinstance(data.get("sops"), dict):
        return None
    return metadata_recipients(data["sops"]).entries


def needs(facts: Facts) -> Iterator[Need]:
    """Every change in (base → head) that needs approval, in file order."""
    if facts.base is None:
        return
    for base, head in facts.pairs():
        old, new = base.cred.state, head.cred.state
        if old != new and new in ("retired", "revoked"):
            yield Need(
                head.client.path,
                head.cred.pointer + ".state",
                f"{head.cred.id}: {old} → {new}",
                head.cred.id,
            )
    for gone in facts.removed():
        yield Need(gone.client.path, gone.cred.pointer, f"removal of {gone.cred.id}", gone.cred.id)
    for path, record in sorted(facts.head.records.items()):
        before = facts.base.records.get(path)
        if before is None:
            continue
        old_r, new_r = _recipients(before), _recipients(record)
        if old_r is not None and new_r is not None and old_r != new_r:
            added = sorted(set(new_r) - set(old_r))
            dropped = sorted(set(old_r) - set(new_r))
            parts = [f"+{r}" for r in added] + [f"-{r}" for r in dropped]
            yield Need(path, "$.sops", f"recipients of {path} change ({', '.join(parts)})")
    for path in sorted(set(facts.base.governance) & set(facts.head.governance)):
        if facts.base.governance[path] != facts.head.governance[path]:
            yield Need(path, "$", f"a change of {path} (it governs these checks)")
    for name, stack in sorted(facts.head.stacks.items()):
        base_stack = facts.base.stacks.get(name)
        if stack.stack_file is None or base_stack is None or base_stack.stack_file is None:
            continue
        old_key = base_stack.stack_file.encryption_master_key
        new_key = stack.stack_file.encryption_master_key
        if old_key is not None and new_key is not None and old_key != new_key:
            yield Need(
                stack.stack_file.path,
                "$.encryption_master_key",
                f"encryption_master_key change of stack {name}",
            )


def qualifying(facts: Facts) -> list[Review]:
    """Reviews that approve this change."""
    approvers = set(facts.settings.approvers)
    return [
        r
        for r in facts.ctx.approvals or ()
        if r.state == "APPROVED"
        and r.login in approvers
        and r.login != facts.ctx.author
        and (facts.ctx.head_sha is None or r.commit_id == facts.ctx.head_sha)
    ]


def _why_not(facts: Facts) -> str:
    """Why the reviews given do not count: said plainly, so the fix is obvious."""
    notes: list[str] = []
    approvers = set(facts.settings.approvers)
    for r in facts.ctx.approvals or ():
        if r.state != "APPROVED":
            notes.append(f"{r.login}'s latest review is {r.state}")
        elif r.login not in approvers:
            notes.append(f"{r.login} is not a configured approver")
        elif r.login == facts.ctx.author:
            notes.append(f"{r.login} is the author")
        elif facts.ctx.head_sha is not None and r.commit_id != facts.ctx.head_sha:
            notes.append(f"{r.login} approved {r.commit_id[:12]}, not the head commit")
    return "; ".join(notes) if notes else "no reviews were given"


@rule(
    "approval",
    Severity.ERROR,
    "Ending a credential or changing who can decrypt is irreversible or security-relevant; a "
    "second person from the approvers list must agree.",
    "Ask a configured approver (policies/keyops.yaml) who is not the author to approve the head "
    "commit, then re-run with --approvals.",
    history_free=False,
)
def approval(facts: Facts) -> Iterable[Finding]:
    pending = list(needs(facts))
    if not pending:
        return
    names = ", ".join(sorted(facts.settings.approvers))
    if not names:
        for need in pending:
            yield approval.finding(
                facts,
                need.path,
                f"{need.what} needs approval, but no approvers are configured; list them under "
                "approvers: in policies/keyops.yaml",
                need.pointer,
                credential_id=need.credential_id,
            )
        return
    if facts.ctx.approvals is None:
        for need in pending:
            yield approval.finding(
                facts,
                need.path,
                f"{need.what} needs an APPROVED review from one of: {names} (not the author)",
                need.pointer,
                credential_id=need.credential_id,
                severity=Severity.WARNING,
            )
        return
    if qualifying(facts):
        return
    on = f" on {facts.ctx.head_sha[:12]}" if facts.ctx.head_sha else ""
    for need in pending:
        yield approval.finding(
            facts,
            need.path,
            f"{need.what} needs an APPROVED review{on} from one of: {names} (not the author); "
            f"{_why_not(facts)}",
            need.pointer,
            credential_id=need.credential_id,
        )
