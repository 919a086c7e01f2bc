"""The stack settings schema: shipped stacks parse; every bad setting is named with its fix."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from keyops.core.errors import DeployConfigError
from keyops.deploy.config import Keyring, parse
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
    assert prod.keyring == Keyring("eu-west-1", "eu-west-1", ())
    assert prod.keyring_replica_regions == ("us-east-1", "ap-southeast-1")
    assert prod.alarm_emails == ("keyops-oncall@example.com",)
    assert prod.alarm_regions == prod.regions
    assert (prod.lambda_.reserved_concurrency, dev.lambda_.reserved_concurrency) == (200, None)
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


def test_keyring_placement_does_not_follow_the_order_of_regions() -> None:
    shuffled = parse(
        shipped("prod") | {"regions": '["ap-southeast-1", "us-east-1", "eu-west-1"]'}, "prod"
    )
    assert shuffled.keyring == parse(shipped("prod"), "prod").keyring
    assert shuffled.keyring_replica_regions == ("ap-southeast-1", "us-east-1")
    # After a disaster recovery: the secret's primary moved, the KMS primary could not.
    dr = parse(
        shipped("prod")
        | {
            "keyring": json.dumps(
                {"region": "us-east-1", "keyRegion": "eu-west-1", "pausedRegions": ["eu-west-1"]}
            )
        },
        "prod",
    )
    assert dr.keyring_replica_regions == ("ap-southeast-1",)
    assert dr.replica_key_regions == ("us-east-1", "ap-southeast-1")


def test_dev_without_us_east_1_still_alarms_there() -> None:
    cfg = parse(shipped("dev") | {"regions": '["eu-west-1", "eu-central-1"]'}, "dev")
    assert cfg.alarm_regions == ("eu-west-1", "eu-central-1", "us-east-1")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"keyring": None}, "keyops:keyring is missing"),
        ({"keyring": "{}"}, "keyops:keyring.region is missing"),
        (
            {"keyring": '{"keyRegion": "eu-west-1"}'},
            "keyops:keyring.region is missing: name the keyring secret's primary region, one of "
            "keyops:regions (eu-west-1, us-east-1, ap-southeast-1)",
        ),
        (
            {"keyring": '{"region": "eu-central-1"}'},
            "keyops:keyring.region must be one of keyops:regions (eu-west-1, us-east-1, "
            "ap-southeast-1), got 'eu-central-1'",
        ),
        (
            {"keyring": '{"region": "eu-west-1", "pausedRegions": ["eu-west-1"]}'},
            "keyops:keyring.pausedRegions cannot pause the keyring's own region eu-west-1",
        ),
        (
            {"keyring": '{"region": "eu-west-1", "primary": true}'},
            "keyops:keyring.primary is not a known setting (check the spelling)",
        ),
        (
            {"alarmEmails": None},
            "keyops:alarmEmails is missing: a production stack's alarms must reach someone. List "
            "on-call addresses in keyops:alarmEmails, or existing topics in keyops:alarmTopicArns "
            "(one per alarm region; none in eu-west-1, us-east-1, ap-southeast-1)",
        ),
        (
            {
                "alarmEmails": None,
                "alarmTopicArns": '["arn:aws:sns:eu-west-1:111111111111:oncall",'
                ' "arn:aws:sns:us-east-1:111111111111:oncall"]',
            },
            "(one per alarm region; none in ap-southeast-1)",
        ),
        (
            {"alarmTopicArns": '["arn:aws:sns:eu-central-1:111111111111:oncall"]'},
            "keyops:alarmTopicArns names arn:aws:sns:eu-central-1:111111111111:oncall, in a region "
            "with no alarms of this stack (alarms live in eu-west-1, us-east-1, ap-southeast-1; "
            "CloudWatch publishes only to topics in the alarm's own region)",
        ),
        ({"alarmEmails": '["oncall"]'}, "keyops:alarmEmails must be a list of e-mail addresses"),
        (
            {"alarmEmails": '["a@example.com", "a@example.com"]'},
            "keyops:alarmEmails lists a value twice",
        ),
        (
            {
                "lambda": json.dumps(
                    {"memoryMb": 512, "architecture": "arm64", "reservedConcurrency": 0}
                )
            },
            "keyops:lambda.reservedConcurrency must be between 1 and 10000, got 0",
        ),
        ({"githubRepository": "acme"}, "keyops:githubRepository must be OWNER/REPO"),
        (
            {"deployRoleArns": '["keyops-deploy-prod"]'},
            "keyops:deployRoleArns must be a list of IAM role ARNs",
        ),
    ],
)
def test_operations_settings_are_checked(change: dict[str, str | None], expected: str) -> None:
    raw = shipped("prod") | change
    raw = {k: v for k, v in raw.items() if v is not None}
    assert expected in refused(raw)


def test_a_production_stack_alarming_only_through_existing_topics_is_valid() -> None:
    raw = {k: v for k, v in shipped("prod").items() if k != "alarmEmails"}
    arns = [
        f"arn:aws:sns:{r}:111111111111:oncall" for r in ("eu-west-1", "us-east-1", "ap-southeast-1")
    ]
    cfg = parse(raw | {"alarmTopicArns": json.dumps(arns)}, "prod")
    assert cfg.alarm_emails == ()
    assert cfg.alarm_topic_arns_in("us-east-1") == ("arn:aws:sns:us-east-1:111111111111:oncall",)
