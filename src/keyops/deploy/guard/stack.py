"""Rules over the whole stack: regions, function roles, log retention, endpoint alarms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulumi_policy import ReportViolation

from keyops.deploy.guard.model import (
    ALARM,
    API,
    FUNCTION,
    IAM_POLICY,
    LOG_GROUP,
    ROLE,
    ROLE_ATTACHMENT,
    ROLE_POLICY,
    Seen,
    ids,
    is_endpoint_role,
    of,
)
from keyops.deploy.iam import wildcards


def prod_multi_region(resources: Sequence[Seen], report: ReportViolation) -> None:
    stacks: dict[str, set[str]] = {}
    for fn in of(resources, FUNCTION):
        tags = fn.tags
        if tags.get("keyops:component") == "endpoint" and tags.get("keyops:production") == "true":
            region = tags.get("keyops:region") or fn.region or "?"
            stacks.setdefault(str(tags.get("keyops:stack")), set()).add(str(region))
    for stack, regions in sorted(stacks.items()):
        if len(regions) < 2:
            report(
                f"production stack {stack!r} serves from {len(regions)} region(s) "
                f"({', '.join(sorted(regions))}); it needs at least 2",
                None,
            )


def endpoint_iam_no_wildcards(resources: Sequence[Seen], report: ReportViolation) -> None:
    policies = {ident: p for p in of(resources, IAM_POLICY) for ident in ids(p)}
    for role in filter(is_endpoint_role, of(resources, ROLE)):
        refs = ids(role)
        documents: list[tuple[str, Any]] = [
            (f"inline policy {p.get('name')!r}", p.get("policy"))
            for p in role.props.get("inlinePolicies") or []
        ]
        documents += [
            (f"role policy {p.name!r}", p.props.get("policy"))
            for p in of(resources, ROLE_POLICY)
            if str(p.props.get("role")) in refs
        ]
        arns = list(role.props.get("managedPolicyArns") or [])
        arns += [
            a.props.get("policyArn")
            for a in of(resources, ROLE_ATTACHMENT)
            if str(a.props.get("role")) in refs
        ]
        for arn in arns:
            policy = policies.get(str(arn))
            if policy is None:
                report(
                    f"endpoint role {role.name!r} has the managed policy {arn}, which "
                    "cannot be checked for wildcards; declare its statements here",
                    role.urn,
                )
            else:
                documents.append((f"policy {policy.name!r}", policy.props.get("policy")))
        for label, document in documents:
            for found in wildcards(document):
                report(f"endpoint role {role.name!r}: {label} has a wildcard {found}", role.urn)


def log_retention(resources: Sequence[Seen], report: ReportViolation) -> None:
    groups = {}
    for group in of(resources, LOG_GROUP):
        groups[str(group.props.get("name"))] = group
        days = group.props.get("retentionInDays")
        if not days or days <= 0:
            report(
                f"log group {group.props.get('name')!r} keeps logs forever: set "
                "retentionInDays (keyops:logRetentionDays)",
                group.urn,
            )
    for fn in of(resources, FUNCTION):
        target = (fn.props.get("loggingConfig") or {}).get("logGroup") or (
            f"/aws/lambda/{fn.props.get('name')}"
        )
        if str(target) not in groups:
            report(
                f"function {fn.name!r} logs to {target}, which this stack does not declare "
                "(Lambda would create it with no retention)",
                fn.urn,
            )


def alarms_per_endpoint(resources: Sequence[Seen], report: ReportViolation) -> None:
    alarms = of(resources, ALARM)

    def has(namespace: str, metric: str, dimension: str, value: Any) -> bool:
        return any(
            a.props.get("namespace") == namespace
            and a.props.get("metricName") == metric
            and str((a.props.get("dimensions") or {}).get(dimension)) == str(value)
            for a in alarms
        )

    for api in of(resources, API):
        # Stack policies see outputs, where the API id is the last segment of its ARN.
        api_id = api.props.get("id") or str(api.props.get("arn", "")).rsplit("/", 1)[-1]
        missing = [m for m in ("5xx", "Latency") if not has("AWS/ApiGateway", m, "ApiId", api_id)]
        if missing:
            report(f"API {api.name!r} has no alarm on {', '.join(missing)}", api.urn)
    for fn in of(resources, FUNCTION):
        if not has("AWS/Lambda", "Throttles", "FunctionName", fn.props.get("name")):
            report(f"function {fn.name!r} has no alarm on Throttles", fn.urn)
