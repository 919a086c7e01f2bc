"""``keyops doctor --aws``: the read-only AWS prerequisites of a deploy, per stack and region.

For each deploy stack (``stacks/Pulumi.<stack>.yaml``; all of them, or the one of ``--stack``):

- **Lambda concurrency**, in each serving region. ``GetAccountSettings`` gives the account's
  unreserved concurrency. With ``keyops:lambda.reservedConcurrency`` set, the function's current
  reservation (``GetFunctionConcurrency``; none while the function does not exist) is counted
  back, since the deploy replaces it, and Lambda refuses a reservation that leaves fewer than
  100 concurrent executions unreserved: the deploy would fail in that region.
- **Alarm e-mail subscriptions**, in each alarm region. The stack's topic is found by its name
  with ``ListTopics`` (its ARN holds the account id, which nothing else here needs), next to the
  region's ``keyops:alarmTopicArns``; ``ListSubscriptionsByTopic`` shows the e-mail subscriptions
  still ``PendingConfirmation``: until someone clicks the link AWS sent, no alarm reaches them.

Only the read-only calls of :data:`CALLS`. Each failure is a ``FAIL`` line naming the stack and
the region. Missing credentials end the AWS checks at the first call (every other call would
say the same); a region that does not answer is not asked again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from keyops.cli.awsapi import (
    CALL_ERRORS,
    ClientFactory,
    Fixes,
    clients,
    error_code,
    failure,
    no_credentials,
    unreachable,
)
from keyops.cli.doctor_report import FAIL, OK, SKIP, WARN, Report
from keyops.core.errors import AwsError, DeployConfigError
from keyops.core.text import printable
from keyops.deploy.config import DeployConfig, load_stack_file, stack_file_names

#: What Lambda keeps unreserved for the account's other functions.
UNRESERVED_MINIMUM = 100
CALLS = (
    "lambda:GetAccountSettings",
    "lambda:GetFunctionConcurrency",
    "sns:ListTopics",
    "sns:ListSubscriptionsByTopic",
)
_ALLOWED = f"allowed the read-only calls {', '.join(CALLS)} (docs/deploy.md, AWS prerequisites)."
FIXES = Fixes(
    credentials=(
        "Give keyops credentials for the stack's AWS account (AWS_PROFILE, e.g. after aws sso "
        f"login, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), {_ALLOWED}"
    ),
    denied=f"Use credentials {_ALLOWED}",
    other="Check the stack's regions in its Pulumi file, then run keyops doctor --aws again.",
)
#: No count of concurrent executions comes near this; a bigger answer is not a count.
MAX_COUNT = 10_000_000
#: Pages of one listing before an answer that never ends is refused.
MAX_PAGES = 1000
EMAIL_PROTOCOLS = ("email", "email-json")
PENDING = "PendingConfirmation"
#: The screen's topic for the lines about each service.
TOPICS = {"lambda": "lambda", "sns": "alarms"}

T = TypeVar("T")


class _Session:
    """The calls of one ``doctor --aws``: each failure becomes one FAIL line."""

    def __init__(self, report: Report, factory: ClientFactory, endpoint_url: str | None) -> None:
        self.report, self.factory, self.endpoint_url = report, factory, endpoint_url
        #: Regions that did not answer: asked once, never again.
        self.silent: set[str] = set()
        #: No credentials: nothing more to ask anywhere.
        self.stopped = False
        self.failed = False

    def call(
        self, stack: str, region: str, service: str, call: str, run: Callable[[Any], T]
    ) -> T | None:
        if self.stopped or region in self.silent:
            self.failed = True
            return None
        try:
            return run(self.factory(service, region, self.endpoint_url))
        except AwsError as exc:  # an answer that is not what AWS documents
            self.fail(f"{stack}: {exc.what}", exc.fix, TOPICS[service])
        except CALL_ERRORS as exc:
            error = failure(exc, region, call, self.endpoint_url, FIXES)
            if no_credentials(exc):
                self.stopped = True
                self.fail(f"{error.what} (for {call} in {region})", error.fix, "aws")
            else:
                if unreachable(exc):
                    self.silent.add(region)
                self.fail(f"{stack}: {error.what}", error.fix, TOPICS[service])
        return None

    def fail(self, what: str, fix: str, topic: str) -> None:
        self.failed = True
        self.report.add(FAIL, topic, f"{what}. {fix}".strip())


def check(report: Report, root: Path, stack: str | None, endpoint_url: str | None) -> None:
    """Add the AWS lines of ``stack`` (default: every stack with a Pulumi file) to ``report``."""
    names = [stack] if stack else stack_file_names(root)
    if not names:
        report.add(
            WARN,
            "aws",
            "no stacks/Pulumi.<stack>.yaml here, so no AWS prerequisite to check (keyops stack "
            "add NAME writes one)",
        )
        return
    session = _Session(report, clients(), endpoint_url)
    for name in names:
        try:
            config = load_stack_file(root, name)
        except DeployConfigError as exc:
            report.add(FAIL, "aws", f"{exc.what}. {exc.fix}")
            continue
        session.failed = False
        for region in config.regions:
            _concurrency(session, config, region)
        for region in config.alarm_regions:
            _alarm_subscriptions(session, config, region)
        if not session.failed:
            report.aws_ready.append(name)
        if session.stopped:
            return


# -- Lambda concurrency --------------------------------------------------------------------------


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        return None
    return value


def _account_limits(client: Any, region: str) -> tuple[int, int]:
    """``(total, unreserved)`` concurrent executions of the account in the client's region."""
    answer = client.get_account_settings()
    limit = answer.get("AccountLimit") if isinstance(answer, Mapping) else None
    limit = limit if isinstance(limit, Mapping) else {}
    total = _count(limit.get("ConcurrentExecutions"))
    unreserved = _count(limit.get("UnreservedConcurrentExecutions"))
    if total is None or unreserved is None:
        raise AwsError(
            f"lambda:GetAccountSettings in {region} answered without usable counts in "
            "AccountLimit (ConcurrentExecutions, UnreservedConcurrentExecutions)",
            "Run it again; against an emulator, check that it implements GetAccountSettings.",
        )
    return total, unreserved


def _reservation(client: Any, function: str, region: str) -> int:
    """The function's reserved concurrency now: 0 without one, or without the function."""
    try:
        answer = client.get_function_concurrency(FunctionName=function)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return 0  # not deployed yet
        raise
    value = answer.get("ReservedConcurrentExecutions") if isinstance(answer, Mapping) else None
    held = 0 if value is None else _count(value)
    if held is None:
        raise AwsError(
            f"lambda:GetFunctionConcurrency in {region} answered "
            f"ReservedConcurrentExecutions={printable(repr(value), 40)}, not a count",
            "Run it again.",
        )
    return held


def _concurrency(s: _Session, config: DeployConfig, region: str) -> None:
    stack = config.stack
    limits = s.call(
        stack, region, "lambda", "lambda:GetAccountSettings", lambda c: _account_limits(c, region)
    )
    if limits is None:
        return
    total, unreserved = limits
    wanted = config.lambda_.reserved_concurrency
    where = f"{stack} {region}"
    if wanted is None:
        s.report.add(
            OK,
            "lambda",
            f"{where}: {unreserved} of the account's {total} concurrent executions unreserved; "
            "no keyops:lambda.reservedConcurrency (the function shares the unreserved pool)",
        )
        return
    function = config.function_name
    held = s.call(
        stack,
        region,
        "lambda",
        "lambda:GetFunctionConcurrency",
        lambda c: _reservation(c, function, region),
    )
    if held is None:
        return
    # What the function may reserve: the unreserved pool plus what it holds already.
    free = unreserved + held
    counted = f", counting back the {held} {function} holds now" if held else ""
    if free - wanted >= UNRESERVED_MINIMUM:
        s.report.add(
            OK,
            "lambda",
            f"{where}: keyops:lambda.reservedConcurrency {wanted} leaves {free - wanted} of the "
            f"account's {total} concurrent executions unreserved (Lambda needs "
            f"{UNRESERVED_MINIMUM}{counted})",
        )
        return
    quota = total - free + wanted + UNRESERVED_MINIMUM
    most = free - UNRESERVED_MINIMUM
    lower = (
        f"lower keyops:lambda.reservedConcurrency to {most} or less, or remove it"
        if most >= 1
        else "remove keyops:lambda.reservedConcurrency (the function then shares the "
        "unreserved pool)"
    )
    s.fail(
        f"{where}: keyops:lambda.reservedConcurrency {wanted} needs {wanted + UNRESERVED_MINIMUM} "
        f"unreserved concurrent executions ({wanted} for the function, {UNRESERVED_MINIMUM} "
        f"that Lambda keeps for the account's other functions), and only {free} of the "
        f"account's {total} are{counted}: the deploy would fail here",
        f"Ask AWS to raise the Lambda quota 'Concurrent executions' in {region} to {quota} or "
        f"more (Service Quotas), or {lower}.",
        "lambda",
    )


# -- alarm e-mail subscriptions ------------------------------------------------------------------


def _pages(list_page: Callable[..., Any], key: str, region: str, **kwargs: Any) -> Iterator[Any]:
    """The items under ``key`` of every page of a listing that pages with ``NextToken``."""
    token: str | None = None
    for _ in range(MAX_PAGES):
        answer = list_page(**kwargs, **({"NextToken": token} if token else {}))
        answer = answer if isinstance(answer, Mapping) else {}
        items = answer.get(key)
        yield from items if isinstance(items, list) else ()
        token = answer.get("NextToken")
        if not token or not isinstance(token, str):
            return
    raise AwsError(
        f"an SNS listing in {region} did not end after {MAX_PAGES} pages",
        "Run it again; if it persists, check the account's topics by hand.",
    )


def _topics_named(client: Any, name: str, region: str) -> list[str]:
    found = []
    for item in _pages(client.list_topics, "Topics", region):
        arn = item.get("TopicArn") if isinstance(item, Mapping) else None
        if isinstance(arn, str) and arn.rsplit(":", 1)[-1] == name:
            found.append(arn)
    return found


def _pending_emails(client: Any, arn: str, region: str) -> tuple[int, list[str]]:
    """``(e-mail subscriptions, addresses of those pending confirmation)`` of a topic."""
    emails, pending = 0, []
    items = _pages(client.list_subscriptions_by_topic, "Subscriptions", region, TopicArn=arn)
    for item in items:
        if not isinstance(item, Mapping) or item.get("Protocol") not in EMAIL_PROTOCOLS:
            continue
        emails += 1
        if item.get("SubscriptionArn") == PENDING:
            pending.append(printable(str(item.get("Endpoint") or "?"), 254))
    return emails, pending


def _alarm_subscriptions(s: _Session, config: DeployConfig, region: str) -> None:
    stack, name, where = config.stack, config.alarm_topic_name, f"{config.stack} {region}"
    own = s.call(stack, region, "sns", "sns:ListTopics", lambda c: _topics_named(c, name, region))
    if own is None:
        return
    if not own:
        s.report.add(
            SKIP,
            "alarms",
            f"{where}: no topic {name} yet (the first deploy creates it; run keyops doctor --aws "
            "after it to see whether every address of keyops:alarmEmails confirmed)",
        )
    for arn in dict.fromkeys([*own, *config.alarm_topic_arns_in(region)]):
        label = arn.rsplit(":", 1)[-1]
        found = s.call(
            stack,
            region,
            "sns",
            "sns:ListSubscriptionsByTopic",
            functools.partial(_pending_emails, arn=arn, region=region),
        )
        if found is None:
            continue
        emails, pending = found
        if pending:
            s.report.add(
                WARN,
                "alarms",
                f"{where}: {len(pending)} of {emails} e-mail subscription(s) of {label} still "
                f"wait for confirmation ({', '.join(pending)}): until each clicks the link in "
                "AWS's 'Subscription Confirmation' e-mail, no alarm reaches them",
            )
        elif emails:
            s.report.add(
                OK, "alarms", f"{where}: {label}: {emails} e-mail subscription(s), confirmed"
            )
        else:
            s.report.add(OK, "alarms", f"{where}: {label}: no e-mail subscription")
