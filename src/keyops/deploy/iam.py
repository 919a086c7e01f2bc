"""IAM for the endpoint functions: each role may write its own logs, and nothing else.

The policy documents are plain data built here, so the same predicate (:func:`wildcards`) is
used by the program's tests and by the CrossGuard pack. The one ``*`` allowed is the trailing
log-stream segment under a named log group: Lambda names its streams at run time, so no policy
can list them in advance. A wildcard anywhere else (``logs:*``, ``*``, ``log-group:*``) is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from keyops.deploy.config import DeployConfig
from keyops.deploy.permissions import adoption_reader_policy, adoption_reader_trust

LAMBDA_SERVICE = "lambda.amazonaws.com"
#: The one scoped wildcard: the streams of one named log group.
LOG_STREAMS_RE = re.compile(
    r"^arn:aws[a-z-]*:logs:[a-z0-9-]+:\d{12}:log-group:[^*?]+:log-stream:\*$"
)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def wildcards(document: Any) -> list[str]:
    """Every wildcard action or resource in a policy document (JSON text or parsed), described."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return ["the policy document is not valid JSON"]
    if not isinstance(document, dict):
        return []
    found: list[str] = []
    for statement in _as_list(document.get("Statement")):
        if not isinstance(statement, dict):
            continue
        if "NotAction" in statement or "NotResource" in statement:
            found.append("NotAction/NotResource grants everything not listed")
        for action in _as_list(statement.get("Action")):
            if isinstance(action, str) and ("*" in action or "?" in action):
                found.append(f"action {action!r}")
        for resource in _as_list(statement.get("Resource")):
            if not isinstance(resource, str):
                continue
            if ("*" in resource or "?" in resource) and not LOG_STREAMS_RE.fullmatch(resource):
                found.append(f"resource {resource!r}")
    return found


def account_administers(account_id: str) -> dict[str, Any]:
    """The key-policy statement that lets the account (through IAM) manage a KMS key.

    Without it nobody, not even the account, could manage the key.
    """
    return {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def assume_role_policy(service: str = LAMBDA_SERVICE) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def log_writer_policy(log_group_arn: str, extra: Sequence[dict[str, Any]] = ()) -> str:
    """The function role's only permissions: create streams in, and write to, its log group."""
    streams = f"{log_group_arn}:log-stream:*"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "CreateOwnLogStreams",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream"],
            "Resource": [log_group_arn, streams],
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:PutLogEvents"],
            "Resource": [streams],
        },
        *extra,
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def endpoint_role(
    name: str,
    role_name: str,
    log_group: aws.cloudwatch.LogGroup,
    tags: dict[str, str],
    extra: Iterable[dict[str, Any]],
    opts: pulumi.ResourceOptions,
) -> aws.iam.Role:
    """A Lambda execution role with an inline policy for its own log group, and no managed policy.

    ``AWSLambdaBasicExecutionRole`` is deliberately not attached: it grants ``logs:*`` style
    access to every log group in the account.
    """
    role = aws.iam.Role(
        name,
        name=role_name,
        assume_role_policy=assume_role_policy(),
        description="keyops endpoint function: writes its own logs, reads nothing",
        tags={**tags, "keyops:role": "endpoint"},
        opts=opts,
    )
    extra_statements = list(extra)
    aws.iam.RolePolicy(
        f"{name}-logs",
        role=role.id,
        policy=log_group.arn.apply(lambda arn: log_writer_policy(arn, extra_statements)),
        opts=opts,
    )
    return role


def adoption_reader_role(
    name: str, config: DeployConfig, account_id: pulumi.Output[str], opts: pulumi.ResourceOptions
) -> aws.iam.Role:
    """The role CI assumes (GitHub OIDC, pull requests only) to fetch adoption evidence.

    Its one inline policy is :func:`keyops.deploy.permissions.adoption_reader_policy`, the same
    document that is committed in ``deploy/iam/<stack>/``; CrossGuard refuses anything more.
    """
    role = aws.iam.Role(
        name,
        name=config.adoption_reader_role_name,
        assume_role_policy=account_id.apply(
            lambda account: json.dumps(adoption_reader_trust(config, account))
        ),
        description="keyops: reads the Served metrics and queries the endpoint's logs",
        max_session_duration=3600,
        tags={"keyops:stack": config.stack, "keyops:role": "adoption-reader"},
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-read",
        role=role.id,
        policy=account_id.apply(
            lambda account: json.dumps(adoption_reader_policy(config, account))
        ),
        opts=opts,
    )
    return role
