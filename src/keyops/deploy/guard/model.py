"""What every CrossGuard rule shares: resource type tokens, the ``Seen`` view, JSON helpers.

Resource policies see a resource's inputs; stack policies see every resource's outputs
(``props``), which is how the engine hands them over. Property names are camelCase at every
depth. During a preview an unknown value makes the engine skip the rule for that resource.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyResource

from keyops.deploy.iam import LAMBDA_SERVICE

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
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"  # noqa: S105 (a type token)


@dataclass(frozen=True)
class Seen:
    """One resource as a rule sees it (built from the engine's or the mocks' records)."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    region: str | None = None
    #: The resource's ``protect`` option (stack rules get it from the engine too).
    protect: bool = False

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


def region_of(resource: PolicyResource) -> str | None:
    region = resource.props.get("region")
    if not region and resource.provider is not None:
        region = resource.provider.props.get("region")
    return str(region) if region else None


def seen_all(resources: Iterable[PolicyResource]) -> list[Seen]:
    return [
        Seen(r.resource_type, r.name, r.urn, r.props, region_of(r), bool(r.opts.protect))
        for r in resources
    ]


def of(resources: Sequence[Seen], *types: str) -> list[Seen]:
    return [r for r in resources if r.type in types]


def ids(resource: Seen) -> set[str]:
    """Every value another resource may use to refer to this one."""
    return {str(resource.props[k]) for k in ("id", "arn", "name", "keyId") if resource.props.get(k)}


def parse_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


def statements(document: Any) -> list[dict[str, Any]]:
    doc = parse_json(document)
    if not isinstance(doc, dict):
        return []
    raw = doc.get("Statement")
    items = raw if isinstance(raw, list) else [raw]
    return [s for s in items if isinstance(s, dict)]


def is_endpoint_role(role: Seen) -> bool:
    for statement in statements(role.props.get("assumeRolePolicy")):
        principal = statement.get("Principal")
        services = principal.get("Service") if isinstance(principal, dict) else None
        services = services if isinstance(services, list) else [services]
        if LAMBDA_SERVICE in services:
            return True
    return role.tags.get("keyops:role") == "endpoint"
