"""Rules on the keyring: rotating customer-managed keys, protection, who may read it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulumi_policy import ReportViolation

from keyops.deploy.guard.model import (
    KMS_KEY,
    KMS_REPLICA,
    SECRET,
    SECRET_POLICY,
    Seen,
    ids,
    of,
    statements,
)


def _kms_rotating(ref: Any, keys: Sequence[Seen], replicas: Sequence[Seen]) -> str | None:
    """Why ``ref`` is not a rotating customer-managed key, or None when it is."""
    if not ref:
        return "no kmsKeyId (the account's aws/secretsmanager key would be used)"
    ref = str(ref)
    if "alias/aws/" in ref:
        return f"{ref} is an AWS-managed key"
    for key in keys:
        if ref in ids(key):
            return (
                None
                if key.props.get("enableKeyRotation") is True
                else (f"KMS key {key.name!r} has rotation disabled")
            )
    for replica in replicas:
        if ref in ids(replica):
            return _kms_rotating(replica.props.get("primaryKeyArn"), keys, ())
    return f"{ref} is not a KMS key of this stack, so its rotation cannot be checked"


def secrets_cmk_rotation(resources: Sequence[Seen], report: ReportViolation) -> None:
    keys, replicas = of(resources, KMS_KEY), of(resources, KMS_REPLICA)
    for secret in of(resources, SECRET):
        problem = _kms_rotating(secret.props.get("kmsKeyId"), keys, replicas)
        if problem:
            report(f"secret {secret.name!r}: {problem}", secret.urn)
        for replica in secret.props.get("replicas") or []:
            problem = _kms_rotating(replica.get("kmsKeyId"), keys, replicas)
            if problem:
                report(
                    f"secret {secret.name!r} replica in {replica.get('region')}: {problem}",
                    secret.urn,
                )


def _keys_of(secret: Seen, keys: Sequence[Seen], replicas: Sequence[Seen]) -> list[Seen]:
    """The KMS keys (and replica keys, and their primaries) that encrypt ``secret``."""
    refs = [secret.props.get("kmsKeyId")]
    refs += [r.get("kmsKeyId") for r in secret.props.get("replicas") or [] if isinstance(r, dict)]
    found: list[Seen] = []
    for ref in filter(None, refs):
        for key in [*keys, *replicas]:
            if str(ref) in ids(key) and key not in found:
                found.append(key)
    for replica in [k for k in found if k.type == KMS_REPLICA]:
        primary = replica.props.get("primaryKeyArn")
        found += [k for k in keys if primary and str(primary) in ids(k) and k not in found]
    return found


def keyring_protected(resources: Sequence[Seen], report: ReportViolation) -> None:
    """Secrets and the keys that encrypt them can be neither deleted nor replaced by a plan."""
    keys, replicas = of(resources, KMS_KEY), of(resources, KMS_REPLICA)
    for secret in of(resources, SECRET):
        if not secret.protect:
            report(
                f"secret {secret.name!r} is not protected: a plan could delete or replace it "
                "(see the disaster-recovery runbook in docs/deploy.md); set protect=True",
                secret.urn,
            )
        for key in _keys_of(secret, keys, replicas):
            if not key.protect:
                report(
                    f"KMS key {key.name!r} encrypts secret {secret.name!r} and is not protected: "
                    "deleting it makes the secret unreadable; set protect=True",
                    key.urn,
                )


#: Conditions that name who is exempt from a deny.
EXEMPTING = ("ArnNotEquals", "ArnNotLike", "StringNotEquals", "StringNotLike")


def _denies_all_but(statement: dict[str, Any]) -> list[str] | None:
    """The exempt principal ARNs when ``statement`` denies GetSecretValue to everyone else."""
    principal = statement.get("Principal")
    everyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")
    actions = statement.get("Action")
    actions = actions if isinstance(actions, list) else [actions]
    reads = bool({"secretsmanager:GetSecretValue", "secretsmanager:*", "*"} & set(actions))
    if statement.get("Effect") != "Deny" or not everyone or not reads:
        return None
    condition = statement.get("Condition") or {}
    exempt: list[str] = []
    for operator in EXEMPTING:
        arns = (condition.get(operator) or {}).get("aws:PrincipalArn")
        exempt += arns if isinstance(arns, list) else [arns] if arns else []
    return [str(a) for a in exempt] if exempt else None


def keyring_closed(resources: Sequence[Seen], report: ReportViolation) -> None:
    """Only named principals can read a secret: its policy denies everyone else."""
    policies = of(resources, SECRET_POLICY)
    for secret in of(resources, SECRET):
        mine = [p for p in policies if str(p.props.get("secretArn")) in ids(secret)]
        denies = [
            exempt
            for p in mine
            for s in statements(p.props.get("policy"))
            if (exempt := _denies_all_but(s)) is not None
        ]
        if not denies:
            report(
                f"secret {secret.name!r} is readable by any principal of the account with "
                "secretsmanager:GetSecretValue and kms:Decrypt (administrators, the deploy role): "
                "its resource policy must deny GetSecretValue to Principal * except the readers "
                "and deployers (ArnNotEquals on aws:PrincipalArn)",
                secret.urn,
            )
        for pattern in [e for exempt in denies for e in exempt if "*" in e or "?" in e]:
            report(
                f"secret {secret.name!r}: its deny exempts the pattern {pattern!r}; name each "
                "reader and deployer exactly",
                secret.urn,
            )
