"""Rules on single resources: they read inputs, so they run in every preview."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from keyops.deploy.guard.model import (
    BUCKET_ACLS,
    BUCKET_PAB,
    BUCKET_POLICY,
    BUCKETS,
    DOMAIN,
    FUNCTION,
    PUBLIC_ACCESS_FLAGS,
    PUBLIC_ACLS,
    PUBLIC_GRANTEES,
    REST_DOMAIN,
    ROUTE,
    STAGE,
    statements,
)


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
        for statement in statements(props.get("policy")):
            principal = statement.get("Principal")
            aws_principal = principal.get("AWS") if isinstance(principal, dict) else principal
            public = aws_principal == "*" or (
                isinstance(aws_principal, list) and "*" in aws_principal
            )
            if statement.get("Effect") == "Allow" and public and not statement.get("Condition"):
                report(f"bucket policy {args.name!r} allows anyone (Principal *)", None)
