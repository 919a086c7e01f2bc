"""The deploy role's policy is code: generated from the resource types the program declares.

The committed files in deploy/iam/<stack>/ must be what keyops.deploy.permissions renders, and
the table behind them must cover every resource type and data source the program can declare:
those seen in mocked runs of both stacks, and those a scan of the deploy sources finds (a type
declared only under some settings is covered too).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import warnings
from pathlib import Path

import pulumi
import pulumi_aws
import pytest

from keyops.deploy import permissions
from keyops.deploy.permissions import (
    BY_INVOKE,
    BY_TYPE,
    UNSCOPED,
    deploy_role_policy,
    load_stack_file,
    uncovered,
)
from support.infra import DeployRepo, run_program
from support.repo import PROJECT

DEPLOY_SOURCES = PROJECT / "src" / "keyops" / "deploy"
TOKEN = re.compile(r"['\"](aws:[A-Za-z0-9]+/[A-Za-z0-9]+:[A-Za-z0-9]+)['\"]")


def declared_in_sources() -> set[str]:
    """Type tokens of every ``aws.<module>.<Resource>(...)`` and ``aws...get_*(...)`` call."""
    tokens: set[str] = set()
    for path in sorted(DEPLOY_SOURCES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            chain, target = [], node.func
            while isinstance(target, ast.Attribute):
                chain.insert(0, target.attr)
                target = target.value
            if not isinstance(target, ast.Name) or target.id != "aws" or not chain:
                continue
            obj: object = pulumi_aws
            with warnings.catch_warnings():
                # Loading a pulumi_aws module warns about its deprecated resources.
                warnings.simplefilter("ignore", DeprecationWarning)
                for part in chain:
                    obj = getattr(obj, part)
            # Providers and argument classes are no AWS resources.
            if inspect.isclass(obj) and not (
                issubclass(obj, pulumi.CustomResource)
                and not issubclass(obj, pulumi.ProviderResource)
            ):
                continue
            found = TOKEN.findall(inspect.getsource(obj))  # type: ignore[arg-type]
            assert found, f"{path.name}: no type token for aws.{'.'.join(chain)}"
            tokens.add(found[0])
    return tokens


@pytest.fixture(scope="module")
def declared(deploy_repo: DeployRepo, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    types = declared_in_sources()
    for stack in ("dev", "prod"):
        run = run_program(deploy_repo, stack, tmp_path_factory.mktemp(stack) / "run.json")
        assert run.error is None, run.error
        types |= {r["type"] for r in run.resources if r["custom"]}
    return types


def test_the_policy_covers_every_type_the_program_declares(declared: set[str]) -> None:
    assert uncovered(declared) == []
    # Nor does the table keep types the program no longer declares.
    assert set(BY_TYPE) | {t for t in BY_INVOKE} <= declared | set(BY_INVOKE)
    assert set(BY_TYPE) <= declared


def test_a_new_resource_type_fails_the_coverage_check(declared: set[str]) -> None:
    assert uncovered(declared | {"aws:s3/bucketV2:BucketV2", "pulumi:providers:aws"}) == [
        "aws:s3/bucketV2:BucketV2"
    ]
    assert "aws:index/getCallerIdentity:getCallerIdentity" in declared_in_sources()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_files_are_what_the_settings_render(stack: str) -> None:
    config = load_stack_file(PROJECT / "stacks" / f"Pulumi.{stack}.yaml")
    for name, document in permissions.documents(config).items():
        committed = PROJECT / "deploy" / "iam" / stack / name
        assert committed.read_bytes() == permissions.dump(document), (
            f"{committed} is stale: run `python -m keyops.deploy.permissions`"
        )
    assert permissions.main(["--check", "--root", str(PROJECT)]) == 0


def test_the_check_mode_names_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stacks").mkdir()
    source = (PROJECT / "stacks" / "Pulumi.dev.yaml").read_text()
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(source)
    assert permissions.main(["--check", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"deploy/iam/dev/{name}.json: differ from the stack settings"
        for name in (
            "deploy-role.policy",
            "deploy-role.trust",
            "adoption-reader.policy",
            "adoption-reader.trust",
        )
    ]
    assert permissions.main(["--root", str(tmp_path)]) == 0
    assert permissions.main(["--check", "--root", str(tmp_path)]) == 0


def statements(stack: str) -> dict[str, dict[str, object]]:
    policy = json.loads(
        (PROJECT / "deploy" / "iam" / stack / "deploy-role.policy.json").read_text()
    )
    return {s["Sid"]: s for s in policy["Statement"]}


def test_what_the_documented_role_used_to_miss_is_granted() -> None:
    s = statements("prod")
    # SNS topics and their subscriptions, scoped to the stack's topic.
    assert "sns:CreateTopic" in s["AlarmTopics"]["Action"]  # type: ignore[operator]
    assert s["AlarmSubscriptions"]["Resource"] == [
        "arn:aws:sns:*:ACCOUNT_ID:keyops-prod-alarms",
        "arn:aws:sns:*:ACCOUNT_ID:keyops-prod-alarms:*",
    ]
    # Route 53 health checks.
    assert s["CreateHealthChecks"]["Action"] == ["route53:CreateHealthCheck"]
    assert "route53:DeleteHealthCheck" in s["HealthChecks"]["Action"]  # type: ignore[operator]
    # API Gateway's service-linked role, and nothing but that role.
    assert s["ApiGatewayServiceLinkedRole"] == {
        "Sid": "ApiGatewayServiceLinkedRole",
        "Effect": "Allow",
        "Action": ["iam:CreateServiceLinkedRole"],
        "Resource": [
            "arn:aws:iam::ACCOUNT_ID:role/aws-service-role/ops.apigateway.amazonaws.com/"
            "AWSServiceRoleForAPIGateway"
        ],
        "Condition": {"StringEquals": {"iam:AWSServiceName": "ops.apigateway.amazonaws.com"}},
    }
    # The log-delivery actions HTTP API access logging needs.
    assert set(s["AccessLogDelivery"]["Action"]) >= {  # type: ignore[arg-type]
        "logs:CreateLogDelivery",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery",
        "logs:ListLogDeliveries",
    }
    # Records only under the stack's own domain, in its own zone.
    assert s["Route53Records"]["Resource"] == ["arn:aws:route53:::hostedzone/Z0PROD0000000000000EX"]
    assert s["Route53Records"]["Condition"] == {
        "ForAllValues:StringLike": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                "keys.example.com",
                "*.keys.example.com",
            ]
        }
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_wildcard_grants_beyond_what_aws_cannot_scope(stack: str) -> None:
    for sid, statement in statements(stack).items():
        actions = statement["Action"]
        assert isinstance(actions, list)
        for action in actions:
            assert "*" not in action.split(":", 1)[1], (sid, action)
        resources = statement["Resource"]
        assert isinstance(resources, list)
        if "*" in resources:
            assert resources == ["*"] and set(actions) <= UNSCOPED, sid
        # Everything named is this stack's (or an account-wide type with the stack's tag).
        named = [r for r in resources if "keyops" in r]
        mine = re.compile(rf"keyops(-deploy)?[-/]{stack}([-/:]|$)")
        assert all(mine.search(r) for r in named), (sid, named)
    dev = deploy_role_policy(load_stack_file(PROJECT / "stacks" / "Pulumi.dev.yaml"), "1")
    assert "keyops-prod" not in json.dumps(dev)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_deploy_role_trusts_only_its_github_environment(stack: str) -> None:
    trust = json.loads((PROJECT / "deploy" / "iam" / stack / "deploy-role.trust.json").read_text())
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {
        "Federated": "arn:aws:iam::ACCOUNT_ID:oidc-provider/token.actions.githubusercontent.com"
    }
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:acme/keyops:environment:{stack}",
        }
    }


def test_the_adoption_reader_may_only_read_the_evidence() -> None:
    """Beside the deploy role's: what CI's evidence fetch may do (docs/github-setup.md)."""
    committed = PROJECT / "deploy" / "iam" / "prod"
    policy = json.loads((committed / "adoption-reader.policy.json").read_text())
    groups = [
        f"arn:aws:logs:{r}:ACCOUNT_ID:log-group:/aws/lambda/keyops-prod-endpoint{suffix}"
        for r in ("ap-southeast-1", "eu-west-1", "us-east-1")
        for suffix in ("", ":*")
    ]
    assert policy["Statement"] == [
        {
            "Sid": "ReadMetricsAndStopQueries",
            "Effect": "Allow",
            "Action": ["cloudwatch:GetMetricData", "logs:StopQuery"],
            "Resource": "*",
        },
        {
            "Sid": "QueryTheFunctionLogs",
            "Effect": "Allow",
            "Action": ["logs:GetQueryResults", "logs:StartQuery"],
            "Resource": groups,
        },
    ]
    trust = json.loads((committed / "adoption-reader.trust.json").read_text())
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": "repo:acme/keyops:pull_request",
    }
