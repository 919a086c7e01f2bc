"""SARIF 2.1.0 for GitHub code scanning: one run, every rule described, one result per finding."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from keyops import __version__
from keyops.cli.reporters.base import Report
from keyops.core.findings import Finding, Severity
from keyops.policy import ORDER, RULES

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
_EXTRA_RULES = {
    "waiver": (
        "A waiver in policies/waivers.yaml is expired, malformed or not allowed.",
        "Fix or remove the waiver; renew it with a new approval.",
        Severity.ERROR,
    )
}


def _descriptors() -> list[dict[str, Any]]:
    out = []
    for rule_id in ORDER:
        rule = RULES[rule_id]
        out.append(_descriptor(rule_id, rule.rationale, rule.fix, rule.severity))
    for rule_id, (rationale, fix, severity) in _EXTRA_RULES.items():
        out.append(_descriptor(rule_id, rationale, fix, severity))
    return out


def _descriptor(rule_id: str, rationale: str, fix: str, severity: Severity) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in rule_id.split("-")),
        "shortDescription": {"text": rationale},
        "help": {"text": fix},
        "defaultConfiguration": {"level": _LEVEL[severity]},
    }


def _result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    region = {"startLine": finding.line} if finding.line is not None else None
    physical: dict[str, Any] = {"artifactLocation": {"uri": finding.path, "uriBaseId": "%SRCROOT%"}}
    if region:
        physical["region"] = region
    fingerprint = hashlib.sha256(
        f"{finding.rule}\0{finding.path}\0{finding.credential_id or finding.pointer}".encode()
    ).hexdigest()
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "level": _LEVEL[finding.severity],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": physical,
                "logicalLocations": [{"fullyQualifiedName": finding.pointer, "kind": "member"}],
            }
        ],
        "partialFingerprints": {"keyopsFinding/v1": fingerprint},
    }
    if finding.rule in index:
        result["ruleIndex"] = index[finding.rule]
    if finding.credential_id:
        result["properties"] = {"credential_id": finding.credential_id}
    return result


def render(report: Report) -> str:
    findings = report.findings
    rules = _descriptors()
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "keyops",
                        "version": __version__,
                        "informationUri": "https://keyops.invalid/docs/policies.md",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "repository root"}}},
                "results": [_result(f, index) for f in findings],
                "properties": {"files": report.files},
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
