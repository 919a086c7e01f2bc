"""Load one stack, decrypted, and refuse it when it has errors: the one way to do it.

Every command that turns a stack into something other people use (a bundle, an app build's
config or export, the auth servers' keyring, a deployment) goes through :func:`load_stack`, so
a broken stack is refused the same way and in the same words everywhere:

    error: refusing to <purpose> of stack 'dev': 2 error finding(s). Fix them (keyops validate
    shows the same findings), then run the command again.
      credentials/dev/ios.yaml::$.credentials[0].key: error[schema] ... (line 9)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from keyops.core.errors import Refused
from keyops.core.findings import Finding, Severity
from keyops.core.model import Stack
from keyops.store import loader, settings
from keyops.store.loader import LoadResult
from keyops.store.sops import Sops, timeout_from_env
from keyops.store.sources import WorktreeSource

#: History-free rules that must not block a bundle. An overdue rotation is a hygiene problem the
#: check and the hygiene workflow raise; refusing to rebuild would let the served bundle expire
#: and turn an old key into an outage of every app.
NON_BLOCKING_RULES = frozenset({"max-age"})


def load_stack(
    root: Path,
    stack: str,
    *,
    purpose: str,
    only: str | None = None,
    policy_gate: bool = False,
    now: dt.datetime | None = None,
    sops: Sops | None = None,
) -> Stack:
    """The decrypted stack; :class:`Refused` (exit 1) when it has error findings.

    ``purpose`` completes "refusing to …" (e.g. ``"build the bundle"``). ``only`` limits the
    load, and the findings that count, to one file of the stack. With ``policy_gate`` the
    history-free policy rules run too (waivers applied), as for anything that gets deployed.
    """
    source = WorktreeSource(root)
    loader.check_stacks(root, source, [stack])
    result = loader.load(
        root,
        source,
        stacks=[stack],
        paths=[only] if only else None,
        decrypt=True,
        sops=sops or Sops(root, timeout=timeout_from_env()),
    )
    findings = list(result.findings)
    if policy_gate:
        findings += gate_findings(result, now or dt.datetime.now(dt.UTC), root, seen=findings)
    errors = [
        f for f in findings if f.severity is Severity.ERROR and (only is None or f.path == only)
    ]
    refuse_on_errors(errors, stack, purpose)
    return result.stacks[stack]


def refuse_on_errors(errors: Sequence[Finding], stack: str, purpose: str) -> None:
    if errors:
        raise Refused(
            f"refusing to {purpose} of stack {stack!r}: {len(errors)} error finding(s)",
            "Fix them (keyops validate and keyops check show the same findings), then run the "
            "command again.",
            errors,
        )


def gate_findings(
    result: LoadResult, now: dt.datetime, root: Path, *, seen: Sequence[Finding] = ()
) -> list[Finding]:
    """The history-free policy rules' findings not already in ``seen`` (waivers applied)."""
    from keyops import policy  # the rules import the whole policy engine: only when gating

    extra = policy.evaluate(
        None, result, policy.Context(now=now.date()), settings.load(root), root=root
    )
    known = set(seen)
    return [f for f in extra if f not in known and f.rule not in NON_BLOCKING_RULES]
