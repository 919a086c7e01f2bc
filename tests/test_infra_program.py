"""The real infra/ program under Pulumi's mocks, once with the dev and once with the prod stack.

Each run is a fresh interpreter (tests/support/infra_harness.py) fed through PULUMI_CONFIG,
against a repository in tmp_path holding a dev stack and a prod stack encrypted by real sops.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
REGIONS = {"dev": ["eu-west-1", "us-east-1"], "prod": ["eu-west-1", "us-east-1", "ap-southeast-1"]}
PER_REGION = {
    FN: 1,
    STAGE: 1,
    DOMAIN: 2,
    "aws:apigatewayv2/api:Api": 1,
    "aws:apigatewayv2/route:Route": 4,
    "aws:acm/certificate:Certificate": 1,
    "aws:acm/certificateValidation:CertificateValidation": 1,
    "aws:cloudwatch/metricAlarm:MetricAlarm": 3,
    "aws:cloudwatch/logGroup:LogGroup": 2,
    "aws:iam/role:Role": 1,
    "aws:iam/rolePolicy:RolePolicy": 1,
    "aws:sns/topic:Topic": 1,
    # two certificate validation records and the regional alias
    "aws:route53/record:Record": 3,
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


def test_resources_per_region_use_that_regions_provider(run: tuple[str, Run]) -> None:
    stack, result = run
    providers = {p["id"]: p["inputs"]["region"] for p in result.of("pulumi:providers:aws")}
    assert sorted(providers.values()) == sorted(REGIONS[stack])
    for region in REGIONS[stack]:
        for type_, count in PER_REGION.items():
            mine = [r for r in result.of(type_) if r["region"] == region]
            # Route 53 records of the front door also live in the primary region.
            if type_ == "aws:route53/record:Record" and region == REGIONS[stack][0]:
                mine = [r for r in mine if "latency" not in r["name"]]
            assert len(mine) == count, (region, type_, len(mine))
            for resource in mine:
                # The region comes from an explicit provider, or from a per-resource region=.
                effective = resource["inputs"].get("region") or providers[resource["provider"]]
                assert effective == region
    # Nothing may fall back to the default provider (the CLI's ambient region).
    assert all(
        r["provider"] in providers
        for r in result.resources
        if r["custom"] and not r["type"].startswith("pulumi:")
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
    primary, *others = REGIONS[stack]
    key = result.one("aws:kms/key:Key")
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
    version = result.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version["secretInputs"] == ["secretString"]
    # Endpoint roles are denied on the secret and on the key (by their exact ARNs, which
    # need not exist yet); readers are allowed.
    roles = {r["state"]["arn"] for r in result.of("aws:iam/role:Role")}
    assert roles == {
        f"arn:aws:iam::123456789012:role/keyops-{stack}-endpoint-{r}" for r in REGIONS[stack]
    }
    policy = json.loads(
        result.one("aws:secretsmanager/secretPolicy:SecretPolicy")["inputs"]["policy"]
    )
    deny = next(s for s in policy["Statement"] if s["Effect"] == "Deny")
    assert set(deny["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == roles
    assert deny["Action"] == ["secretsmanager:GetSecretValue"]
    allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    expected_readers = {
        "dev": [],
        "prod": ["arn:aws:iam::111111111111:role/keyops-prod-auth-server"],
    }
    assert [a for s in allow for a in s["Principal"]["AWS"]] == expected_readers[stack]
    key_policy = json.loads(key["inputs"]["policy"])
    assert [
        s["Action"]
        for s in key_policy["Statement"]
        if s["Effect"] == "Deny" and set(s["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == roles
    ] == [["kms:Decrypt"]]
    # New function code ships only after the keyring value it may rely on.
    for fn in result.of(FN):
        assert version["urn"] in fn["dependencies"]


def test_function_roles_only_write_their_own_logs(run: tuple[str, Run]) -> None:
    _stack, result = run
    groups = {
        g["region"]: g["state"]["arn"]
        for g in result.of("aws:cloudwatch/logGroup:LogGroup")
        if g["inputs"]["name"].startswith("/aws/lambda/")
    }
    roles = {r["name"]: r for r in result.of("aws:iam/role:Role")}
    for policy in result.of("aws:iam/rolePolicy:RolePolicy"):
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
        assert fn["inputs"]["reservedConcurrentExecutions"] > 0


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
