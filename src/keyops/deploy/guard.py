"""The CrossGuard rules of the infra policy pack, importable without starting a policy server.

``policies/infra/__main__.py`` wraps :data:`POLICIES` in a ``PolicyPack`` (constructing one
starts a gRPC server and never returns, so nothing else may). Tests, and anyone auditing a
plan offline, call :func:`evaluate` on recorded resources: it drives each policy's own
``validate`` with real ``pulumi_policy`` argument objects, exactly as the engine would.

Resource policies see a resource's inputs; stack policies see every resource's outputs
(``props``), which is how the engine hands them over. Property names are camelCase at every
depth. During a preview an unknown value makes the engine skip the rule for that resource.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
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

from keyops.deploy.iam import LAMBDA_SERVICE, wildcards

PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
FUNCTION = "aws:lambda/function:Function"
STAGE = "aws:apigatewayv2/stage:Stage"
DOMAIN = "aws:apigatewayv2/domainName:DomainName"
REST_DOMAIN = "aws:apigateway/domainName:DomainName"
API = "aws:apigatewayv2/api:Api"
ROUTE = "aws:apigatewayv2/route:Route"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 (a type token)
KMS_KEY = "aws:kms/key:Key"
KMS_REPLICA = "aws:kms/replicaKey:ReplicaKey"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
IAM_POLICY = "aws:iam/policy:Policy"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
BUCKET_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"


@dataclass(frozen=True)
class Seen:
    """One resource as a rule sees it (built from the engine's or the mocks' records)."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    region: str | None = None

    @property
    def tags(self) -> Mapping[str, Any]:
        tags = self.props.get("tags")
        return tags if isinstance(tags, Mapping) else {}


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    urn: str | None
    level: str


# -- helpers ----------------------------------------------------------------------------------


def _region(resource: PolicyResource) -> str | None:
    region = resource.props.get("region")
    if not region and resource.provider is not None:
        region = resource.provider.props.get("region")
    return str(region) if region else None


def _seen(resources: Iterable[PolicyResource]) -> list[Seen]:
    return [Seen(r.resource_type, r.name, r.urn, r.props, _region(r)) for r in resources]


def _of(resources: Sequence[Seen], *types: str) -> list[Seen]:
    return [r for r in resources if r.type in types]


def _ids(resource: Seen) -> set[str]:
    """Every value another resource may use to refer to this one."""
    return {str(resource.props[k]) for k in ("id", "arn", "name", "keyId") if resource.props.get(k)}


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


def _statements(document: Any) -> list[dict[str, Any]]:
    doc = _json(document)
    if not isinstance(doc, dict):
        return []
    raw = doc.get("Statement")
    items = raw if isinstance(raw, list) else [raw]
    return [s for s in items if isinstance(s, dict)]


def _is_endpoint_role(role: Seen) -> bool:
    for statement in _statements(role.props.get("assumeRolePolicy")):
        principal = statement.get("Principal")
        services = principal.get("Service") if isinstance(principal, dict) else None
        services = services if isinstance(services, list) else [services]
        if LAMBDA_SERVICE in services:
            return True
    return role.tags.get("keyops:role") == "endpoint"


# -- resource rules ---------------------------------------------------------------------------


def stage_throttled(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != STAGE:
        return
    settings = args.props.get("defaultRouteSettings") or {}
    rate = settings.get("throttlingRateLimit")
    burst = settings.get("throttlingBurstLimit")
    if not rate or not burst or rate <= 0 or burst <= 0:
        report(
            f"stage {args.name!r} has no throttling: set defaultRouteSettings "
            "throttlingRateLimit and throttlingBurstLimit (keyops:throttle)",
            None,
        )


def domain_tls12(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == DOMAIN:
        policy = (args.props.get("domainNameConfiguration") or {}).get("securityPolicy")
    elif args.resource_type == REST_DOMAIN:
        policy = args.props.get("securityPolicy")
    else:
        return
    if policy != "TLS_1_2":
        report(
            f"custom domain {args.name!r} allows TLS below 1.2 (securityPolicy "
            f"{policy!r}); use TLS_1_2",
            None,
        )


def lambda_arm64(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != FUNCTION:
        return
    if list(args.props.get("architectures") or ["x86_64"]) != ["arm64"]:
        report(f"function {args.name!r} is not arm64 (Graviton is cheaper per request)", None)


def metrics_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ROUTE:
        return
    if (
        str(args.props.get("routeKey", "")).endswith(" /metrics")
        and args.props.get("authorizationType", "NONE") == "NONE"
    ):
        report(
            f"route {args.props.get('routeKey')!r} is public: adoption metrics need "
            "authorizationType AWS_IAM",
            None,
        )


def no_public_s3(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props, kind = args.props, args.resource_type
    if kind in BUCKETS or kind in BUCKET_ACLS:
        if props.get("acl") in PUBLIC_ACLS:
            report(f"S3 {args.name!r} has the public ACL {props.get('acl')!r}", None)
        grants = (props.get("accessControlPolicy") or {}).get("grants") or []
        for grant in grants:
            uri = (grant.get("grantee") or {}).get("uri")
            if uri in PUBLIC_GRANTEES:
                report(f"S3 {args.name!r} grants {grant.get('permission')} to {uri}", None)
    elif kind == BUCKET_PAB:
        off = [f for f in PUBLIC_ACCESS_FLAGS if props.get(f) is not True]
        if off:
            report(f"public access block {args.name!r} leaves {', '.join(off)} off", None)
    elif kind == BUCKET_POLICY:
        for statement in _statements(props.get("policy")):
            principal = statement.get("Principal")
            aws_principal = principal.get("AWS") if isinstance(principal, dict) else principal
            public = aws_principal == "*" or (
                isinstance(aws_principal, list) and "*" in aws_principal
            )
            if statement.get("Effect") == "Allow" and public and not statement.get("Condition"):
                report(f"bucket policy {args.name!r} allows anyone (Principal *)", None)


# -- stack rules ------------------------------------------------------------------------------


def prod_multi_region(resources: Sequence[Seen], report: ReportViolation) -> None:
    stacks: dict[str, set[str]] = {}
    for fn in _of(resources, FUNCTION):
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


def _kms_rotating(ref: Any, keys: Sequence[Seen], replicas: Sequence[Seen]) -> str | None:
    """Why ``ref`` is not a rotating customer-managed key, or None when it is."""
    if not ref:
        return "no kmsKeyId (the account's aws/secretsmanager key would be used)"
    ref = str(ref)
    if "alias/aws/" in ref:
        return f"{ref} is an AWS-managed key"
    for key in keys:
        if ref in _ids(key):
            return (
                None
                if key.props.get("enableKeyRotation") is True
                else (f"KMS key {key.name!r} has rotation disabled")
            )
    for replica in replicas:
        if ref in _ids(replica):
            return _kms_rotating(replica.props.get("primaryKeyArn"), keys, ())
    return f"{ref} is not a KMS key of this stack, so its rotation cannot be checked"


def secrets_cmk_rotation(resources: Sequence[Seen], report: ReportViolation) -> None:
    keys, replicas = _of(resources, KMS_KEY), _of(resources, KMS_REPLICA)
    for secret in _of(resources, SECRET):
        problem = _kms_rotating(secret.props.get("kmsKeyId"), keys, replicas)
        if problem:
            report(f"secret {secret.name!r}: {problem}", secret.urn)
        for replica in secret.props.get("replicas") or []:
            problem = _kms_rotating(replica.get("kmsKeyId"), keys, replicas)
            if problem:
                report(
                    f"secret {secret.name!r} replica in {replica.get('region')}: {problem}",
                    secret.urn,
                )


def endpoint_iam_no_wildcards(resources: Sequence[Seen], report: ReportViolation) -> None:
    policies = {ident: p for p in _of(resources, IAM_POLICY) for ident in _ids(p)}
    for role in filter(_is_endpoint_role, _of(resources, ROLE)):
        refs = _ids(role)
        documents: list[tuple[str, Any]] = [
            (f"inline policy {p.get('name')!r}", p.get("policy"))
            for p in role.props.get("inlinePolicies") or []
        ]
        documents += [
            (f"role policy {p.name!r}", p.props.get("policy"))
            for p in _of(resources, ROLE_POLICY)
            if str(p.props.get("role")) in refs
        ]
        arns = list(role.props.get("managedPolicyArns") or [])
        arns += [
            a.props.get("policyArn")
            for a in _of(resources, ROLE_ATTACHMENT)
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
    for group in _of(resources, LOG_GROUP):
        groups[str(group.props.get("name"))] = group
        days = group.props.get("retentionInDays")
        if not days or days <= 0:
            report(
                f"log group {group.props.get('name')!r} keeps logs forever: set "
                "retentionInDays (keyops:logRetentionDays)",
                group.urn,
            )
    for fn in _of(resources, FUNCTION):
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
    alarms = _of(resources, ALARM)

    def has(namespace: str, metric: str, dimension: str, value: Any) -> bool:
        return any(
            a.props.get("namespace") == namespace
            and a.props.get("metricName") == metric
            and str((a.props.get("dimensions") or {}).get(dimension)) == str(value)
            for a in alarms
        )

    for api in _of(resources, API):
        # Stack policies see outputs, where the API id is the last segment of its ARN.
        api_id = api.props.get("id") or str(api.props.get("arn", "")).rsplit("/", 1)[-1]
        missing = [m for m in ("5xx", "Latency") if not has("AWS/ApiGateway", m, "ApiId", api_id)]
        if missing:
            report(f"API {api.name!r} has no alarm on {', '.join(missing)}", api.urn)
    for fn in _of(resources, FUNCTION):
        if not has("AWS/Lambda", "Throttles", "FunctionName", fn.props.get("name")):
            report(f"function {fn.name!r} has no alarm on Throttles", fn.urn)


# -- the pack ---------------------------------------------------------------------------------


def _stack_policy(
    name: str, description: str, rule: Callable[[Sequence[Seen], ReportViolation], None]
) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name,
        description=description,
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=lambda args, report: rule(_seen(args.resources), report),
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


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
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
                    r.type, r.inputs, r.urn, r.name, _options(), _provider(r)
                )
                policy.validate(args, partial(_report_for, report, r.urn))
        else:
            stack = [
                PolicyResource(
                    r.type, r.outputs, r.urn, r.name, _options(), _provider(r), None, [], {}
                )
                for r in records
            ]
            policy.validate(StackValidationArgs(stack), report)
    return found
