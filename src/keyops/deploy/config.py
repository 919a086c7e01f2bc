"""The deployment settings of one stack (``keyops:`` namespace of ``stacks/Pulumi.<stack>.yaml``).

Parsed from the raw Pulumi config strings into a frozen :class:`DeployConfig`. Every problem is
collected first and reported together, each naming the key, what is wrong and how to fix it, so a
bad stack file fails before a single resource is planned. Nothing here imports pulumi: the
schema is tested on its own, and ``program.py`` feeds it the stack's config.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from keyops.core.errors import DeployConfigError

NAMESPACE = "keyops"

#: CloudWatch Logs only accepts these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ZONE_ID_RE = re.compile(r"^Z[A-Z0-9]{1,32}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
TOPIC_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:sns:([a-z]{2}(?:-gov)?-[a-z]+-\d):\d{12}:[A-Za-z0-9_-]{1,256}$"
)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
STACK_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
HEALTH_INTERVALS = (10, 30)
#: Route 53 publishes its health-check metrics only here, and IAM and Route 53 are global
#: services whose calls go here: the program's "global" provider is pinned to this region.
GLOBAL_REGION = "us-east-1"

KNOWN_KEYS = frozenset(
    {
        "production",
        "credentialsStack",
        "regions",
        "domain",
        "hostedZoneId",
        "throttle",
        "lambda",
        "logRetentionDays",
        "alarms",
        "bundleTtlDays",
        "healthCheck",
        "serverReaderRoleArns",
        "functionPolicyStatements",
        "keyring",
        "alarmEmails",
        "alarmTopicArns",
        "deployRoleArns",
        "githubRepository",
    }
)


@dataclass(frozen=True)
class Throttle:
    rate_limit: float
    burst_limit: int


@dataclass(frozen=True)
class LambdaSettings:
    memory_mb: int
    architecture: str
    #: ``None``: no reservation, the function shares the region's unreserved pool. A reservation
    #: must leave the account's unreserved concurrency at 100 or more (docs/deploy.md).
    reserved_concurrency: int | None
    timeout_seconds: int


@dataclass(frozen=True)
class Alarms:
    errors_5xx: int
    latency_p99_ms: int
    throttles: int
    period_seconds: int
    evaluation_periods: int


@dataclass(frozen=True)
class HealthCheck:
    interval_seconds: int
    failure_threshold: int


@dataclass(frozen=True)
class Keyring:
    """Where the auth keyring lives, independent of the order of ``regions``.

    ``region`` holds the secret's primary, ``key_region`` the multi-region KMS key's primary
    (they differ after a disaster recovery: a KMS primary cannot move while its region is
    down). ``paused_regions`` get no replica of the secret, e.g. a region that is down and
    still holds the old primary secret (docs/deploy.md, Disaster recovery).
    """

    region: str
    key_region: str
    paused_regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployConfig:
    """Everything the program needs about one stack."""

    stack: str
    production: bool
    credentials_stack: str
    regions: tuple[str, ...]
    domain: str
    hosted_zone_id: str
    #: ``None`` only when built by hand (tests of the policy pack); :func:`parse` requires it.
    throttle: Throttle | None
    lambda_: LambdaSettings
    log_retention_days: int
    alarms: Alarms
    bundle_ttl_days: int
    health_check: HealthCheck
    server_reader_role_arns: tuple[str, ...] = ()
    #: Extra statements for the endpoint functions' role (e.g. a tracing extension). The
    #: CrossGuard pack still forbids wildcards in them.
    function_policy_statements: tuple[dict[str, Any], ...] = field(default=())
    #: ``None`` only when built by hand; :func:`parse` requires ``keyops:keyring``.
    keyring: Keyring | None = None
    alarm_emails: tuple[str, ...] = ()
    alarm_topic_arns: tuple[str, ...] = ()
    #: Roles that run ``pulumi up`` for this stack (CI's deploy role): they, and whoever runs
    #: the deployment, are the only principals besides the readers that may read the keyring.
    deploy_role_arns: tuple[str, ...] = ()
    #: ``OWNER/REPO`` whose workflows assume the adoption-reader role (and the deploy role).
    github_repository: str | None = None

    @property
    def keyring_settings(self) -> Keyring:
        return self.keyring or Keyring(self.regions[0], self.regions[0])

    @property
    def keyring_replica_regions(self) -> tuple[str, ...]:
        """Regions that get a replica of the keyring secret."""
        k = self.keyring_settings
        return tuple(r for r in self.regions if r != k.region and r not in k.paused_regions)

    @property
    def replica_key_regions(self) -> tuple[str, ...]:
        """Regions that get a replica of the keyring's multi-region KMS key."""
        return tuple(r for r in self.regions if r != self.keyring_settings.key_region)

    @property
    def alarm_regions(self) -> tuple[str, ...]:
        """Every region with alarms: the serving regions, and us-east-1 for the health checks."""
        return self.regions + (() if GLOBAL_REGION in self.regions else (GLOBAL_REGION,))

    def alarm_topic_arns_in(self, region: str) -> tuple[str, ...]:
        """The extra topics (``keyops:alarmTopicArns``) alarms in ``region`` can publish to."""
        return tuple(a for a in self.alarm_topic_arns if topic_region(a) == region)

    @property
    def adoption_reader_role_name(self) -> str:
        return f"keyops-{self.stack}-adoption-reader"

    @property
    def function_name(self) -> str:
        """The endpoint function's name, the same in every region."""
        return f"keyops-{self.stack}-endpoint"

    @property
    def alarm_topic_name(self) -> str:
        """The name of the stack's alarm topic, the same in every alarm region."""
        return f"keyops-{self.stack}-alarms"

    @property
    def function_log_group(self) -> str:
        """Where the function logs, including its EMF lines (the adoption evidence)."""
        return f"/aws/lambda/{self.function_name}"

    def endpoint_role_name(self, region: str) -> str:
        """The function role's fixed name, so the keyring can deny it before it exists."""
        return f"keyops-{self.stack}-endpoint-{region}"

    def endpoint_role_arn(self, account_id: str, region: str) -> str:
        return f"arn:aws:iam::{account_id}:role/{self.endpoint_role_name(region)}"

    def regional_domain(self, region: str) -> str:
        """The per-region name health checks and operators use: ``<region>.<domain>``."""
        return f"{region}.{self.domain}"


class _Reader:
    """Reads typed values out of the raw config and collects every problem."""

    def __init__(self, raw: Mapping[str, Any], source: str) -> None:
        self.raw = raw
        self.source = source
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{NAMESPACE}:{key} {message}")

    def value(self, key: str, *, required: bool = True) -> Any:
        if key not in self.raw or self.raw[key] is None:
            if required:
                self.fail(key, "is missing")
            return None
        value = self.raw[key]
        # The Pulumi CLI hands structured values to the program as JSON text.
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                self.fail(key, "is not valid JSON")
                return None
        return value

    def obj(self, key: str) -> dict[str, Any]:
        value = self.value(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping, got {type(value).__name__}")
            return {}
        return value

    def integer(self, key: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        if value is None:
            self.fail(key, "is missing")
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer, got {value!r}")
            return 0
        if not low <= value <= high:
            self.fail(key, f"must be between {low} and {high}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.value(key, required=False)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        self.fail(key, f"must be true or false, got {value!r}")
        return default

    def string(
        self,
        key: str,
        pattern: re.Pattern[str],
        hint: str,
        *,
        required: bool = True,
        default: str = "",
    ) -> str:
        value = self.value(key, required=required)
        if value is None:
            return default
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.fail(key, f"must be {hint}, got {value!r}")
            return default
        return value

    def string_list(self, key: str, pattern: re.Pattern[str], hint: str) -> tuple[str, ...]:
        value = self.value(key, required=False)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(
            isinstance(x, str) and pattern.fullmatch(x) for x in value
        ):
            self.fail(key, f"must be {hint}, got {value!r}")
            return ()
        if len(set(value)) != len(value):
            self.fail(key, "lists a value twice")
        return tuple(value)

    def unknown(self, allowed: frozenset[str], key: str, data: Mapping[str, Any]) -> None:
        for extra in sorted(set(data) - allowed):
            self.fail(f"{key}.{extra}", "is not a known setting (check the spelling)")


def parse(raw: Mapping[str, Any], stack: str, *, source: str = "") -> DeployConfig:
    """Validate ``raw`` (keys without the ``keyops:`` prefix) and build the stack's settings.

    Raises :class:`DeployConfigError` listing every problem when anything is missing or invalid.
    """
    source = source or f"stacks/Pulumi.{stack}.yaml"
    r = _Reader(raw, source)
    for extra in sorted(set(raw) - KNOWN_KEYS):
        r.fail(extra, "is not a known setting (check the spelling)")

    production = r.boolean("production", default=False)
    credentials_stack = r.string(
        "credentialsStack", STACK_RE, "a stack name", required=False, default=stack
    )
    regions = _regions(r, production)
    domain = r.string("domain", DOMAIN_RE, "a lowercase DNS name like keys.example.com")
    zone = r.string("hostedZoneId", ZONE_ID_RE, "a Route 53 hosted zone id like Z0123456789ABC")

    t = r.obj("throttle")
    r.unknown(frozenset({"rateLimit", "burstLimit"}), "throttle", t)
    throttle = Throttle(
        rate_limit=r.integer("throttle.rateLimit", t.get("rateLimit"), 1, 100_000),
        burst_limit=r.integer("throttle.burstLimit", t.get("burstLimit"), 1, 100_000),
    )

    lam = r.obj("lambda")
    r.unknown(
        frozenset({"memoryMb", "architecture", "reservedConcurrency", "timeoutSeconds"}),
        "lambda",
        lam,
    )
    arch = lam.get("architecture")
    if arch not in ("arm64", "x86_64"):
        r.fail("lambda.architecture", f"must be arm64 or x86_64, got {arch!r}")
    lambda_ = LambdaSettings(
        memory_mb=r.integer("lambda.memoryMb", lam.get("memoryMb"), 128, 10_240),
        architecture=str(arch),
        reserved_concurrency=(
            None
            if lam.get("reservedConcurrency") is None
            else r.integer("lambda.reservedConcurrency", lam.get("reservedConcurrency"), 1, 10_000)
        ),
        timeout_seconds=r.integer("lambda.timeoutSeconds", lam.get("timeoutSeconds", 10), 1, 30),
    )

    retention = r.integer("logRetentionDays", r.value("logRetentionDays"), 1, 3653)
    if retention and retention not in LOG_RETENTION_DAYS:
        r.fail(
            "logRetentionDays",
            f"must be one of CloudWatch's periods "
            f"{', '.join(map(str, LOG_RETENTION_DAYS))}, got {retention}",
        )

    a = r.obj("alarms")
    r.unknown(
        frozenset({"errors5xx", "latencyP99Ms", "throttles", "periodSeconds", "evaluationPeriods"}),
        "alarms",
        a,
    )
    period = r.integer("alarms.periodSeconds", a.get("periodSeconds"), 10, 86_400)
    if period and period not in (10, 30) and period % 60:
        r.fail("alarms.periodSeconds", f"must be 10, 30 or a multiple of 60, got {period}")
    alarms = Alarms(
        errors_5xx=r.integer("alarms.errors5xx", a.get("errors5xx"), 0, 1_000_000),
        latency_p99_ms=r.integer("alarms.latencyP99Ms", a.get("latencyP99Ms"), 1, 30_000),
        throttles=r.integer("alarms.throttles", a.get("throttles"), 0, 1_000_000),
        period_seconds=period,
        evaluation_periods=r.integer(
            "alarms.evaluationPeriods", a.get("evaluationPeriods"), 1, 100
        ),
    )

    h = r.value("healthCheck", required=False) or {"intervalSeconds": 30, "failureThreshold": 3}
    if not isinstance(h, dict):
        r.fail("healthCheck", "must be a mapping")
        h = {}
    r.unknown(frozenset({"intervalSeconds", "failureThreshold"}), "healthCheck", h)
    interval = r.integer("healthCheck.intervalSeconds", h.get("intervalSeconds"), 10, 30)
    if interval and interval not in HEALTH_INTERVALS:
        r.fail("healthCheck.intervalSeconds", f"must be 10 or 30 (Route 53), got {interval}")
    health = HealthCheck(
        interval_seconds=interval,
        failure_threshold=r.integer(
            "healthCheck.failureThreshold", h.get("failureThreshold"), 1, 10
        ),
    )

    readers = r.string_list(
        "serverReaderRoleArns",
        ROLE_ARN_RE,
        "a list of IAM role ARNs (arn:aws:iam::<account>:role/<name>)",
    )
    statements = r.value("functionPolicyStatements", required=False) or []
    if not isinstance(statements, list) or not all(_statement_ok(s) for s in statements):
        r.fail(
            "functionPolicyStatements",
            "must be a list of IAM statements with Effect, Action and Resource",
        )
        statements = []

    keyring = _keyring(r, regions)
    emails = r.string_list("alarmEmails", EMAIL_RE, "a list of e-mail addresses")
    topics = r.string_list(
        "alarmTopicArns",
        TOPIC_ARN_RE,
        "a list of SNS topic ARNs (arn:aws:sns:<region>:<account>:<name>)",
    )
    alarm_regions = regions + (() if GLOBAL_REGION in regions else (GLOBAL_REGION,))
    for arn in topics:
        if topic_region(arn) not in alarm_regions:
            r.fail(
                "alarmTopicArns",
                f"names {arn}, in a region with no alarms of this stack "
                f"(alarms live in {', '.join(alarm_regions)}; CloudWatch publishes only to "
                "topics in the alarm's own region)",
            )
    uncovered = [x for x in alarm_regions if not any(topic_region(a) == x for a in topics)]
    if production and regions and not emails and uncovered:
        r.fail(
            "alarmEmails",
            "is missing: a production stack's alarms must reach someone. List on-call "
            "addresses in keyops:alarmEmails, or existing topics in keyops:alarmTopicArns "
            f"(one per alarm region; none in {', '.join(uncovered)})",
        )
    repository = r.string(
        "githubRepository", REPOSITORY_RE, "OWNER/REPO of the GitHub repository", required=False
    )

    config = DeployConfig(
        stack=stack,
        production=production,
        credentials_stack=credentials_stack,
        regions=regions,
        domain=domain,
        hosted_zone_id=zone,
        throttle=throttle,
        lambda_=lambda_,
        log_retention_days=retention,
        alarms=alarms,
        bundle_ttl_days=r.integer("bundleTtlDays", r.value("bundleTtlDays"), 1, 90),
        health_check=health,
        server_reader_role_arns=tuple(readers),
        function_policy_statements=tuple(statements),
        keyring=keyring,
        alarm_emails=emails,
        alarm_topic_arns=topics,
        deploy_role_arns=r.string_list(
            "deployRoleArns",
            ROLE_ARN_RE,
            "a list of IAM role ARNs (arn:aws:iam::<account>:role/<name>)",
        ),
        github_repository=repository or None,
    )
    if r.problems:
        raise DeployConfigError(
            f"{source} has {len(r.problems)} invalid setting(s): " + "; ".join(r.problems),
            f"Fix them in {source} (see docs/deploy.md, section Settings).",
        )
    return config


def _regions(r: _Reader, production: bool) -> tuple[str, ...]:
    value = r.value("regions")
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        r.fail("regions", "must be a non-empty list of AWS regions")
        return ()
    bad = [x for x in value if not isinstance(x, str) or not REGION_RE.fullmatch(x)]
    if bad:
        r.fail("regions", f"has invalid AWS region names {bad!r} (like eu-west-1)")
    if len(set(map(str, value))) != len(value):
        r.fail("regions", "lists a region twice")
    if production and len(value) < 2:
        r.fail(
            "regions",
            f"must list at least 2 regions for a production stack, got {len(value)}"
            " (a single region is a single point of failure)",
        )
    return tuple(str(x) for x in value)


def _keyring(r: _Reader, regions: tuple[str, ...]) -> Keyring | None:
    k = r.obj("keyring")
    if not k and not isinstance(r.value("keyring", required=False), dict):
        return None  # missing or not a mapping: already reported
    r.unknown(frozenset({"region", "keyRegion", "pausedRegions"}), "keyring", k)
    region = k.get("region")
    key_region = k.get("keyRegion", region)
    paused = k.get("pausedRegions", [])
    hint = f"one of keyops:regions ({', '.join(regions)})"
    if region is None:
        r.fail("keyring.region", f"is missing: name the keyring secret's primary region, {hint}")
    for key, value in (("keyring.region", region), ("keyring.keyRegion", key_region)):
        if value is not None and value not in regions:
            r.fail(key, f"must be {hint}, got {value!r}")
    if not isinstance(paused, list) or not all(x in regions for x in paused):
        r.fail(
            "keyring.pausedRegions", f"must be a list of regions of keyops:regions, got {paused!r}"
        )
        paused = []
    if region in paused:
        r.fail("keyring.pausedRegions", f"cannot pause the keyring's own region {region}")
    return Keyring(str(region), str(key_region), tuple(paused))


def topic_region(arn: str) -> str:
    """The region of an SNS topic ARN (its fourth field)."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def _statement_ok(statement: Any) -> bool:
    return (
        isinstance(statement, dict)
        and statement.get("Effect") in ("Allow", "Deny")
        and "Action" in statement
        and "Resource" in statement
    )


# -- a new stack's settings (keyops stack add) ---------------------------------------------------

#: Placeholders a new stack file starts with; the deployment needs the real ones.
PLACEHOLDER_ZONE = "Z0REPLACEME"
DEFAULT_REGION = "eu-west-1"
STACKS_DIR = "stacks"

_STARTER = """\
# keyops stack {stack}: written by `keyops stack add`. Every setting is checked before anything is
# planned (docs/deploy.md, Settings). Before the first deploy, set the real domain and its Route 53
# zone, e.g.:
#   pulumi config set --stack {stack} keyops:domain keys.example.com
#   pulumi config set --stack {stack} keyops:hostedZoneId Z0123456789ABC
config:
  keyops:production: {production}{production_note}
  keyops:regions:
{regions}
  keyops:keyring:
    region: {primary}  # the auth keyring's primary region; stays put when regions are reordered
{alarms}  keyops:domain: keys.{stack}.example.com  # placeholder: your domain
  keyops:hostedZoneId: {zone}  # placeholder: its Route 53 hosted zone
  keyops:throttle:
    rateLimit: {rate}  # steady requests per second per region
    burstLimit: {burst}
  keyops:lambda:
    memoryMb: {memory}
    architecture: arm64
    # reservedConcurrency: {concurrency}  # only once the region's unreserved concurrency stays
    #   >= 100 with it (keyops doctor --aws checks; docs/deploy.md, AWS prerequisites)
    timeoutSeconds: 5
  keyops:logRetentionDays: {retention}
  keyops:alarms:
    errors5xx: {errors}
    latencyP99Ms: {latency}
    throttles: {throttles}
    periodSeconds: 60
    evaluationPeriods: 3
  keyops:healthCheck:
    intervalSeconds: {interval}
    failureThreshold: 3
  keyops:bundleTtlDays: 30
"""


def stack_file_path(stack: str) -> str:
    return f"{STACKS_DIR}/Pulumi.{stack}.yaml"


def stack_file_names(root: Path) -> list[str]:
    """The stacks with a ``stacks/Pulumi.<stack>.yaml`` under ``root``, sorted."""
    files = (root / STACKS_DIR).glob("Pulumi.*.yaml")
    names = (p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in files)
    return sorted(n for n in names if STACK_RE.fullmatch(n))


def read_stack_file(root: Path, stack: str, fix: str) -> dict[str, Any]:
    """The ``config:`` mapping of ``stacks/Pulumi.<stack>.yaml``, as YAML gives it.

    A missing or unreadable file, or one without a ``config:`` mapping, is a
    :class:`DeployConfigError` naming the file, with ``fix`` as its remedy.
    """
    rel = stack_file_path(stack)
    if not STACK_RE.fullmatch(stack):
        raise DeployConfigError(f"--stack {stack[:40]!r} is not a stack name", fix)
    try:
        data = yaml.safe_load((root / rel).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeployConfigError(f"{rel} does not exist", fix) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DeployConfigError(f"{rel} cannot be read: {type(exc).__name__}", fix) from None
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise DeployConfigError(f"{rel} has no config: mapping", fix)
    return config


def load_stack_file(root: Path, stack: str) -> DeployConfig:
    """Every setting of ``stacks/Pulumi.<stack>.yaml``, checked as the deploy checks them."""
    fix = f"Create it with keyops stack add {stack} (docs/deploy.md), or check --stack."
    raw = raw_from_stack_file(read_stack_file(root, stack, fix))
    return parse(raw, stack, source=stack_file_path(stack))


def starter_stack_file(stack: str, regions: list[str]) -> str:
    """The text of ``stacks/Pulumi.<stack>.yaml`` for a new stack.

    Two regions or more make a production stack (``production: true``): the schema and the
    CrossGuard pack then keep it multi-region. The sizes are those of the sample stacks: modest
    for one region, production-sized for several.
    """
    regions = regions or [DEFAULT_REGION]
    production = len(regions) >= 2
    lines = [f"    - {regions[0]}"]
    lines += [f"    - {region}" for region in regions[1:]]
    sizes = (
        dict(
            rate=2000, burst=4000, memory=512, concurrency=200, retention=90, errors=10,
            latency=500, throttles=1, interval=10,
        )
        if production
        else dict(
            rate=50, burst=100, memory=256, concurrency=10, retention=14, errors=5, latency=800,
            throttles=10, interval=30,
        )
    )  # fmt: skip
    return _STARTER.format(
        stack=stack,
        production="true" if production else "false",
        production_note="  # several regions: kept multi-region by the schema and CrossGuard"
        if production
        else "",
        regions="\n".join(lines),
        primary=regions[0],
        alarms=(
            "  keyops:alarmEmails:\n"
            f"    - oncall@{stack}.example.com  # placeholder: who is paged\n"
            if production
            else ""
        ),
        zone=PLACEHOLDER_ZONE,
        **sizes,
    )


def raw_from_stack_file(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file as :func:`parse` takes it (prefix removed)."""
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix)}


def is_production(config: Mapping[str, Any]) -> bool:
    """Whether a stack file's ``config:`` mapping declares a production stack."""
    value = config.get(f"{NAMESPACE}:production")
    return value is True or value == "true"
