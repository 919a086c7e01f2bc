"""Run the policy rules over (base, head, context), apply waivers, and edit states in memory.

``evaluate(None, head, …)`` runs only the history-free rules: that is what ``keyops build`` uses
to refuse a bundle, and what ``keyops check`` runs without ``--base``.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

from keyops.core.errors import UsageError
from keyops.core.findings import Finding, Severity
from keyops.policy import waivers
from keyops.policy.context import Context
from keyops.policy.rules import ORDER, RULES, Facts
from keyops.store import loader
from keyops.store import schema as schemas
from keyops.store.loader import FileRecord, LoadResult
from keyops.store.settings import Settings
from keyops.store.sources import CREDENTIALS_DIR, STACK_FILE


def evaluate(
    base: LoadResult | None,
    head: LoadResult,
    ctx: Context,
    settings: Settings,
    *,
    only: Collection[str] | None = None,
    root: Path | None = None,
) -> list[Finding]:
    """Every finding of the rules (all, or ``only`` these ids), waivers applied when ``root``."""
    if only is not None:
        unknown = sorted(set(only) - set(RULES))
        if unknown:
            raise UsageError(
                f"unknown rule id(s): {', '.join(unknown)}", f"Known: {', '.join(ORDER)}."
            )
    facts = Facts(head=head, ctx=ctx, settings=settings, base=base, root=root)
    findings: list[Finding] = []
    for rule_id in ORDER:
        rule = RULES[rule_id]
        if only is not None and rule_id not in only:
            continue
        if base is None and not rule.history_free:
            continue
        findings.extend(rule.check(facts))
    if root is not None:
        active, problems = waivers.load(root, set(RULES), settings.approvers, ctx.now)
        findings = waivers.apply(findings, active) + problems
    return sorted(set(findings), key=lambda f: (f.path, f.line or 0, f.pointer, f.rule, f.message))


def replace_document(result: LoadResult, relpath: str, plain: dict[str, Any]) -> LoadResult:
    """A copy of ``result`` where ``relpath`` holds the decrypted document ``plain``.

    The file is added when absent. Its schema findings are recomputed and ``.stacks`` rebuilt;
    the sops metadata of an existing file is kept (an edit re-encrypts to the same recipients).
    Nothing touches disk or sops, so rotation commands can check a proposed edit before writing.
    """
    parts = relpath.split("/")
    if len(parts) != 3 or parts[0] != CREDENTIALS_DIR or not parts[2].endswith(".yaml"):
        raise UsageError(
            f"{relpath} is not a credential file path",
            f"Use {CREDENTIALS_DIR}/<stack>/<client>.yaml.",
        )
    old = result.records.get(relpath)
    kind = "stack" if parts[2] == STACK_FILE else "client"
    record = FileRecord(
        relpath=relpath,
        stack=parts[1],
        kind=kind,
        raw=None,
        doc=old.doc if old else None,
        plain=copy.deepcopy(plain),
        decryptable=True,
    )
    name = schemas.STACK_SCHEMA if kind == "stack" else schemas.CREDENTIAL_SCHEMA
    stem = parts[1] if kind == "stack" else record.stem
    problems = schemas.validate(record.plain, name, strict=True, file_stem=stem)
    record.schema_ok = not problems
    records = dict(result.records)
    records[relpath] = record
    findings = [f for f in result.findings if not (f.path == relpath and f.rule == "schema")]
    findings += [
        Finding(
            path=relpath,
            pointer=pointer,
            rule="schema",
            severity=Severity.ERROR,
            message=message,
            line=None,
        )
        for pointer, message in problems
    ]
    edited = replace(
        result,
        records=records,
        findings=sorted(findings, key=lambda f: (f.path, f.line or 0, f.pointer, f.rule)),
        stacks={},
    )
    loader.build_models(edited)  # the very builder load() uses, so both agree
    return edited


def in_memory(documents: dict[str, dict[str, Any]], label: str = "memory") -> LoadResult:
    """A LoadResult of decrypted documents by path, built without sops (tests, what-if checks)."""
    result = LoadResult(source_label=label, decrypted=True)
    for relpath, document in documents.items():
        result = replace_document(result, relpath, document)
    return result
