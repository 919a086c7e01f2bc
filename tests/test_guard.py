"""The CrossGuard rules, run offline over what the mocked program declared.

Each policy's own ``validate`` is driven with real ``pulumi_policy`` argument objects
(keyops.deploy.guard.evaluate); the pack module itself is never imported, because constructing
a PolicyPack starts a server that never returns.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from keyops.deploy.guard import POLICIES, Recorded, Violation, evaluate
from keyops.deploy.iam import wildcards
from support.infra import (
    DeployRepo,
    altered,
    run_program,
)
from support.repo import PROJECT

ROLE_TRUST = json.dumps(
    {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ]
    }
)


def record(
    type_: str,
    name: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any] | None = None,
    region: str = "eu-west-1",
) -> Recorded:
    return Recorded(
        type_,
        name,
        f"urn:{type_}::{name}",
        inputs,
        outputs if outputs is not None else inputs,
        {"region": region},
    )


def names(violations: list[Violation]) -> set[str]:
    return {v.policy for v in violations}


@pytest.fixture(scope="module")
def prod(deploy_repo: DeployRepo, tmp_path_factory: pytest.TempPathFactory) -> list[Recorded]:
    """What the shipped prod stack declares, as the policies see it."""
    run = run_program(deploy_repo, "prod", tmp_path_factory.mktemp("prod") / "run.json")
    assert run.error is None, run.error
    return run.recorded()


def test_shipped_stacks_pass_every_policy(
    prod: list[Recorded], deploy_repo: DeployRepo, tmp_path: Path
) -> None:
    dev = run_program(deploy_repo, "dev", tmp_path / "run.json")
    assert dev.error is None, dev.error
    for recorded in (dev.recorded(), prod):
        assert len(recorded) > 40
        assert evaluate(recorded) == []


def refused(records: list[Recorded]) -> list[tuple[str, str]]:
    return [(v.policy, v.message) for v in evaluate(records)]


# -- each broken shape of an operable deployment is refused ---------------------------------


def test_topic_with_the_aws_managed_key_is_refused(prod: list[Recorded]) -> None:
    broken = altered(prod, "alarms-eu-west-1-topic", kmsMasterKeyId="alias/aws/sns")
    assert refused(broken) == [
        (
            "keyops-alarm-topic-cmk",
            "topic 'keyops-prod-alarms' is encrypted with the AWS-managed key alias/aws/sns: "
            "CloudWatch cannot publish to it (every notification fails with a KMS access-denied "
            "error). Use a customer-managed key whose policy grants cloudwatch.amazonaws.com "
            "kms:Decrypt and kms:GenerateDataKey*",
        )
    ]


def test_topic_key_that_cloudwatch_may_not_use_is_refused(prod: list[Recorded]) -> None:
    key = next(r for r in prod if r.name == "alarms-us-east-1-key")
    document = json.loads(key.outputs["policy"])
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] == "AccountAdministers"]
    broken = altered(prod, key.name, policy=json.dumps(document))
    assert refused(broken) == [
        (
            "keyops-alarm-topic-cmk",
            "topic 'keyops-prod-alarms': its KMS key 'alarms-us-east-1-key' does not grant "
            "cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*, so alarms cannot "
            "publish to it",
        )
    ]
    assert refused(altered(prod, "alarms-us-east-1-topic", kmsMasterKeyId=None)) == [
        (
            "keyops-alarm-topic-cmk",
            "topic 'keyops-prod-alarms' is not encrypted: use a customer-managed KMS key whose "
            "policy lets cloudwatch.amazonaws.com use it",
        )
    ]


def test_production_topic_without_a_subscription_is_refused(prod: list[Recorded]) -> None:
    subscription = next(r for r in prod if r.name.startswith("alarms-eu-west-1-email-"))
    broken = altered(prod, subscription.name, drop=True)
    assert refused(broken) == [
        (
            "keyops-alarms-reach-someone",
            "topic 'keyops-prod-alarms' of a production stack has no subscription, and alarms "
            "keyops-prod-eu-west-1-5xx, keyops-prod-eu-west-1-p99-latency, "
            "keyops-prod-eu-west-1-throttles notify nobody else: set keyops:alarmEmails (or "
            "keyops:alarmTopicArns)",
        )
    ]
    # An alarm that also notifies an existing topic (keyops:alarmTopicArns) reaches someone.
    external = "arn:aws:sns:eu-west-1:111111111111:oncall"
    for alarm in [r for r in broken if r.name.startswith("endpoint-eu-west-1-alarm-")]:
        broken = altered(
            broken, alarm.name, alarmActions=[*alarm.outputs["alarmActions"], external]
        )
    assert refused(broken) == []


def test_health_check_without_its_alarm_is_refused(prod: list[Recorded]) -> None:
    alarm = "frontdoor-ap-southeast-1-health-alarm"
    assert refused(altered(prod, alarm, drop=True)) == [
        (
            "keyops-health-check-alarmed",
            "health check 'ap-southeast-1.keys.example.com' has no HealthCheckStatus alarm: a "
            "region that is fully down publishes no other metric, so nothing would alarm",
        )
    ]
    elsewhere = altered(prod, alarm, provider={"region": "ap-southeast-1"})
    quiet = altered(prod, alarm, treatMissingData="notBreaching")
    assert refused(elsewhere) + refused(quiet) == [
        (
            "keyops-health-check-alarmed",
            "alarm 'keyops-prod-ap-southeast-1-health' on health check "
            "'ap-southeast-1.keys.example.com' is in ap-southeast-1: Route 53 publishes "
            "HealthCheckStatus only in us-east-1, so it never gets data",
        ),
        (
            "keyops-health-check-alarmed",
            "alarm 'keyops-prod-ap-southeast-1-health' on health check "
            "'ap-southeast-1.keys.example.com' treats missing data as 'notBreaching': a check "
            "that reports nothing must alarm (treatMissingData breaching)",
        ),
    ]


def test_unprotected_keyring_is_refused(prod: list[Recorded]) -> None:
    broken = altered(prod, "auth-keyring-secret-eu-west-1", protect=False)
    broken = altered(broken, "auth-keyring-key-ap-southeast-1", protect=False)
    assert refused(broken) == [
        (
            "keyops-keyring-protected",
            "secret 'auth-keyring-secret-eu-west-1' is not protected: a plan could delete or "
            "replace it (see the disaster-recovery runbook in docs/deploy.md); set protect=True",
        ),
        (
            "keyops-keyring-protected",
            "KMS key 'auth-keyring-key-ap-southeast-1' encrypts secret "
            "'auth-keyring-secret-eu-west-1' and is not protected: deleting it makes the secret "
            "unreadable; set protect=True",
        ),
    ]


def test_keyring_open_to_the_account_is_refused(prod: list[Recorded]) -> None:
    policy = next(r for r in prod if r.name == "auth-keyring-policy")
    document = json.loads(policy.outputs["policy"])
    closing = next(s for s in document["Statement"] if s["Sid"] == "NobodyElseReads")
    document["Statement"].remove(closing)
    assert refused(altered(prod, policy.name, policy=json.dumps(document))) == [
        (
            "keyops-keyring-closed",
            "secret 'auth-keyring-secret-eu-west-1' is readable by any principal of the account "
            "with secretsmanager:GetSecretValue and kms:Decrypt (administrators, the deploy "
            "role): its resource policy must deny GetSecretValue to Principal * except the "
            "readers and deployers (ArnNotEquals on aws:PrincipalArn)",
        )
    ]
    closing["Condition"] = {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}
    document["Statement"].append(closing)
    assert refused(altered(prod, policy.name, policy=json.dumps(document))) == [
        (
            "keyops-keyring-closed",
            "secret 'auth-keyring-secret-eu-west-1': its deny exempts the pattern "
            "'arn:aws:iam::*:role/*'; name each reader and deployer exactly",
        )
    ]


def test_validation_record_owned_by_each_region_is_refused(prod: list[Recorded]) -> None:
    """The old shape: every region writes the shared record itself, with allowOverwrite."""
    shared = next(r for r in prod if r.name == "cert-validation-global")
    copies = [
        dataclasses.replace(
            shared,
            name=f"endpoint-{region}-cert-validation-1",
            urn=f"{shared.urn}-{region}",
            inputs={**shared.inputs, "allowOverwrite": True},
            outputs={**shared.outputs, "allowOverwrite": True},
        )
        for region in ("eu-west-1", "us-east-1")
    ]
    name = shared.outputs["name"].rstrip(".")
    assert refused([*altered(prod, shared.name, drop=True), *copies]) == [
        (
            "keyops-records-owned-once",
            f"record 'endpoint-eu-west-1-cert-validation-1' ({name} CNAME) overwrites whatever "
            "already holds its name (allowOverwrite): declare a shared record once instead",
        ),
        (
            "keyops-records-owned-once",
            f"record 'endpoint-us-east-1-cert-validation-1' ({name} CNAME) overwrites whatever "
            "already holds its name (allowOverwrite): declare a shared record once instead",
        ),
        (
            "keyops-records-owned-once",
            f"record {name} CNAME is declared 2 times ('endpoint-eu-west-1-cert-validation-1', "
            "'endpoint-us-east-1-cert-validation-1'): removing any one deletes it for all; "
            "declare it once",
        ),
    ]


def test_broken_config_fails_with_the_expected_policies(
    deploy_repo: DeployRepo, tmp_path: Path
) -> None:
    run = run_program(deploy_repo, "prod", tmp_path / "run.json", "--broken")
    assert run.error is None, run.error
    violations = evaluate(run.recorded())
    assert names(violations) == {
        "keyops-prod-multi-region",
        "keyops-stage-throttled",
        "keyops-endpoint-iam-no-wildcards",
    }
    messages = sorted(v.message for v in violations)
    assert messages == [
        "endpoint role 'endpoint-eu-west-1-fn-role': role policy 'endpoint-eu-west-1-fn-role-logs'"
        " has a wildcard action 'secretsmanager:*'",
        "endpoint role 'endpoint-eu-west-1-fn-role': role policy 'endpoint-eu-west-1-fn-role-logs'"
        " has a wildcard resource '*'",
        "production stack 'prod' serves from 1 region(s) (eu-west-1); it needs at least 2",
        "stage 'endpoint-eu-west-1-stage' has no throttling: set defaultRouteSettings "
        "throttlingRateLimit and throttlingBurstLimit (keyops:throttle)",
    ]
    assert {v.level for v in violations} == {"mandatory"}


def test_adoption_reader_granted_more_than_reading_is_refused(prod: list[Recorded]) -> None:
    policy = next(r for r in prod if r.name == "adoption-reader-read")
    document = json.loads(policy.outputs["policy"])
    scoped = next(s for s in document["Statement"] if "logs:StartQuery" in s["Action"])
    scoped["Action"].append("logs:FilterLogEvents")
    scoped["Resource"].append("arn:aws:logs:eu-west-1:123456789012:log-group:/aws/api/other")
    document["Statement"].append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    broken = altered(prod, policy.name, policy=json.dumps(document))
    broken = altered(
        broken,
        "adoption-reader",
        managedPolicyArns=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    )
    label = "adoption-reader role 'adoption-reader'"
    other = "'arn:aws:logs:eu-west-1:123456789012:log-group:/aws/api/other'"
    assert refused(broken) == [
        (
            "keyops-adoption-reader-least-privilege",
            f"{label} has the managed policy arn:aws:iam::aws:policy/ReadOnlyAccess: use its "
            "inline policy only",
        ),
        (
            "keyops-adoption-reader-least-privilege",
            f"{label} grants 'logs:GetQueryResults' on {other}, which is not a function log "
            "group of this stack",
        ),
        (
            "keyops-adoption-reader-least-privilege",
            f"{label} grants 'logs:StartQuery' on {other}, which is not a function log group of "
            "this stack",
        ),
        ("keyops-adoption-reader-least-privilege", f"{label} grants 'logs:FilterLogEvents'"),
        ("keyops-adoption-reader-least-privilege", f"{label} grants 's3:GetObject'"),
    ]


def test_adoption_reader_assumable_by_more_than_one_subject_is_refused(
    prod: list[Recorded],
) -> None:
    role = next(r for r in prod if r.name == "adoption-reader")
    trust = json.loads(role.outputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]
    subject = condition["StringEquals"].pop("token.actions.githubusercontent.com:sub")
    condition["StringLike"] = {"token.actions.githubusercontent.com:sub": "repo:acme/*"}
    label = "adoption-reader role 'adoption-reader'"
    assert refused(altered(prod, role.name, assumeRolePolicy=json.dumps(trust))) == [
        (
            "keyops-adoption-reader-least-privilege",
            f"{label} trusts GitHub tokens without one exact subject (StringEquals sub)",
        )
    ]
    condition["StringEquals"]["token.actions.githubusercontent.com:sub"] = subject
    trust["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "sts:AssumeRole",
        }
    )
    assert refused(altered(prod, role.name, assumeRolePolicy=json.dumps(trust))) == [
        (
            "keyops-adoption-reader-least-privilege",
            f"{label} trusts {{'AWS': 'arn:aws:iam::123456789012:root'}}, not GitHub's OIDC "
            "provider alone",
        )
    ]


def test_public_s3_in_every_form_is_refused() -> None:
    violations = evaluate(
        [
            record("aws:s3/bucket:Bucket", "site", {"acl": "public-read"}),
            record(
                "aws:s3/bucketAcl:BucketAcl",
                "grants",
                {
                    "accessControlPolicy": {
                        "grants": [
                            {
                                "permission": "READ",
                                "grantee": {
                                    "uri": "http://acs.amazonaws.com/groups/global/AllUsers",
                                    "type": "Group",
                                },
                            }
                        ]
                    }
                },
            ),
            record(
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                "pab",
                {"blockPublicAcls": True, "blockPublicPolicy": False, "ignorePublicAcls": True},
            ),
            record(
                "aws:s3/bucketPolicy:BucketPolicy",
                "policy",
                {
                    "policy": json.dumps(
                        {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Principal": "*",
                                    "Action": "s3:GetObject",
                                    "Resource": "arn:aws:s3:::site/*",
                                }
                            ]
                        }
                    )
                },
            ),
            record(
                "aws:s3/bucketPolicy:BucketPolicy",
                "listed",
                {
                    "policy": json.dumps(
                        {
                            "Statement": {
                                "Effect": "Allow",
                                "Principal": {"AWS": ["*"]},
                                "Action": "s3:*",
                                "Resource": "arn:aws:s3:::site",
                            }
                        }
                    )
                },
            ),
            record(
                "aws:s3/bucketPolicy:BucketPolicy",
                "scoped",
                {
                    "policy": json.dumps(
                        {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Principal": "*",
                                    "Action": "s3:GetObject",
                                    "Resource": "arn:aws:s3:::site/*",
                                    "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}},
                                }
                            ]
                        }
                    )
                },
            ),
            record("aws:s3/bucket:Bucket", "private", {"acl": "private"}),
            record(
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                "closed",
                dict.fromkeys(
                    [
                        "blockPublicAcls",
                        "blockPublicPolicy",
                        "ignorePublicAcls",
                        "restrictPublicBuckets",
                    ],
                    True,
                ),
            ),
        ]
    )
    assert [(v.policy, v.message) for v in violations] == [
        ("keyops-no-public-s3", "S3 'site' has the public ACL 'public-read'"),
        (
            "keyops-no-public-s3",
            "S3 'grants' grants READ to http://acs.amazonaws.com/groups/global/AllUsers",
        ),
        (
            "keyops-no-public-s3",
            "public access block 'pab' leaves blockPublicPolicy, restrictPublicBuckets off",
        ),
        ("keyops-no-public-s3", "bucket policy 'policy' allows anyone (Principal *)"),
        ("keyops-no-public-s3", "bucket policy 'listed' allows anyone (Principal *)"),
    ]


def test_secret_without_rotating_cmk_is_refused() -> None:
    key = record(
        "aws:kms/key:Key",
        "k",
        {"enableKeyRotation": False},
        {"enableKeyRotation": False, "arn": "arn:aws:kms:eu-west-1:1:key/k"},
    )
    violations = evaluate(
        [
            key,
            record("aws:secretsmanager/secret:Secret", "default-key", {}),
            record(
                "aws:secretsmanager/secret:Secret",
                "no-rotation",
                {
                    "kmsKeyId": "arn:aws:kms:eu-west-1:1:key/k",
                    "replicas": [{"region": "us-east-1"}],
                },
            ),
        ]
    )
    assert [v.message for v in violations if v.policy == "keyops-secret-cmk-rotation"] == [
        "secret 'default-key': no kmsKeyId (the account's aws/secretsmanager key would be used)",
        "secret 'no-rotation': KMS key 'k' has rotation disabled",
        "secret 'no-rotation' replica in us-east-1: no kmsKeyId (the account's "
        "aws/secretsmanager key would be used)",
    ]


def test_logs_alarms_tls_metrics_and_managed_policies() -> None:
    fn = {"name": "f", "architectures": ["x86_64"], "loggingConfig": {"logGroup": "/aws/lambda/f"}}
    violations = evaluate(
        [
            record("aws:lambda/function:Function", "fn", fn),
            record("aws:cloudwatch/logGroup:LogGroup", "logs", {"name": "/aws/lambda/f"}),
            record(
                "aws:apigatewayv2/api:Api", "api", {}, {"arn": "arn:aws:apigateway:x::/apis/a1"}
            ),
            record(
                "aws:cloudwatch/metricAlarm:MetricAlarm",
                "5xx",
                {"namespace": "AWS/ApiGateway", "metricName": "5xx", "dimensions": {"ApiId": "a1"}},
            ),
            record(
                "aws:apigatewayv2/domainName:DomainName",
                "old-tls",
                {"domainNameConfiguration": {"securityPolicy": "TLS_1_0"}},
            ),
            record("aws:apigatewayv2/route:Route", "metrics", {"routeKey": "GET /metrics"}),
            record("aws:iam/role:Role", "role", {"assumeRolePolicy": ROLE_TRUST, "name": "r"}),
            record(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "basic",
                {
                    "role": "r",
                    "policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                },
            ),
        ]
    )
    by_policy = {(v.policy, v.level): v.message for v in violations}
    assert by_policy == {
        (
            "keyops-lambda-arm64",
            "advisory",
        ): "function 'fn' is not arm64 (Graviton is cheaper per request)",
        (
            "keyops-log-retention",
            "mandatory",
        ): "log group '/aws/lambda/f' keeps logs forever: set retentionInDays "
        "(keyops:logRetentionDays)",
        ("keyops-alarms-per-endpoint", "mandatory"): "function 'fn' has no alarm on Throttles",
        (
            "keyops-domain-tls12",
            "mandatory",
        ): "custom domain 'old-tls' allows TLS below 1.2 (securityPolicy 'TLS_1_0'); use TLS_1_2",
        (
            "keyops-metrics-not-public",
            "mandatory",
        ): "route 'GET /metrics' is public: adoption metrics need authorizationType AWS_IAM",
        (
            "keyops-endpoint-iam-no-wildcards",
            "mandatory",
        ): "endpoint role 'role' has the managed policy arn:aws:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole, which cannot be checked for wildcards; declare its "
        "statements here",
    }
    assert [v.message for v in violations if v.policy == "keyops-alarms-per-endpoint"] == [
        "API 'api' has no alarm on Latency",
        "function 'fn' has no alarm on Throttles",
    ]


@pytest.mark.parametrize(
    ("document", "found"),
    [
        (
            {
                "Statement": [
                    {
                        "Action": "logs:*",
                        "Resource": "arn:aws:logs:eu-west-1:123456789012:log-group:g",
                    }
                ]
            },
            ["action 'logs:*'"],
        ),
        ({"Statement": [{"Action": ["logs:PutLogEvents"], "Resource": "*"}]}, ["resource '*'"]),
        (
            {
                "Statement": [
                    {
                        "Action": "logs:PutLogEvents",
                        "Resource": "arn:aws:logs:eu-west-1:123456789012:log-group:*",
                    }
                ]
            },
            ["resource 'arn:aws:logs:eu-west-1:123456789012:log-group:*'"],
        ),
        (
            {"Statement": {"Action": "s3:Get?bject", "Resource": "arn:aws:s3:::b/k"}},
            ["action 's3:Get?bject'"],
        ),
        (
            {"Statement": [{"NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}]},
            ["NotAction/NotResource grants everything not listed"],
        ),
        # The one scoped exception: the streams of one named log group.
        (
            {
                "Statement": [
                    {
                        "Action": "logs:PutLogEvents",
                        "Resource": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/f:log-stream:*",  # noqa: E501
                    }
                ]
            },
            [],
        ),
    ],
)
def test_wildcard_detection(document: dict[str, Any], found: list[str]) -> None:
    assert wildcards(json.dumps(document)) == found


def test_pack_module_wraps_exactly_the_importable_policies() -> None:
    """Read, never import: constructing the PolicyPack would start its server."""
    main = PROJECT / "policies" / "infra" / "__main__.py"
    tree = ast.parse(main.read_text())
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "PolicyPack"
    ]
    assert len(calls) == 1
    keywords = {k.arg: k.value for k in calls[0].keywords}
    assert isinstance(keywords["policies"], ast.Name) and keywords["policies"].id == "POLICIES"
    assert (PROJECT / "policies" / "infra" / "PulumiPolicy.yaml").is_file()
    assert sorted(p.name for p in POLICIES) == sorted(
        [
            "keyops-prod-multi-region",
            "keyops-stage-throttled",
            "keyops-domain-tls12",
            "keyops-secret-cmk-rotation",
            "keyops-endpoint-iam-no-wildcards",
            "keyops-log-retention",
            "keyops-alarms-per-endpoint",
            "keyops-no-public-s3",
            "keyops-metrics-not-public",
            "keyops-lambda-arm64",
            "keyops-keyring-protected",
            "keyops-keyring-closed",
            "keyops-alarm-topic-cmk",
            "keyops-alarms-reach-someone",
            "keyops-health-check-alarmed",
            "keyops-records-owned-once",
            "keyops-adoption-reader-least-privilege",
        ]
    )
