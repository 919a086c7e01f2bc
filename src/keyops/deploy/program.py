"""The Pulumi program: settings → bundle + keyring (in-process) → components → stack outputs.

``infra/__main__.py`` calls :func:`main`. Everything that needs credentials happens here, before
a single resource is declared: the config is validated, the bundle is built and signed with the
same code as ``keyops build`` (a policy error stops the deployment), and the keyring is built
for the auth servers. Every value derived from a secret enters Pulumi as a secret, so the state
file never holds it in clear.

Inputs are injectable (:class:`Sources`) so the components can be exercised on their own; the
shipped program always uses :data:`DEFAULT_SOURCES`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.runtime.config import CONFIG, get_config_env

from keyops.build.bundle import build_bundle, previous_version, write_bundle
from keyops.build.keyring import build_keyring
from keyops.build.stacks import load_stack
from keyops.core.errors import KeyopsError
from keyops.deploy import asset as assets
from keyops.deploy import iam
from keyops.deploy.alarms import AlarmTopic
from keyops.deploy.config import GLOBAL_REGION, KNOWN_KEYS, NAMESPACE, DeployConfig, parse
from keyops.deploy.frontdoor import GlobalFrontDoor, shared_validation_record
from keyops.deploy.keyring import AuthKeyring
from keyops.deploy.regional import RegionalEndpoint
from keyops.protocol.bundle import Bundle
from keyops.store.repo import find_root

#: Where the build products of a stack go, under the repository root (git-ignored ``build/``).
BUILD_DIR = Path("build") / "lambda"
#: Environment variable with the JWKS the function's bundle must be signed by.
PINNED_JWKS_ENV = "KEYOPS_PINNED_JWKS"


@dataclass(frozen=True)
class Sources:
    """Where the program gets its bundle and keyring from."""

    #: (root, credentials stack, ttl days, floor version) -> bundle; raises Refused.
    build_bundle: Callable[[Path, str, int, int], Bundle]
    #: (root, credentials stack) -> the auth servers' keyring document.
    build_keyring: Callable[[Path, str], dict[str, Any]]


def _build_bundle(root: Path, stack: str, ttl_days: int, floor: int) -> Bundle:
    return build_bundle(root, stack, ttl_days=ttl_days, floor=floor)


def _build_keyring(root: Path, stack: str) -> dict[str, Any]:
    return build_keyring(load_stack(root, stack, purpose="build the auth keyring"))


DEFAULT_SOURCES = Sources(build_bundle=_build_bundle, build_keyring=_build_keyring)


def raw_settings() -> dict[str, Any]:
    """Every ``keyops:`` setting of the stack, known keys and (to catch typos) unknown ones."""
    cfg = pulumi.Config(NAMESPACE)
    present = {
        key.split(":", 1)[1]
        for key in (*CONFIG.get(), *get_config_env())
        if key.startswith(f"{NAMESPACE}:")
    }
    values = {key: cfg.get(key) for key in sorted(present | KNOWN_KEYS)}
    return {k: v for k, v in values.items() if v is not None}


def fingerprint(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def run(
    config: DeployConfig | None = None,
    *,
    repo: Path | None = None,
    sources: Sources = DEFAULT_SOURCES,
    asset_strategy: str | None = None,
) -> dict[str, Any]:
    """Declare every resource of the stack and return the stack outputs (not yet exported)."""
    cfg = config or parse(raw_settings(), pulumi.get_stack())
    root = find_root(repo)
    work = root / BUILD_DIR / cfg.stack
    bundle_dir = work / assets.BUNDLE_DIR
    bundle = sources.build_bundle(
        root, cfg.credentials_stack, cfg.bundle_ttl_days, previous_version(bundle_dir)
    )
    write_bundle(bundle, bundle_dir)
    built = assets.build_asset(
        work / "asset",
        bundle_dir,
        strategy=asset_strategy or os.environ.get("KEYOPS_ASSET_STRATEGY", "auto"),
        architecture=cfg.lambda_.architecture,
    )
    keyring = sources.build_keyring(root, cfg.credentials_stack)

    # One provider per region, named by its region: a region's resources keep their provider
    # (and their URNs) whatever the order of keyops:regions. us-east-1 is always there: it is
    # the "global" provider of Route 53, IAM and the health-check alarms.
    providers = {
        region: aws.Provider(f"aws-{region}", region=region) for region in cfg.alarm_regions
    }
    global_ = providers[GLOBAL_REGION]
    code = pulumi.FileArchive(str(built.path))
    # The handler finds the bundle at $LAMBDA_TASK_ROOT/bundle; the pin makes it refuse a
    # bundle signed by any key but this stack's (public keys only: no secret in the environment).
    environment = {PINNED_JWKS_ENV: json.dumps(bundle.jwks(), sort_keys=True)}
    invoke = pulumi.InvokeOutputOptions(provider=global_)
    caller = aws.get_caller_identity_output(opts=invoke)
    # The IAM identity behind the deployment's session (a role's ARN, not the session's): it
    # writes the keyring, so the keyring's deny-everyone-else policy must leave it out.
    deployer = aws.iam.get_session_context_output(arn=caller.arn, opts=invoke).issuer_arn
    auth = AuthKeyring(
        "auth-keyring",
        config=cfg,
        providers=providers,
        keyring_json=json.dumps(keyring, sort_keys=True),
        account_id=caller.account_id,
        deployer_arn=deployer,
    )
    topics = {
        region: AlarmTopic(
            f"alarms-{region}",
            config=cfg,
            region=region,
            provider=providers[region],
            account_id=caller.account_id,
        )
        for region in cfg.alarm_regions
    }
    endpoints = {
        region: RegionalEndpoint(
            f"endpoint-{region}",
            config=cfg,
            region=region,
            provider=providers[region],
            code=code,
            environment=environment,
            alarm_topic=topics[region],
            # Auth servers must be able to sign for a key before any app is served it.
            after=[auth.version],
        )
        for region in cfg.regions
    }
    shared = shared_validation_record(
        "cert-validation-global",
        config=cfg,
        certificates=[e.certificate for e in endpoints.values()],
        provider=global_,
    )
    for endpoint in endpoints.values():
        endpoint.serve(shared.fqdn)
    front = GlobalFrontDoor(
        "frontdoor",
        config=cfg,
        endpoints=endpoints,
        provider=global_,
        alarm_topic=topics[GLOBAL_REGION],
    )
    outputs: dict[str, Any] = {}
    if cfg.github_repository:
        reader = iam.adoption_reader_role(
            "adoption-reader", cfg, caller.account_id, pulumi.ResourceOptions(provider=global_)
        )
        outputs["adoptionReaderRoleArn"] = reader.arn
    return {
        **outputs,
        "dashboards": {region: e.dashboard.dashboard_name for region, e in endpoints.items()},
        "globalUrl": front.url,
        "regionalUrls": {region: e.url for region, e in endpoints.items()},
        "jwks": bundle.jwks(),
        "bundleVersion": bundle.bundle_version,
        "bundleExpires": dt.datetime.fromtimestamp(bundle.exp, dt.UTC).isoformat(),
        "keyringSecretArn": auth.secret_arn,
        "alarmTopicArns": {region: t.arn for region, t in topics.items()},
        # Derived from secrets, so a secret itself: lets an operator compare what is deployed
        # with a local build (pulumi stack output --show-secrets keyringFingerprint).
        "keyringFingerprint": pulumi.Output.secret(fingerprint(keyring)),
        "assetStrategy": built.strategy,
    }


def main() -> None:
    """Entry point of ``infra/__main__.py``: a user error stops the run with its message only."""
    try:
        outputs = run()
    except KeyopsError as err:
        raise pulumi.RunError(err.render()) from None
    for name, value in outputs.items():
        pulumi.export(name, value)
