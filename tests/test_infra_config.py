"""The stack settings schema: shipped stacks parse; every bad setting is named with its fix."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from keyops.core.errors import DeployConfigError
from keyops.deploy.config import parse
from support.repo import PROJECT


def shipped(stack: str) -> dict[str, Any]:
    """The stack file's keyops: settings, as the Pulumi CLI passes them (JSON text for objects)."""
    data = yaml.safe_load((PROJECT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {
        k.split(":", 1)[1]: json.dumps(v)
        if isinstance(v, dict | list)
        else (str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in data.items()
        if k.startswith("keyops:")
    }


def test_shipped_stacks_parse() -> None:
    dev, prod = parse(shipped("dev"), "dev"), parse(shipped("prod"), "prod")
    assert (dev.production, dev.regions) == (False, ("eu-west-1", "us-east-1"))
    assert prod.production is True and len(prod.regions) >= 2
    assert prod.primary_region == "eu-west-1"
    assert prod.regional_domain("us-east-1") == "us-east-1.keys.example.com"
    assert prod.throttle is not None and (prod.throttle.rate_limit, prod.throttle.burst_limit) == (
        2000,
        4000,
    )
    assert (prod.lambda_.architecture, prod.lambda_.memory_mb) == ("arm64", 512)
    assert (prod.log_retention_days, prod.bundle_ttl_days) == (90, 30)
    assert prod.credentials_stack == "prod"


def refused(raw: dict[str, Any], stack: str = "prod") -> str:
    with pytest.raises(DeployConfigError) as caught:
        parse(raw, stack)
    return caught.value.render()


def test_one_region_production_is_refused() -> None:
    raw = shipped("prod") | {"regions": '["eu-west-1"]'}
    assert refused(raw) == (
        "error: stacks/Pulumi.prod.yaml has 1 invalid setting(s): keyops:regions must list at "
        "least 2 regions for a production stack, got 1 (a single region is a single point of "
        "failure). Fix them in stacks/Pulumi.prod.yaml (see docs/deploy.md, section Settings)."
    )


def test_every_problem_is_reported_at_once() -> None:
    raw = shipped("dev")
    del raw["domain"]
    raw |= {
        "throttle": json.dumps({"rateLimit": 0, "burstLimt": 5}),
        "lambda": json.dumps({"memoryMb": 64, "architecture": "sparc", "reservedConcurrency": 1}),
        "logRetentionDays": "45",
        "hostedZoneId": "example.com",
        "regoins": '["eu-west-1"]',
    }
    message = refused(raw, "dev")
    assert message.startswith("error: stacks/Pulumi.dev.yaml has 9 invalid setting(s): ")
    for part in (
        "keyops:regoins is not a known setting (check the spelling)",
        "keyops:domain is missing",
        "keyops:hostedZoneId must be a Route 53 hosted zone id like Z0123456789ABC, "
        "got 'example.com'",
        "keyops:throttle.burstLimt is not a known setting (check the spelling)",
        "keyops:throttle.rateLimit must be between 1 and 100000, got 0",
        "keyops:throttle.burstLimit is missing",
        "keyops:lambda.architecture must be arm64 or x86_64, got 'sparc'",
        "keyops:lambda.memoryMb must be between 128 and 10240, got 64",
        "keyops:logRetentionDays must be one of CloudWatch's periods 1, 3, 5, 7, 14, 30, 60, "
        "90, 120",
    ):
        assert part in message, part


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("regions", '["eu-west-1", "eu-west-1"]', "keyops:regions lists a region twice"),
        ("regions", '["Europe"]', "keyops:regions has invalid AWS region names ['Europe']"),
        ("domain", "Keys.Example.com", "keyops:domain must be a lowercase DNS name"),
        ("bundleTtlDays", "0", "keyops:bundleTtlDays must be between 1 and 90, got 0"),
        ("production", "yes", "keyops:production must be true or false, got 'yes'"),
        ("alarms", "{not json", "keyops:alarms is not valid JSON"),
        (
            "healthCheck",
            '{"intervalSeconds": 20, "failureThreshold": 3}',
            "keyops:healthCheck.intervalSeconds must be 10 or 30 (Route 53), got 20",
        ),
        (
            "serverReaderRoleArns",
            '["arn:aws:iam::1:role/x"]',
            "keyops:serverReaderRoleArns must be a list of IAM role ARNs",
        ),
        (
            "functionPolicyStatements",
            '[{"Action": "s3:GetObject"}]',
            "keyops:functionPolicyStatements must be a list of IAM statements",
        ),
    ],
)
def test_invalid_setting_is_named(key: str, value: str, expected: str) -> None:
    assert expected in refused(shipped("prod") | {key: value})
