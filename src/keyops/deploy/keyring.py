"""``AuthKeyring``: the auth servers' keyring in Secrets Manager, replicated to every region.

The secret lives in the primary region with a replica in each other region, so an auth server
reads its local copy and keeps working when the primary region is down. It is encrypted with a
customer-managed, multi-region KMS key with automatic rotation (a replica key per region), not
the account's ``aws/secretsmanager`` key, so who may decrypt is decided by this key's policy.
Server roles named in ``keyops:serverReaderRoleArns`` may read it; the endpoint functions are
denied explicitly, on the secret and on the key, even if someone later widens their role. The
denials match the roles' fixed ARNs with a condition rather than naming them as principals, which
AWS would reject before the roles exist: so the keyring is written first, and the functions that
serve a new key are updated only after the auth servers can read its secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from keyops.deploy.config import DeployConfig

KEY_ROTATION_DAYS = 365


def key_policy(
    account_id: str, readers: Sequence[str], denied: Sequence[str], regions: Sequence[str]
) -> str:
    """Key policy: the account administers it; readers decrypt only through Secrets Manager."""
    statements: list[dict[str, Any]] = [
        {
            # Without this statement nobody, not even the account, could manage the key.
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if readers:
        statements.append(
            {
                "Sid": "ServerRolesDecryptViaSecretsManager",
                "Effect": "Allow",
                "Principal": {"AWS": list(readers)},
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [f"secretsmanager.{r}.amazonaws.com" for r in regions],
                    }
                },
            }
        )
    if denied:
        statements.append(
            {
                "Sid": "EndpointFunctionsNeverDecrypt",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Decrypt"],
                "Resource": "*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": list(denied)}},
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def secret_policy(readers: Sequence[str], denied: Sequence[str]) -> str:
    statements: list[dict[str, Any]] = []
    if readers:
        statements.append(
            {
                "Sid": "ServerRolesRead",
                "Effect": "Allow",
                "Principal": {"AWS": list(readers)},
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": "*",
            }
        )
    statements.append(
        {
            "Sid": "EndpointFunctionsNeverRead",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": "*",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": list(denied)}},
        }
    )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class AuthKeyring(pulumi.ComponentResource):
    secret_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: DeployConfig,
        providers: Mapping[str, aws.Provider],
        keyring_json: str,
        account_id: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keyops:deploy:AuthKeyring", name, None, opts)
        primary = config.primary_region
        readers = list(config.server_reader_role_arns)
        tags = {"keyops:stack": config.stack}
        po = pulumi.ResourceOptions(parent=self, provider=providers[primary])
        denied = account_id.apply(
            lambda account: [config.endpoint_role_arn(account, r) for r in config.regions]
        )
        policy = pulumi.Output.all(account_id, denied).apply(
            lambda args: key_policy(args[0], readers, args[1], config.regions)
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"keyops {config.stack}: encrypts the auth keyring secret",
            multi_region=True,
            enable_key_rotation=True,
            rotation_period_in_days=KEY_ROTATION_DAYS,
            deletion_window_in_days=30,
            policy=policy,
            tags=tags,
            opts=po,
        )
        self.replica_keys = {
            region: aws.kms.ReplicaKey(
                f"{name}-key-{region}",
                description=f"keyops {config.stack}: auth keyring replica key ({region})",
                primary_key_arn=self.key.arn,
                deletion_window_in_days=30,
                policy=policy,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, provider=providers[region]),
            )
            for region in config.regions[1:]
        }
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=f"keyops/{config.stack}/auth-keyring",
            description="keyops auth keyring: live Pusher keys and their secrets (server-side)",
            kms_key_id=self.key.arn,
            replicas=[{"region": r, "kms_key_id": k.arn} for r, k in self.replica_keys.items()],
            recovery_window_in_days=30,
            tags=tags,
            opts=po,
        )
        self.version = aws.secretsmanager.SecretVersion(
            f"{name}-value",
            secret_id=self.secret.id,
            # A Pulumi secret from the start: state and previews only ever hold ciphertext.
            secret_string=pulumi.Output.secret(keyring_json),
            opts=po,
        )
        aws.secretsmanager.SecretPolicy(
            f"{name}-policy",
            secret_arn=self.secret.arn,
            policy=denied.apply(lambda arns: secret_policy(readers, arns)),
            opts=po,
        )
        self.secret_arn = self.secret.arn
        self.register_outputs({"secretArn": self.secret_arn})
