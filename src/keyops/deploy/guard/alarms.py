"""Rules that make alarms reach a person: encrypted topics CloudWatch can use, subscribers,
and a health-check alarm that fires when a region goes silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulumi_policy import ReportViolation

from keyops.deploy.guard.model import (
    ALARM,
    HEALTH_CHECK,
    KMS_KEY,
    SUBSCRIPTION,
    TOPIC,
    Seen,
    ids,
    of,
    statements,
)

CLOUDWATCH = "cloudwatch.amazonaws.com"
PUBLISH_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")
#: Route 53 publishes its health-check metrics in this region only.
HEALTH_METRIC_REGION = "us-east-1"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _grants_cloudwatch(key: Seen) -> bool:
    """Whether the key's policy lets CloudWatch publish to a topic encrypted with it."""
    for statement in statements(key.props.get("policy")):
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if statement.get("Effect") != "Allow" or CLOUDWATCH not in services:
            continue
        actions = {str(a) for a in _as_list(statement.get("Action"))}
        if "kms:*" in actions or set(PUBLISH_ACTIONS) <= actions:
            return True
    return False


def alarm_topics_encrypted(resources: Sequence[Seen], report: ReportViolation) -> None:
    keys = of(resources, KMS_KEY)
    for topic in of(resources, TOPIC):
        ref = topic.props.get("kmsMasterKeyId")
        label = f"topic {topic.props.get('name') or topic.name!r}"
        if not ref:
            report(
                f"{label} is not encrypted: use a customer-managed KMS key whose policy lets "
                f"{CLOUDWATCH} use it",
                topic.urn,
            )
            continue
        if "alias/aws/" in str(ref):
            report(
                f"{label} is encrypted with the AWS-managed key {ref}: CloudWatch cannot "
                "publish to it (every notification fails with a KMS access-denied error). Use a "
                f"customer-managed key whose policy grants {CLOUDWATCH} "
                f"{' and '.join(PUBLISH_ACTIONS)}",
                topic.urn,
            )
            continue
        key = next((k for k in keys if str(ref) in ids(k)), None)
        if key is None:
            report(
                f"{label} is encrypted with {ref}, which is not a KMS key of this stack, so "
                "whether CloudWatch may use it cannot be checked",
                topic.urn,
            )
        elif not _grants_cloudwatch(key):
            report(
                f"{label}: its KMS key {key.name!r} does not grant {CLOUDWATCH} "
                f"{' and '.join(PUBLISH_ACTIONS)}, so alarms cannot publish to it",
                topic.urn,
            )


def _production(resource: Seen) -> bool:
    return resource.tags.get("keyops:production") == "true"


def alarms_reach_someone(resources: Sequence[Seen], report: ReportViolation) -> None:
    """In a production stack every alarm must reach a subscriber or an external topic."""
    topics = {str(t.props.get("arn")): t for t in of(resources, TOPIC) if t.props.get("arn")}
    subscribed = {str(s.props.get("topic")) for s in of(resources, SUBSCRIPTION)}
    silent: dict[str, list[str]] = {}
    for alarm in filter(_production, of(resources, ALARM)):
        actions = [str(a) for a in _as_list(alarm.props.get("alarmActions"))]
        name = str(alarm.props.get("name") or alarm.name)
        if not actions:
            report(f"alarm {name!r} of a production stack has no alarm action", alarm.urn)
            continue
        # A topic this stack does not declare is someone else's, with its own subscribers.
        if any(a not in topics or a in subscribed for a in actions):
            continue
        for action in actions:
            silent.setdefault(action, []).append(name)
    for arn, alarms in sorted(silent.items()):
        topic = topics[arn]
        report(
            f"topic {topic.props.get('name') or topic.name!r} of a production stack has no "
            f"subscription, and alarms {', '.join(sorted(alarms))} notify nobody else: set "
            "keyops:alarmEmails (or keyops:alarmTopicArns)",
            topic.urn,
        )


def health_checks_alarmed(resources: Sequence[Seen], report: ReportViolation) -> None:
    """Every Route 53 health check has a HealthCheckStatus alarm that can fire."""
    alarms = [
        a
        for a in of(resources, ALARM)
        if a.props.get("namespace") == "AWS/Route53"
        and a.props.get("metricName") == "HealthCheckStatus"
    ]
    for check in of(resources, HEALTH_CHECK):
        # Stack policies see outputs, where the id is the last segment of the ARN.
        check_id = check.props.get("id") or str(check.props.get("arn", "")).rsplit("/", 1)[-1]
        label = f"health check {check.props.get('fqdn') or check.name!r}"
        mine = [
            a
            for a in alarms
            if str((a.props.get("dimensions") or {}).get("HealthCheckId")) == str(check_id)
        ]
        if not mine:
            report(
                f"{label} has no HealthCheckStatus alarm: a region that is fully down publishes "
                "no other metric, so nothing would alarm",
                check.urn,
            )
        for alarm in mine:
            name = alarm.props.get("name") or alarm.name
            if alarm.region != HEALTH_METRIC_REGION:
                report(
                    f"alarm {name!r} on {label} is in {alarm.region}: Route 53 publishes "
                    f"HealthCheckStatus only in {HEALTH_METRIC_REGION}, so it never gets data",
                    alarm.urn,
                )
            missing = alarm.props.get("treatMissingData") or "missing"
            if missing != "breaching":
                report(
                    f"alarm {name!r} on {label} treats missing data as {missing!r}: a check "
                    "that reports nothing must alarm (treatMissingData breaching)",
                    alarm.urn,
                )
