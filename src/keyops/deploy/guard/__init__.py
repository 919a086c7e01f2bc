"""The CrossGuard rules of the infra policy pack, importable without starting a policy server.

``policies/infra/__main__.py`` wraps :data:`POLICIES` in a ``PolicyPack`` (constructing one
starts a gRPC server and never returns, so nothing else may). Tests, and anyone auditing a
plan offline, call :func:`evaluate` on recorded resources: it drives each policy's own
``validate`` with real ``pulumi_policy`` argument objects, exactly as the engine would.

The rules live by subject: ``resources`` (single resources, inputs), ``stack`` (regions, roles,
logs, endpoint alarms), ``secrets`` (the keyring), ``alarms`` (topics and health checks),
``dns`` (records), ``adoption`` (the adoption-reader role); ``model`` holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from keyops.deploy.guard.adoption import adoption_reader_least_privilege
from keyops.deploy.guard.alarms import (
    alarm_topics_encrypted,
    alarms_reach_someone,
    health_checks_alarmed,
)
from keyops.deploy.guard.dns import records_owned_once
from keyops.deploy.guard.model import Seen, Violation, seen_all
from keyops.deploy.guard.resources import (
    domain_tls12,
    lambda_arm64,
    metrics_not_public,
    no_public_s3,
    stage_throttled,
)
from keyops.deploy.guard.secrets import keyring_closed, keyring_protected, secrets_cmk_rotation
from keyops.deploy.guard.stack import (
    alarms_per_endpoint,
    endpoint_iam_no_wildcards,
    log_retention,
    prod_multi_region,
)

__all__ = ["POLICIES", "Recorded", "Seen", "Violation", "evaluate"]


def _stack_policy(
    name: str, description: str, rule: Callable[[Sequence[Seen], ReportViolation], None]
) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name,
        description=description,
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=lambda args, report: rule(seen_all(args.resources), report),
    )


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    _stack_policy(
        "keyops-prod-multi-region",
        "A production stack serves from at least two regions.",
        prod_multi_region,
    ),
    ResourceValidationPolicy(
        name="keyops-stage-throttled",
        description="Every API stage is throttled.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=stage_throttled,
    ),
    ResourceValidationPolicy(
        name="keyops-domain-tls12",
        description="Custom domains require TLS 1.2 or later.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=domain_tls12,
    ),
    _stack_policy(
        "keyops-secret-cmk-rotation",
        "Secrets use a customer-managed KMS key with rotation, in every replica.",
        secrets_cmk_rotation,
    ),
    _stack_policy(
        "keyops-endpoint-iam-no-wildcards",
        "Endpoint function roles have no wildcard actions or resources.",
        endpoint_iam_no_wildcards,
    ),
    _stack_policy(
        "keyops-log-retention",
        "Every log group, including each function's, has a retention period.",
        log_retention,
    ),
    _stack_policy(
        "keyops-alarms-per-endpoint",
        "Every regional endpoint has alarms on 5xx, p99 latency and throttles.",
        alarms_per_endpoint,
    ),
    _stack_policy(
        "keyops-keyring-protected",
        "Secrets and the KMS keys that encrypt them are protected from deletion and replacement.",
        keyring_protected,
    ),
    _stack_policy(
        "keyops-keyring-closed",
        "A secret's policy denies GetSecretValue to everyone but its readers and deployers.",
        keyring_closed,
    ),
    _stack_policy(
        "keyops-alarm-topic-cmk",
        "Alarm topics use a customer-managed KMS key that CloudWatch may use.",
        alarm_topics_encrypted,
    ),
    _stack_policy(
        "keyops-alarms-reach-someone",
        "In a production stack every alarm reaches a subscribed or an external topic.",
        alarms_reach_someone,
    ),
    _stack_policy(
        "keyops-health-check-alarmed",
        "Every health check has a HealthCheckStatus alarm in us-east-1 that treats silence "
        "as failure.",
        health_checks_alarmed,
    ),
    _stack_policy(
        "keyops-records-owned-once",
        "Each Route 53 record is declared once and never overwrites another.",
        records_owned_once,
    ),
    _stack_policy(
        "keyops-adoption-reader-least-privilege",
        "The adoption-reader role reads metrics and queries the function logs, nothing else, "
        "and only GitHub's OIDC tokens of one subject assume it.",
        adoption_reader_least_privilege,
    ),
    ResourceValidationPolicy(
        name="keyops-no-public-s3",
        description="No S3 bucket is public.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=no_public_s3,
    ),
    ResourceValidationPolicy(
        name="keyops-metrics-not-public",
        description="The /metrics route (adoption evidence) requires IAM authorization.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=metrics_not_public,
    ),
    ResourceValidationPolicy(
        name="keyops-lambda-arm64",
        description="Functions run on arm64 (advisory).",
        enforcement_level=EnforcementLevel.ADVISORY,
        validate=lambda_arm64,
    ),
]


# -- offline evaluation -----------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A resource as recorded by a plan or by Pulumi's mocks."""

    type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    provider: Mapping[str, Any] | None = None
    protect: bool = False


def _options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def _provider(record: Recorded) -> PolicyProviderResource | None:
    if record.provider is None:
        return None
    return PolicyProviderResource("pulumi:providers:aws", record.provider, "", "")


def _report_for(
    report: ReportViolation, default_urn: str, message: str, urn: str | None = None
) -> None:
    report(message, urn or default_urn)


def evaluate(records: Sequence[Recorded]) -> list[Violation]:
    """Run every policy's own ``validate`` over recorded resources; return what it reported."""
    found: list[Violation] = []
    for policy in POLICIES:
        level = (policy.enforcement_level or EnforcementLevel.MANDATORY).value

        def report(
            message: str, urn: str | None = None, _p: Any = policy, _level: str = level
        ) -> None:
            found.append(Violation(_p.name, message, urn, _level))

        if isinstance(policy, ResourceValidationPolicy):
            for r in records:
                args = ResourceValidationArgs(
                    r.type, r.inputs, r.urn, r.name, _options(r.protect), _provider(r)
                )
                policy.validate(args, partial(_report_for, report, r.urn))
        else:
            stack = [
                PolicyResource(
                    r.type,
                    r.outputs,
                    r.urn,
                    r.name,
                    _options(r.protect),
                    _provider(r),
                    None,
                    [],
                    {},
                )
                for r in records
            ]
            policy.validate(StackValidationArgs(stack), report)
    return found
