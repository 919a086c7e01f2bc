"""The real infra/ program under Pulumi's mocks, once with the dev and once with the prod stack.

Each run is a fresh interpreter (tests/support/infra_harness.py) fed through PULUMI_CONFIG,
against a repository in tmp_path holding a dev stack and a prod stack encrypted by real sops.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from keyops.deploy.asset import HANDLER, MANIFEST
from keyops.deploy.iam import wildcards
from support.infra import (
    DeployRepo,
    Run,
    leaked,
    run_program,
)
from support.repo import PROJECT

FN = "aws:lambda/function:Function"
STAGE = "aws:apigatewayv2/stage:Stage"
DOMAIN = "aws:apigatewayv2/domainName:DomainName"
RECORD = "aws:route53/record:Record"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
REGIONS = {"dev": ["eu-west-1", "us-east-1"], "prod": ["eu-west-1", "us-east-1", "ap-southeast-1"]}
GLOBAL = "us-east-1"
#: What each region's RegionalEndpoint declares.
PER_REGION = {
    FN: 1,
    STAGE: 1,
    DOMAIN: 2,
    "aws:apigatewayv2/api:Api": 1,
    "aws:apigatewayv2/apiMapping:ApiMapping": 2,
    "aws:apigatewayv2/integration:Integration": 1,
    "aws:apigatewayv2/route:Route": 4,
    "aws:lambda/permission:Permission": 1,
    "aws:acm/certificate:Certificate": 1,
    "aws:acm/certificateValidation:CertificateValidation": 1,
    ALARM: 3,
    "aws:cloudwatch/logGroup:LogGroup": 2,
    "aws:iam/role:Role": 1,
    "aws:iam/rolePolicy:RolePolicy": 1,
    # the validation record of <region>.<domain> and the regional alias
    RECORD: 2,
    "aws:cloudwatch/dashboard:Dashboard": 1,
    "aws:cloudwatch/queryDefinition:QueryDefinition": 1,
}


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(
    request: pytest.FixtureRequest,
    deploy_repo: DeployRepo,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Run]:
    stack = request.param
    result = run_program(deploy_repo, stack, tmp_path_factory.mktemp(stack) / "run.json")
    assert result.error is None, result.error
    return stack, result


def effective_region(result: Run, resource: dict[str, Any]) -> str:
    """A per-resource region= wins over the provider's (pulumi-aws 7 accepts both)."""
    providers = {p["id"]: p["inputs"]["region"] for p in result.of("pulumi:providers:aws")}
    return str(resource["inputs"].get("region") or providers[resource["provider"]])


def test_each_region_is_declared_with_its_own_provider(run: tuple[str, Run]) -> None:
    stack, result = run
    providers = {p["name"]: p["inputs"]["region"] for p in result.of("pulumi:providers:aws")}
    # Named by region: a region keeps its provider (and its URNs) whatever the list's order.
    assert providers == {f"aws-{r}": r for r in REGIONS[stack]}
    for region in REGIONS[stack]:
        mine = result.children(f"endpoint-{region}")
        counts = {t: len([r for r in mine if r["type"] == t]) for t in PER_REGION}
        assert counts == PER_REGION, region
        assert {r["type"] for r in mine} == set(PER_REGION)
        assert {effective_region(result, r) for r in mine} == {region}
    # Nothing may fall back to the default provider (the CLI's ambient region).
    assert all(
        r["provider"]
        for r in result.resources
        if r["custom"] and not r["type"].startswith("pulumi:")
    )


def test_global_resources_live_on_the_us_east_1_provider(run: tuple[str, Run]) -> None:
    stack, result = run
    front = result.children("frontdoor")
    assert sorted(r["type"] for r in front) == sorted(
        ["aws:route53/healthCheck:HealthCheck", ALARM, RECORD] * len(REGIONS[stack])
    )
    shared = [r for r in result.of(RECORD) if r["name"] == "cert-validation-global"]
    reader = [r for r in result.resources if r["name"].startswith("adoption-reader")]
    assert sorted(r["type"] for r in reader) == [
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
    ]
    assert {effective_region(result, r) for r in [*front, *shared, *reader]} == {GLOBAL}


def test_one_shared_validation_record_for_the_global_name(run: tuple[str, Run]) -> None:
    stack, result = run
    domain = {"dev": "keys.dev.example.com", "prod": "keys.example.com"}[stack]
    records = result.of(RECORD)
    assert not any(r["inputs"].get("allowOverwrite") for r in records)
    validation = [r for r in records if r["inputs"]["type"] == "CNAME"]
    names = sorted(r["inputs"]["name"] for r in validation)
    # One per regional name, and exactly one for the name all regions share.
    assert names == sorted([f"_v.{domain}."] + [f"_v.{r}.{domain}." for r in REGIONS[stack]])
    shared = next(r for r in validation if r["inputs"]["name"] == f"_v.{domain}.")
    assert shared["name"] == "cert-validation-global"
    for cv in result.of("aws:acm/certificateValidation:CertificateValidation"):
        region = cv["region"]
        assert sorted(cv["inputs"]["validationRecordFqdns"]) == sorted(
            [f"_v.{domain}.", f"_v.{region}.{domain}."]
        )


def test_throttling_tls_and_routes(run: tuple[str, Run]) -> None:
    stack, result = run
    expected = {"dev": (50, 100), "prod": (2000, 4000)}[stack]
    for stage in result.of(STAGE):
        settings = stage["inputs"]["defaultRouteSettings"]
        assert (settings["throttlingRateLimit"], settings["throttlingBurstLimit"]) == expected
        assert "Authorization" not in stage["inputs"]["accessLogSettings"]["format"]
        assert "authorization" not in stage["inputs"]["accessLogSettings"]["format"].lower()
    assert {
        d["inputs"]["domainNameConfiguration"]["securityPolicy"] for d in result.of(DOMAIN)
    } == {"TLS_1_2"}
    domain = {"dev": "keys.dev.example.com", "prod": "keys.example.com"}[stack]
    assert sorted(d["inputs"]["domainName"] for d in result.of(DOMAIN)) == sorted(
        [domain] * len(REGIONS[stack]) + [f"{r}.{domain}" for r in REGIONS[stack]]
    )
    routes = {
        (r["region"], r["inputs"]["routeKey"]): r["inputs"]["authorizationType"]
        for r in result.of("aws:apigatewayv2/route:Route")
    }
    for region in REGIONS[stack]:
        assert routes[(region, "GET /v1/credentials")] == "NONE"
        assert routes[(region, "GET /healthz")] == "NONE"
        assert routes[(region, "GET /metrics")] == "AWS_IAM"
    for api in result.of("aws:apigatewayv2/api:Api"):
        assert api["inputs"]["disableExecuteApiEndpoint"] is True
    for cert in result.of("aws:acm/certificate:Certificate"):
        assert cert["inputs"]["validationMethod"] == "DNS"


def test_cors_preflights_reach_the_function_and_the_api_adds_no_cors(
    run: tuple[str, Run],
) -> None:
    stack, result = run
    routes = result.of("aws:apigatewayv2/route:Route")
    for region in REGIONS[stack]:
        preflight = [
            r
            for r in routes
            if r["region"] == region and r["inputs"]["routeKey"] == "OPTIONS /v1/credentials"
        ]
        assert len(preflight) == 1, region
        # No authorizer: a browser's preflight never carries the token.
        assert preflight[0]["inputs"]["authorizationType"] == "NONE"
        get = next(
            r
            for r in routes
            if r["region"] == region and r["inputs"]["routeKey"] == "GET /v1/credentials"
        )
        assert preflight[0]["inputs"]["target"] == get["inputs"]["target"]  # the same function
    # The handler owns CORS (from the bundle): API Gateway configures none that could drift.
    for api in result.of("aws:apigatewayv2/api:Api"):
        assert "corsConfiguration" not in api["inputs"], api["inputs"]["corsConfiguration"]


def test_front_door_latency_records_with_health_checks(run: tuple[str, Run]) -> None:
    stack, result = run
    checks = result.of("aws:route53/healthCheck:HealthCheck")
    interval = {"dev": 30, "prod": 10}[stack]
    assert sorted(c["inputs"]["fqdn"].split(".")[0] for c in checks) == sorted(REGIONS[stack])
    for check in checks:
        assert check["inputs"]["resourcePath"] == "/healthz"
        assert (check["inputs"]["type"], check["inputs"]["port"]) == ("HTTPS", 443)
        assert check["inputs"]["requestInterval"] == interval
    latency = [r for r in result.of("aws:route53/record:Record") if "latency" in r["name"]]
    assert sorted(r["inputs"]["setIdentifier"] for r in latency) == sorted(REGIONS[stack])
    check_ids = {c["id"]: c["inputs"]["fqdn"] for c in checks}
    domains = {
        d["state"]["domainNameConfiguration"]["targetDomainName"]: d for d in result.of(DOMAIN)
    }
    for record in latency:
        region = record["inputs"]["setIdentifier"]
        assert record["inputs"]["latencyRoutingPolicies"] == [{"region": region}]
        name = record["inputs"]["name"]
        assert check_ids[record["inputs"]["healthCheckId"]] == f"{region}.{name}"
        alias = record["inputs"]["aliases"][0]
        target = domains[alias["name"]]
        # The alias points at the global-name custom domain in the same region.
        assert (target["region"], target["inputs"]["domainName"]) == (region, name)
        assert alias["evaluateTargetHealth"] is True


def test_keyring_secret_replicated_with_rotating_cmk(run: tuple[str, Run]) -> None:
    stack, result = run
    primary, *others = REGIONS[stack]  # keyops:keyring.region is eu-west-1 in both stacks
    keyring = result.children("auth-keyring")
    key = next(r for r in keyring if r["type"] == "aws:kms/key:Key")
    assert key["region"] == primary
    assert (key["inputs"]["multiRegion"], key["inputs"]["enableKeyRotation"]) == (True, True)
    replicas = {r["region"]: r for r in result.of("aws:kms/replicaKey:ReplicaKey")}
    assert sorted(replicas) == sorted(others)
    assert {r["inputs"]["primaryKeyArn"] for r in replicas.values()} == {key["state"]["arn"]}
    secret = result.one("aws:secretsmanager/secret:Secret")
    assert secret["region"] == primary
    assert secret["inputs"]["kmsKeyId"] == key["state"]["arn"]
    assert sorted((x["region"], x["kmsKeyId"]) for x in secret["inputs"]["replicas"]) == sorted(
        (r, replicas[r]["state"]["arn"]) for r in others
    )
    # The keys and the secret can be neither deleted nor replaced by a plan; the value and
    # the policy are rewritten on every change anyway.
    assert {r["name"]: r["protect"] for r in keyring} == {
        "auth-keyring-key": True,
        **{f"auth-keyring-key-{r}": True for r in others},
        f"auth-keyring-secret-{primary}": True,
        "auth-keyring-value": False,
        "auth-keyring-policy": False,
    }
    # Dropping any of them from the stack (a moved keyring) never deletes it in AWS.
    assert all(r["retainOnDelete"] for r in keyring)
    version = result.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version["secretInputs"] == ["secretString"]
    # New function code ships only after the keyring value it may rely on.
    for fn in result.of(FN):
        assert version["urn"] in fn["dependencies"]


def test_only_readers_and_deployers_can_read_the_keyring(run: tuple[str, Run]) -> None:
    stack, result = run
    roles = {r["state"]["arn"] for r in result.of("aws:iam/role:Role") if "endpoint" in r["name"]}
    assert roles == {
        f"arn:aws:iam::123456789012:role/keyops-{stack}-endpoint-{r}" for r in REGIONS[stack]
    }
    policy = json.loads(
        result.one("aws:secretsmanager/secretPolicy:SecretPolicy")["inputs"]["policy"]
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    readers = {"dev": [], "prod": ["arn:aws:iam::111111111111:role/keyops-prod-auth-server"]}
    deployers = {"dev": [], "prod": ["arn:aws:iam::111111111111:role/keyops-deploy-prod"]}
    # The session that ran the (mocked) deployment is exempt as its role, not its session.
    running = "arn:aws:iam::123456789012:role/keyops-deployer"
    assert statements["NobodyElseReads"] == {
        "Sid": "NobodyElseReads",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": ["secretsmanager:GetSecretValue"],
        "Resource": "*",
        "Condition": {
            "ArnNotEquals": {
                "aws:PrincipalArn": sorted([*readers[stack], *deployers[stack], running])
            }
        },
    }
    if readers[stack]:
        assert statements["ServerRolesRead"]["Principal"]["AWS"] == readers[stack]
    else:
        assert "ServerRolesRead" not in statements
    deny = statements["EndpointFunctionsNeverRead"]
    assert set(deny["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == roles
    assert deny["Action"] == ["secretsmanager:GetSecretValue"]
    key = next(r for r in result.children("auth-keyring") if r["type"] == "aws:kms/key:Key")
    key_policy = json.loads(key["inputs"]["policy"])
    assert [
        s["Action"]
        for s in key_policy["Statement"]
        if s["Effect"] == "Deny" and set(s["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == roles
    ] == [["kms:Decrypt"]]


def test_alarm_topics_are_cmk_encrypted_and_subscribed(run: tuple[str, Run]) -> None:
    stack, result = run
    emails = {"dev": [], "prod": ["keyops-oncall@example.com"]}[stack]
    topics = {t["region"]: t for t in result.of(TOPIC)}
    # Every serving region, and us-east-1 where the health-check alarms live.
    assert sorted(topics) == sorted(set(REGIONS[stack]) | {GLOBAL})
    for region, topic in topics.items():
        parts = result.children(f"alarms-{region}")
        key = next(r for r in parts if r["type"] == "aws:kms/key:Key")
        assert topic["inputs"]["kmsMasterKeyId"] == key["state"]["arn"]
        assert key["region"] == region and key["inputs"]["enableKeyRotation"] is True
        grant = next(
            s
            for s in json.loads(key["inputs"]["policy"])["Statement"]
            if s["Sid"] == "CloudWatchAlarmsPublish"
        )
        assert grant == {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
        subscriptions = [
            r["inputs"] for r in parts if r["type"] == "aws:sns/topicSubscription:TopicSubscription"
        ]
        assert sorted(x["endpoint"] for x in subscriptions) == emails
        assert {(x["protocol"], x["topic"]) for x in subscriptions} <= {
            ("email", topic["state"]["arn"])
        }
    # Every alarm notifies its own region's topic (CloudWatch publishes only in-region).
    for alarm in result.of(ALARM):
        arn = topics[alarm["region"]]["state"]["arn"]
        assert alarm["inputs"]["alarmActions"] == [arn] == alarm["inputs"]["okActions"]


def test_a_health_check_alarm_per_region_treats_silence_as_failure(run: tuple[str, Run]) -> None:
    stack, result = run
    checks = {c["id"]: c for c in result.of("aws:route53/healthCheck:HealthCheck")}
    alarms = [a for a in result.of(ALARM) if a["inputs"]["namespace"] == "AWS/Route53"]
    domain = {"dev": "keys.dev.example.com", "prod": "keys.example.com"}[stack]
    # One alarm per health check, i.e. per region.
    assert sorted(
        checks[a["inputs"]["dimensions"]["HealthCheckId"]]["inputs"]["fqdn"] for a in alarms
    ) == sorted(f"{r}.{domain}" for r in REGIONS[stack])
    for alarm in alarms:
        inputs = alarm["inputs"]
        assert alarm["region"] == GLOBAL  # Route 53 publishes HealthCheckStatus there only
        assert (inputs["metricName"], inputs["statistic"], inputs["threshold"]) == (
            "HealthCheckStatus",
            "Minimum",
            1,
        )
        assert inputs["comparisonOperator"] == "LessThanThreshold"
        assert inputs["treatMissingData"] == "breaching"
    # The endpoint's own alarms stay quiet without traffic (documented per alarm).
    others = [a for a in result.of(ALARM) if a["inputs"]["namespace"] != "AWS/Route53"]
    assert {a["inputs"]["treatMissingData"] for a in others} == {"notBreaching"}


def test_function_roles_only_write_their_own_logs(run: tuple[str, Run]) -> None:
    _stack, result = run
    groups = {
        g["region"]: g["state"]["arn"]
        for g in result.of("aws:cloudwatch/logGroup:LogGroup")
        if g["inputs"]["name"].startswith("/aws/lambda/")
    }
    roles = {r["name"]: r for r in result.of("aws:iam/role:Role") if "-fn-role" in r["name"]}
    for policy in [
        p for p in result.of("aws:iam/rolePolicy:RolePolicy") if "-fn-role" in p["name"]
    ]:
        document = json.loads(policy["inputs"]["policy"])
        actions = sorted(a for s in document["Statement"] for a in s["Action"])
        assert actions == ["logs:CreateLogStream", "logs:PutLogEvents"]
        resources = {r for s in document["Statement"] for r in s["Resource"]}
        group = groups[policy["region"]]
        assert resources == {group, f"{group}:log-stream:*"}
        assert wildcards(document) == []
    for role in roles.values():
        assert "managedPolicyArns" not in role["inputs"]
    for fn in result.of(FN):
        assert fn["inputs"]["architectures"] == ["arm64"]
        assert fn["inputs"]["handler"] == HANDLER
        assert fn["inputs"]["loggingConfig"]["logGroup"].startswith("/aws/lambda/")
        # Optional: prod reserves 200 per region, dev shares the unreserved pool.
        assert (
            fn["inputs"].get("reservedConcurrentExecutions") == {"dev": None, "prod": 200}[_stack]
        )


def test_no_secret_in_any_resource_or_the_code_asset(
    run: tuple[str, Run], deploy_repo: DeployRepo
) -> None:
    stack, result = run
    secrets = deploy_repo.secrets(stack)
    assert all(secrets.values())
    every = [s for values in secrets.values() for s in values]
    # Recorded inputs and states of every resource (secret inputs are recorded as digests).
    assert [s[:4] for s in every if s in result.raw] == []
    assets = {fn["inputs"]["code"]["$asset"] for fn in result.of(FN)}
    assert len(assets) == 1
    asset = Path(assets.pop())
    assert (asset / "bundle" / "bundle.jws").is_file()
    assert json.loads((asset / MANIFEST).read_text())["handler"] == HANDLER
    # app_auth keys must be in the bundle (the endpoint verifies tokens with them); Pusher
    # secrets, the master key and the private signing key must not be anywhere.
    assert leaked(asset, secrets["pusher"] + secrets["master"] + secrets["signing"]) == []
    assert leaked(asset / "bundle", secrets["app_auth"]) != []
    for fn in result.of(FN):
        env = json.dumps(fn["inputs"]["environment"])
        assert [s[:4] for s in every if s in env] == []


def test_outputs_and_their_secrecy(run: tuple[str, Run], deploy_repo: DeployRepo) -> None:
    stack, result = run
    out = result.outputs
    domain = {"dev": "keys.dev.example.com", "prod": "keys.example.com"}[stack]
    assert out["globalUrl"] == {"value": f"https://{domain}", "secret": False}
    assert out["regionalUrls"] == {
        "value": {r: f"https://{r}.{domain}" for r in REGIONS[stack]},
        "secret": False,
    }
    assert out["keyringSecretArn"]["secret"] is False
    reader = next(r for r in result.of("aws:iam/role:Role") if r["name"] == "adoption-reader")
    assert out["adoptionReaderRoleArn"] == {"value": reader["state"]["arn"], "secret": False}
    assert out["dashboards"] == {
        "value": {r: f"keyops-{stack}-{r}" for r in REGIONS[stack]},
        "secret": False,
    }
    assert out["alarmTopicArns"] == {
        "value": {t["region"]: t["state"]["arn"] for t in result.of(TOPIC)},
        "secret": False,
    }
    assert (
        out["keyringSecretArn"]["value"]
        == result.one("aws:secretsmanager/secret:Secret")["state"]["arn"]
    )
    # The fingerprint is derived from secrets: secret in state and in `pulumi stack output`.
    assert out["keyringFingerprint"]["secret"] is True
    jwks = out["jwks"]
    assert jwks["secret"] is False
    assert [k["kid"] for k in jwks["value"]["keys"]] == [f"{stack}-sign-2026-11"]
    assert all("d" not in k for k in jwks["value"]["keys"])
    assert out["bundleVersion"]["value"] >= 1


def test_invalid_settings_stop_the_program_before_any_resource(
    deploy_repo: DeployRepo, tmp_path: Path
) -> None:
    text = (PROJECT / "stacks" / "Pulumi.prod.yaml").read_text()
    broken = text.replace("    - us-east-1\n    - ap-southeast-1\n", "")
    assert broken != text
    broken += "  keyops:logRetention: 30\n"  # a typo of logRetentionDays
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text(broken)
    result = run_program(deploy_repo, "prod", tmp_path / "run.json", stack_file=stack_file)
    assert result.error == (
        "RunError: error: stacks/Pulumi.prod.yaml has 2 invalid setting(s): keyops:logRetention "
        "is not a known setting (check the spelling); keyops:regions must "
        "list at least 2 regions for a production stack, got 1 (a single region is a single point "
        "of failure). Fix them in stacks/Pulumi.prod.yaml (see docs/deploy.md, section Settings)."
    )
    assert result.resources == []


def test_a_policy_error_in_the_credentials_fails_the_deployment(
    deploy_repo: DeployRepo, tmp_path: Path
) -> None:
    copy = DeployRepo(tmp_path / "deploy_repo", deploy_repo.keyfile, deploy_repo.home)
    shutil.copytree(deploy_repo.root, copy.root, symlinks=True)
    shutil.rmtree(copy.root / "build", ignore_errors=True)
    ios = copy.root / "credentials" / "prod" / "ios.yaml"
    # A hand edit of cleartext metadata breaks the sops MAC: the bundle build must refuse.
    ios.write_text(ios.read_text().replace("platform: ios", "platform: android"))
    result = run_program(copy, "prod", tmp_path / "run.json")
    assert result.error is not None
    assert result.error.startswith(
        "RunError: error: refusing to build the bundle of stack 'prod': "
    )
    assert "credentials/prod/ios.yaml" in result.error
    assert result.resources == []
    assert not (copy.root / "build" / "lambda" / "prod" / "asset").exists()


def test_each_region_has_a_dashboard_and_the_distinct_installs_query(run: tuple[str, Run]) -> None:
    stack, result = run
    for region in REGIONS[stack]:
        mine = result.children(f"endpoint-{region}")
        logs = next(r for r in mine if r["name"].endswith("-fn-logs"))
        assert logs["inputs"]["name"] == f"/aws/lambda/keyops-{stack}-endpoint"
        assert logs["inputs"]["retentionInDays"] == {"dev": 14, "prod": 90}[stack]
        query = next(r for r in mine if r["type"].endswith("QueryDefinition"))["inputs"]
        assert query == {
            "name": f"keyops/{stack}/distinct-installs",
            "logGroupNames": [logs["inputs"]["name"]],
            "queryString": "filter ispresent(Served) and ispresent(install)\n"
            "| stats count_distinct(install) by Client, Held",
        }
        dashboard = next(r for r in mine if r["type"].endswith("Dashboard"))["inputs"]
        assert dashboard["dashboardName"] == f"keyops-{stack}-{region}"
        widgets = json.loads(dashboard["dashboardBody"])["widgets"]
        by_title = {w["properties"]["title"]: w["properties"] for w in widgets}
        assert {p["region"] for p in by_title.values()} == {region}
        api = next(r for r in mine if r["type"] == "aws:apigatewayv2/api:Api")["id"]
        fn = next(r for r in mine if r["type"] == FN)["state"]["name"]
        searches = {
            title: [m[0]["expression"] for m in p["metrics"] if isinstance(m[0], dict)]
            for title, p in by_title.items()
        }
        assert searches == {
            "Answers by client, credential and held (Served)": [
                f'SEARCH(\'Namespace="keyops" MetricName="Served" Stack="{stack}"\', \'Sum\', 300)'
            ],
            "Held ids the client does not have (HeldUnknown)": [
                f'SEARCH(\'Namespace="keyops" MetricName="HeldUnknown" Stack="{stack}"\', \'Sum\', 300)'  # noqa: E501
            ],
            "Errors by code": [
                f'SEARCH(\'Namespace="keyops" MetricName="Errors" Stack="{stack}"\', \'Sum\', 300)'
            ],
            "Latency (ms)": [],
        }
        latency = by_title["Latency (ms)"]["metrics"]
        assert [m[:4] for m in latency] == [
            ["AWS/ApiGateway", "Latency", "ApiId", api],
            ["AWS/ApiGateway", "Latency", "ApiId", api],
            ["AWS/Lambda", "Duration", "FunctionName", fn],
        ]
        assert [m[-1]["stat"] for m in latency] == ["p50", "p99", "p99"]


def test_the_adoption_reader_is_the_committed_role(run: tuple[str, Run]) -> None:
    stack, result = run
    role = next(r for r in result.of("aws:iam/role:Role") if r["name"] == "adoption-reader")
    policy = next(
        r for r in result.of("aws:iam/rolePolicy:RolePolicy") if r["name"] == "adoption-reader-read"
    )
    assert role["inputs"]["name"] == f"keyops-{stack}-adoption-reader"
    assert policy["inputs"]["role"] == role["id"]
    committed = PROJECT / "deploy" / "iam" / stack
    for name, declared in (
        ("adoption-reader.trust.json", role["inputs"]["assumeRolePolicy"]),
        ("adoption-reader.policy.json", policy["inputs"]["policy"]),
    ):
        expected = (committed / name).read_text().replace("ACCOUNT_ID", "123456789012")
        assert json.loads(declared) == json.loads(expected), name
    statements = json.loads(policy["inputs"]["policy"])["Statement"]
    assert {a for s in statements for a in s["Action"]} == {
        "cloudwatch:GetMetricData",
        "logs:StartQuery",
        "logs:GetQueryResults",
        "logs:StopQuery",
    }
    groups = {
        g["state"]["arn"]
        for g in result.of("aws:cloudwatch/logGroup:LogGroup")
        if g["inputs"]["name"].startswith("/aws/lambda/")
    }
    scoped = next(s for s in statements if "logs:StartQuery" in s["Action"])
    assert set(scoped["Resource"]) == groups | {f"{g}:*" for g in groups}
