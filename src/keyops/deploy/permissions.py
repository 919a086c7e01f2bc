"""The IAM policies of the roles around a stack, as data: generated, committed, tested.

:data:`BY_TYPE` says what the deploy role needs for each resource type the program declares
(and :data:`BY_INVOKE` for each data source it calls). The deploy role's policy is rendered from
it for one stack's settings, so every ARN is scoped to that stack's names, hosted zone and
domain; ``Resource: "*"`` appears only for actions AWS does not scope to a resource (listed in
:data:`UNSCOPED`). The rendered files live in ``deploy/iam/<stack>/`` with the OIDC trust policies
beside them, and a test fails when the program declares a type this table does not cover or
when a committed file differs from what this module renders.

Regenerate after a change: ``python -m keyops.deploy.permissions`` (``--check`` only compares).
The account id is the placeholder ``ACCOUNT_ID`` in the committed files (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyops.core.atomic import make_dirs, write_atomic
from keyops.deploy.config import DeployConfig
from keyops.deploy.config import load_stack_file as load_settings

#: Stands for the AWS account id in the committed files.
ACCOUNT_PLACEHOLDER = "ACCOUNT_ID"
IAM_DIR = Path("deploy") / "iam"
STACKS_DIR = Path("stacks")
GITHUB_OIDC = "token.actions.githubusercontent.com"
APIGATEWAY_SLR = "ops.apigateway.amazonaws.com"

#: Actions AWS authorizes only on ``Resource: "*"`` (no resource-level permissions), or that
#: create a resource before it has an ARN. Anything else must name its resources.
UNSCOPED = frozenset(
    {
        "acm:RequestCertificate",
        "cloudwatch:DescribeAlarms",
        "kms:CreateKey",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:DeleteQueryDefinition",
        "logs:DescribeLogGroups",
        "logs:DescribeQueryDefinitions",
        "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutQueryDefinition",
        "logs:PutResourcePolicy",
        "logs:UpdateLogDelivery",
        "route53:CreateHealthCheck",
    }
)


@dataclass(frozen=True)
class Grant:
    """One statement's worth of permission; ``resources`` are templates (see :func:`render`)."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Any] = field(default_factory=dict)


def _g(
    sid: str, actions: str, resources: Sequence[str], condition: Mapping[str, Any] | None = None
) -> Grant:
    return Grant(sid, tuple(actions.split()), tuple(resources), condition or {})


STACK_TAG = {"StringEquals": {"aws:ResourceTag/keyops:stack": "{stack}"}}
FUNCTION = "arn:aws:lambda:*:{account}:function:keyops-{stack}-endpoint"
ROLES = "arn:aws:iam::{account}:role/keyops-{stack}-*"
LOG_GROUPS = (
    "arn:aws:logs:*:{account}:log-group:/aws/lambda/keyops-{stack}-endpoint",
    "arn:aws:logs:*:{account}:log-group:/aws/lambda/keyops-{stack}-endpoint:*",
    "arn:aws:logs:*:{account}:log-group:/aws/apigateway/keyops-{stack}",
    "arn:aws:logs:*:{account}:log-group:/aws/apigateway/keyops-{stack}:*",
)
APIS = (
    "arn:aws:apigateway:*::/apis",
    "arn:aws:apigateway:*::/apis/*",
    "arn:aws:apigateway:*::/domainnames",
    "arn:aws:apigateway:*::/domainnames/*",
    "arn:aws:apigateway:*::/tags/*",
)
APIGATEWAY = _g(
    "ApiGateway",
    "apigateway:GET apigateway:POST apigateway:PUT apigateway:PATCH apigateway:DELETE",
    APIS,
)
ZONE = "arn:aws:route53:::hostedzone/{zone}"
RECORDS = _g(
    "Route53Records",
    "route53:ChangeResourceRecordSets route53:ListResourceRecordSets route53:GetHostedZone",
    [ZONE],
    # Only names under the stack's domain: the zone may hold other names.
    {
        "ForAllValues:StringLike": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["{domain}", "*.{domain}"]
        }
    },
)
KMS_KEYS = "arn:aws:kms:*:{account}:key/*"
KMS_MANAGE = _g(
    "KmsKeysOfThisStack",
    "kms:DescribeKey kms:GetKeyPolicy kms:PutKeyPolicy kms:GetKeyRotationStatus "
    "kms:EnableKeyRotation kms:ListResourceTags kms:TagResource kms:UntagResource "
    "kms:ScheduleKeyDeletion kms:UpdateKeyDescription kms:ReplicateKey",
    [KMS_KEYS],
    STACK_TAG,
)
KMS_CREATE = _g(
    "KmsCreateTaggedKeys",
    "kms:CreateKey",
    ["*"],
    {"StringEquals": {"aws:RequestTag/keyops:stack": "{stack}"}},
)
LOGS = _g(
    "LogGroups",
    "logs:CreateLogGroup logs:DeleteLogGroup logs:PutRetentionPolicy logs:DeleteRetentionPolicy "
    "logs:TagResource logs:UntagResource logs:ListTagsForResource logs:TagLogGroup "
    "logs:UntagLogGroup logs:ListTagsLogGroup",
    LOG_GROUPS,
)
DESCRIBE = _g("Describe", "logs:DescribeLogGroups cloudwatch:DescribeAlarms", ["*"])
ALARMS = _g(
    "Alarms",
    "cloudwatch:PutMetricAlarm cloudwatch:DeleteAlarms cloudwatch:TagResource "
    "cloudwatch:UntagResource cloudwatch:ListTagsForResource",
    ["arn:aws:cloudwatch:*:{account}:alarm:keyops-{stack}-*"],
)
TOPIC = "arn:aws:sns:*:{account}:keyops-{stack}-alarms"

#: What the deploy role needs for each resource type the program declares.
BY_TYPE: dict[str, tuple[Grant, ...]] = {
    "aws:lambda/function:Function": (
        _g(
            "Function",
            "lambda:CreateFunction lambda:GetFunction lambda:GetFunctionConfiguration "
            "lambda:UpdateFunctionCode lambda:UpdateFunctionConfiguration lambda:DeleteFunction "
            "lambda:ListVersionsByFunction lambda:GetFunctionCodeSigningConfig "
            "lambda:PutFunctionConcurrency lambda:DeleteFunctionConcurrency "
            "lambda:GetRuntimeManagementConfig lambda:GetFunctionRecursionConfig "
            "lambda:TagResource lambda:UntagResource lambda:ListTags",
            [FUNCTION],
        ),
        _g(
            "PassEndpointRoleToLambda",
            "iam:PassRole",
            ["arn:aws:iam::{account}:role/keyops-{stack}-endpoint-*"],
            {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
        ),
    ),
    "aws:lambda/permission:Permission": (
        _g(
            "FunctionPermission",
            "lambda:AddPermission lambda:RemovePermission lambda:GetPolicy",
            [FUNCTION],
        ),
    ),
    "aws:cloudwatch/logGroup:LogGroup": (LOGS, DESCRIBE),
    "aws:iam/role:Role": (
        _g(
            "Roles",
            "iam:CreateRole iam:GetRole iam:UpdateRole iam:DeleteRole iam:UpdateAssumeRolePolicy "
            "iam:TagRole iam:UntagRole iam:ListRolePolicies iam:ListAttachedRolePolicies "
            "iam:ListInstanceProfilesForRole",
            [ROLES],
        ),
    ),
    "aws:iam/rolePolicy:RolePolicy": (
        _g("RolePolicies", "iam:PutRolePolicy iam:GetRolePolicy iam:DeleteRolePolicy", [ROLES]),
    ),
    "aws:apigatewayv2/api:Api": (APIGATEWAY,),
    "aws:apigatewayv2/integration:Integration": (APIGATEWAY,),
    "aws:apigatewayv2/route:Route": (APIGATEWAY,),
    "aws:apigatewayv2/apiMapping:ApiMapping": (APIGATEWAY,),
    "aws:apigatewayv2/stage:Stage": (
        APIGATEWAY,
        # HTTP API access logging goes through CloudWatch Logs' log delivery.
        _g(
            "AccessLogDelivery",
            "logs:CreateLogDelivery logs:GetLogDelivery logs:UpdateLogDelivery "
            "logs:DeleteLogDelivery logs:ListLogDeliveries logs:PutResourcePolicy "
            "logs:DescribeResourcePolicies",
            ["*"],
        ),
        DESCRIBE,
    ),
    "aws:apigatewayv2/domainName:DomainName": (
        APIGATEWAY,
        # The first custom domain of an account creates API Gateway's service-linked role.
        _g(
            "ApiGatewayServiceLinkedRole",
            "iam:CreateServiceLinkedRole",
            [
                "arn:aws:iam::{account}:role/aws-service-role/"
                f"{APIGATEWAY_SLR}/AWSServiceRoleForAPIGateway"
            ],
            {"StringEquals": {"iam:AWSServiceName": APIGATEWAY_SLR}},
        ),
    ),
    "aws:acm/certificate:Certificate": (
        _g(
            "RequestCertificates",
            "acm:RequestCertificate",
            ["*"],
            {"ForAllValues:StringLike": {"acm:DomainNames": ["{domain}", "*.{domain}"]}},
        ),
        _g(
            "Certificates",
            "acm:DescribeCertificate acm:DeleteCertificate acm:AddTagsToCertificate "
            "acm:RemoveTagsFromCertificate acm:ListTagsForCertificate",
            ["arn:aws:acm:*:{account}:certificate/*"],
        ),
    ),
    "aws:acm/certificateValidation:CertificateValidation": (
        _g("Certificates", "acm:DescribeCertificate", ["arn:aws:acm:*:{account}:certificate/*"]),
    ),
    "aws:route53/record:Record": (
        RECORDS,
        _g("Route53Changes", "route53:GetChange", ["arn:aws:route53:::change/*"]),
    ),
    "aws:route53/healthCheck:HealthCheck": (
        _g("CreateHealthChecks", "route53:CreateHealthCheck", ["*"]),
        _g(
            "HealthChecks",
            "route53:GetHealthCheck route53:UpdateHealthCheck route53:DeleteHealthCheck "
            "route53:ChangeTagsForResource route53:ListTagsForResource",
            ["arn:aws:route53:::healthcheck/*"],
        ),
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (ALARMS, DESCRIBE),
    "aws:sns/topic:Topic": (
        _g(
            "AlarmTopics",
            "sns:CreateTopic sns:GetTopicAttributes sns:SetTopicAttributes sns:DeleteTopic "
            "sns:TagResource sns:UntagResource sns:ListTagsForResource",
            [TOPIC],
        ),
    ),
    "aws:sns/topicSubscription:TopicSubscription": (
        _g(
            "AlarmSubscriptions",
            "sns:Subscribe sns:Unsubscribe sns:ListSubscriptionsByTopic "
            "sns:GetSubscriptionAttributes sns:SetSubscriptionAttributes",
            [TOPIC, f"{TOPIC}:*"],
        ),
    ),
    "aws:kms/key:Key": (KMS_CREATE, KMS_MANAGE),
    # Replicating a key creates it in the replica's region.
    "aws:kms/replicaKey:ReplicaKey": (KMS_CREATE, KMS_MANAGE),
    "aws:secretsmanager/secret:Secret": (
        _g(
            "KeyringSecret",
            "secretsmanager:CreateSecret secretsmanager:DescribeSecret secretsmanager:UpdateSecret "
            "secretsmanager:DeleteSecret secretsmanager:TagResource secretsmanager:UntagResource "
            "secretsmanager:ReplicateSecretToRegions secretsmanager:RemoveRegionsFromReplication "
            "secretsmanager:GetResourcePolicy",
            ["arn:aws:secretsmanager:*:{account}:secret:keyops/{stack}/auth-keyring-*"],
        ),
    ),
    "aws:secretsmanager/secretVersion:SecretVersion": (
        _g(
            "KeyringValue",
            "secretsmanager:PutSecretValue secretsmanager:GetSecretValue "
            "secretsmanager:ListSecretVersionIds secretsmanager:UpdateSecretVersionStage "
            "secretsmanager:DescribeSecret",
            ["arn:aws:secretsmanager:*:{account}:secret:keyops/{stack}/auth-keyring-*"],
        ),
        # Writing the value encrypts it with the stack's key, through Secrets Manager only.
        _g(
            "KeyringKeyViaSecretsManager",
            "kms:Encrypt kms:Decrypt kms:GenerateDataKey",
            [KMS_KEYS],
            {
                **STACK_TAG,
                "StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"},
            },
        ),
    ),
    "aws:cloudwatch/dashboard:Dashboard": (
        _g(
            "Dashboards",
            "cloudwatch:PutDashboard cloudwatch:GetDashboard cloudwatch:DeleteDashboards",
            ["arn:aws:cloudwatch::{account}:dashboard/keyops-{stack}-*"],
        ),
    ),
    "aws:cloudwatch/queryDefinition:QueryDefinition": (
        _g(
            "SavedQueries",
            "logs:PutQueryDefinition logs:DescribeQueryDefinitions logs:DeleteQueryDefinition",
            ["*"],
        ),
    ),
    "aws:secretsmanager/secretPolicy:SecretPolicy": (
        _g(
            "KeyringPolicy",
            "secretsmanager:PutResourcePolicy secretsmanager:GetResourcePolicy "
            "secretsmanager:DeleteResourcePolicy",
            ["arn:aws:secretsmanager:*:{account}:secret:keyops/{stack}/auth-keyring-*"],
        ),
    ),
}

#: What the deploy role needs for each data source (invoke) the program calls.
BY_INVOKE: dict[str, tuple[Grant, ...]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": (),  # sts:GetCallerIdentity needs none
    # The session's role, by name: the deploy role reading itself.
    "aws:iam/getSessionContext:getSessionContext": (
        _g("ReadOwnRole", "iam:GetRole", ["arn:aws:iam::{account}:role/keyops-deploy-{stack}"]),
    ),
}


def uncovered(types: Iterable[str]) -> list[str]:
    """The resource types and invoke tokens the table has no entry for."""
    known = set(BY_TYPE) | set(BY_INVOKE)
    return sorted(t for t in set(types) if not t.startswith("pulumi:") and t not in known)


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, list | tuple):
        return [_fill(v, values) for v in value]
    if isinstance(value, Mapping):
        return {k.format(**values): _fill(v, values) for k, v in value.items()}
    return value


def render(grants: Iterable[Grant], values: Mapping[str, str]) -> dict[str, Any]:
    """One IAM policy: grants with the same Sid merged, everything sorted, templates filled."""
    merged: dict[str, tuple[set[str], list[str], Mapping[str, Any]]] = {}
    for g in grants:
        actions, resources, condition = merged.setdefault(g.sid, (set(), [], g.condition))
        if condition != g.condition:
            raise ValueError(f"grant {g.sid} is declared with two different conditions")
        actions.update(g.actions)
        resources += [r for r in g.resources if r not in resources]
    statements = []
    for sid in sorted(merged):
        actions, resources, condition = merged[sid]
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": _fill(resources, values),
        }
        if condition:
            statement["Condition"] = _fill(condition, values)
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def values_for(config: DeployConfig, account: str = ACCOUNT_PLACEHOLDER) -> dict[str, str]:
    return {
        "account": account,
        "stack": config.stack,
        "zone": config.hosted_zone_id,
        "domain": config.domain,
    }


def deploy_role_policy(config: DeployConfig, account: str = ACCOUNT_PLACEHOLDER) -> dict[str, Any]:
    grants = [g for table in (BY_TYPE, BY_INVOKE) for gs in table.values() for g in gs]
    return render(grants, values_for(config, account))


def github_trust(account: str, subject: str) -> dict[str, Any]:
    """A trust policy for GitHub's OIDC tokens with exactly this ``sub`` (no wildcard)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{GITHUB_OIDC}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC}:aud": "sts.amazonaws.com",
                        f"{GITHUB_OIDC}:sub": subject,
                    }
                },
            }
        ],
    }


def deploy_role_trust(config: DeployConfig, account: str = ACCOUNT_PLACEHOLDER) -> dict[str, Any]:
    """Only jobs running in the GitHub environment named like the stack (docs/github-setup.md)."""
    repository = config.github_repository or "OWNER/REPO"
    return github_trust(account, f"repo:{repository}:environment:{config.stack}")


#: Everything the adoption-reader role may do, and on what (AWS's own scoping, see below).
ADOPTION_READER_ACTIONS = {
    # GetMetricData and StopQuery have no resource-level permissions: Resource must be "*".
    "cloudwatch:GetMetricData": "*",
    "logs:StopQuery": "*",
    # StartQuery and GetQueryResults are authorized on the queried log groups.
    "logs:StartQuery": "log-groups",
    "logs:GetQueryResults": "log-groups",
}


def function_log_group_arns(config: DeployConfig, account: str) -> list[str]:
    """The function's log group in every region, as a log group ARN and with the ``:*`` suffix
    some Logs APIs authorize against."""
    return [
        f"arn:aws:logs:{region}:{account}:log-group:{config.function_log_group}{suffix}"
        for region in sorted(config.regions)
        for suffix in ("", ":*")
    ]


def adoption_reader_policy(
    config: DeployConfig, account: str = ACCOUNT_PLACEHOLDER
) -> dict[str, Any]:
    """Read the Served metrics and query the function's logs; nothing else, nowhere else."""
    scoped = sorted(a for a, on in ADOPTION_READER_ACTIONS.items() if on == "log-groups")
    anywhere = sorted(a for a, on in ADOPTION_READER_ACTIONS.items() if on == "*")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadMetricsAndStopQueries",
                "Effect": "Allow",
                "Action": anywhere,
                "Resource": "*",
            },
            {
                "Sid": "QueryTheFunctionLogs",
                "Effect": "Allow",
                "Action": scoped,
                "Resource": function_log_group_arns(config, account),
            },
        ],
    }


def adoption_reader_trust(
    config: DeployConfig, account: str = ACCOUNT_PLACEHOLDER
) -> dict[str, Any]:
    """Only workflows of the stack's repository triggered by its pull requests."""
    repository = config.github_repository or "OWNER/REPO"
    return github_trust(account, f"repo:{repository}:pull_request")


def documents(config: DeployConfig) -> dict[str, dict[str, Any]]:
    """The committed files of one stack, by file name."""
    found = {
        "deploy-role.policy.json": deploy_role_policy(config),
        "deploy-role.trust.json": deploy_role_trust(config),
    }
    if config.github_repository:
        found["adoption-reader.policy.json"] = adoption_reader_policy(config)
        found["adoption-reader.trust.json"] = adoption_reader_trust(config)
    return found


def load_stack_file(path: Path) -> DeployConfig:
    """The settings of ``<root>/stacks/Pulumi.<stack>.yaml``, parsed."""
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return load_settings(path.parent.parent, stack)


def dump(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keyops.deploy.permissions",
        description="Write (or --check) deploy/iam/<stack>/*.json from stacks/Pulumi.<stack>.yaml.",
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the project directory")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = parser.parse_args(argv)
    stale = []
    for stack_file in sorted((args.root / STACKS_DIR).glob("Pulumi.*.yaml")):
        config = load_stack_file(stack_file)
        for name, document in documents(config).items():
            target = args.root / IAM_DIR / config.stack / name
            data = dump(document)
            if target.is_file() and target.read_bytes() == data:
                continue
            stale.append(target.relative_to(args.root).as_posix())
            if not args.check:
                make_dirs(target.parent)
                write_atomic(target, data)
    verb = "differ from the stack settings" if args.check else "written"
    for path in stale:
        print(f"{path}: {verb}", file=sys.stderr if args.check else sys.stdout)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
