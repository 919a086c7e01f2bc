"""The adoption-reader role: CI may read the adoption evidence, and nothing else.

Allowed: ``cloudwatch:GetMetricData`` and ``logs:StopQuery`` (AWS scopes neither to a resource),
``logs:StartQuery`` and ``logs:GetQueryResults`` on the stack's function log groups only, in inline
policies; assumed only through GitHub's OIDC provider by one exact subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulumi_policy import ReportViolation

from keyops.deploy.guard.model import (
    LOG_GROUP,
    ROLE,
    ROLE_ATTACHMENT,
    ROLE_POLICY,
    Seen,
    ids,
    of,
    statements,
)
from keyops.deploy.permissions import ADOPTION_READER_ACTIONS, GITHUB_OIDC

ROLE_TAG = "adoption-reader"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _function_log_groups(resources: Sequence[Seen]) -> set[str]:
    arns = {
        str(g.props.get("arn"))
        for g in of(resources, LOG_GROUP)
        if str(g.props.get("name", "")).startswith("/aws/lambda/") and g.props.get("arn")
    }
    return arns | {f"{a}:*" for a in arns}


def _grant_problems(statement: dict[str, Any], groups: set[str]) -> list[str]:
    if statement.get("Effect") == "Deny":
        return []  # a deny only takes away
    if "NotAction" in statement or "NotResource" in statement:
        return ["NotAction/NotResource grants everything not listed"]
    problems = []
    resources = [str(r) for r in _as_list(statement.get("Resource"))]
    for action in (str(a) for a in _as_list(statement.get("Action"))):
        scope = ADOPTION_READER_ACTIONS.get(action)
        if scope is None:
            problems.append(f"grants {action!r}")
        elif scope == "log-groups":
            problems += [
                f"grants {action!r} on {r!r}, which is not a function log group of this stack"
                for r in resources
                if r not in groups
            ]
    return problems


def _trust_problems(document: Any) -> list[str]:
    problems = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        federated = principal.get("Federated") if isinstance(principal, dict) else None
        condition = (statement.get("Condition") or {}).get("StringEquals") or {}
        subject = condition.get(f"{GITHUB_OIDC}:sub")
        if (
            not isinstance(federated, str)
            or not federated.endswith(f":oidc-provider/{GITHUB_OIDC}")
            or statement.get("Action") != "sts:AssumeRoleWithWebIdentity"
        ):
            problems.append(f"trusts {principal!r}, not GitHub's OIDC provider alone")
        elif not isinstance(subject, str) or "*" in subject or "?" in subject:
            problems.append("trusts GitHub tokens without one exact subject (StringEquals sub)")
        elif condition.get(f"{GITHUB_OIDC}:aud") != "sts.amazonaws.com":
            problems.append("trusts GitHub tokens without the sts.amazonaws.com audience")
    return problems


def adoption_reader_least_privilege(resources: Sequence[Seen], report: ReportViolation) -> None:
    groups = _function_log_groups(resources)
    for role in of(resources, ROLE):
        if role.tags.get("keyops:role") != ROLE_TAG:
            continue
        label = f"adoption-reader role {role.name!r}"
        refs = ids(role)
        attached = list(role.props.get("managedPolicyArns") or []) + [
            a.props.get("policyArn")
            for a in of(resources, ROLE_ATTACHMENT)
            if str(a.props.get("role")) in refs
        ]
        for arn in attached:
            report(f"{label} has the managed policy {arn}: use its inline policy only", role.urn)
        documents = [p.get("policy") for p in role.props.get("inlinePolicies") or []]
        documents += [
            p.props.get("policy")
            for p in of(resources, ROLE_POLICY)
            if str(p.props.get("role")) in refs
        ]
        for document in documents:
            for statement in statements(document):
                for problem in _grant_problems(statement, groups):
                    report(f"{label} {problem}", role.urn)
        for problem in _trust_problems(role.props.get("assumeRolePolicy")):
            report(f"{label} {problem}", role.urn)
