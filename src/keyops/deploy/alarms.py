"""``AlarmTopic``: where the alarms of one region go, encrypted so that CloudWatch can publish.

CloudWatch cannot publish to a topic encrypted with the AWS-managed ``alias/aws/sns`` key: its
policy cannot be changed to let the ``cloudwatch.amazonaws.com`` principal use it, so every
notification fails with a KMS access-denied error in the alarm history. Each region therefore
gets a customer-managed key whose policy grants CloudWatch ``kms:Decrypt`` and
``kms:GenerateDataKey*``, limited to this account by ``aws:SourceAccount``, and a topic
encrypted with it. The topic's subscribers are the stack's ``keyops:alarmEmails``; an alarm
also publishes to the ``keyops:alarmTopicArns`` of its region.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
import pulumi_aws as aws

from keyops.deploy.config import DeployConfig
from keyops.deploy.iam import account_administers

CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"
#: What a publisher to an encrypted topic needs on its key.
PUBLISH_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")


def topic_key_policy(account_id: str) -> str:
    """The account administers the key; CloudWatch alarms of this account may publish with it."""
    statements: list[dict[str, Any]] = [
        account_administers(account_id),
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": CLOUDWATCH_SERVICE},
            "Action": list(PUBLISH_KEY_ACTIONS),
            "Resource": "*",
            # Confused deputy: only alarms of this account may use the key through CloudWatch.
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class AlarmTopic(pulumi.ComponentResource):
    """The alarm topic of one region, its key and its e-mail subscriptions."""

    arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: DeployConfig,
        region: str,
        provider: aws.Provider,
        account_id: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keyops:deploy:AlarmTopic", name, None, opts)
        o = pulumi.ResourceOptions(parent=self, provider=provider)
        tags = {
            "keyops:stack": config.stack,
            "keyops:region": region,
            "keyops:production": str(config.production).lower(),
            "keyops:component": "alarms",
        }
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"keyops {config.stack}: encrypts the alarm topic ({region})",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=account_id.apply(topic_key_policy),
            tags=tags,
            opts=o,
        )
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=config.alarm_topic_name,
            kms_master_key_id=self.key.arn,
            tags=tags,
            opts=o,
        )
        for email in config.alarm_emails:
            # Named by the address, not its position: removing one address must not replace
            # (and make AWS ask to re-confirm) the others' subscriptions.
            digest = hashlib.sha256(email.lower().encode()).hexdigest()[:10]
            aws.sns.TopicSubscription(
                f"{name}-email-{digest}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=o,
            )
        self.arn = self.topic.arn
        #: Everything an alarm of this region notifies: this topic and the region's extra ones.
        self.actions: list[pulumi.Input[str]] = [
            self.topic.arn,
            *config.alarm_topic_arns_in(region),
        ]
        self.register_outputs({"arn": self.arn})
