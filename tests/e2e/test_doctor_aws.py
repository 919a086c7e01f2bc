"""``keyops doctor --aws`` against a real AWS API emulator (moto server, 127.0.0.1), over HTTP.

The dev stack's Pulumi file serves eu-west-1 and us-east-1 (also its alarm regions). moto has no
Lambda ``GetAccountSettings`` and confirms SNS e-mail subscriptions at once, so the ``aws_front``
before it answers those two with canned answers in AWS's wire format (tests/fixtures/aws/);
everything else (functions and their reservations, topics, subscriptions, IAM refusals) is moto's.
"""

from __future__ import annotations

import json

import pytest

from support.aws import FAKE_CREDENTIALS, Answer, AwsFront, Moto
from support.doctor import doctor_lines, run_doctor
from support.net import closed_url
from support.repo import PROJECT, KeyRepo

REGIONS = ("eu-west-1", "us-east-1")
FUNCTION = "keyops-dev-endpoint"
TOPIC = "keyops-dev-alarms"
ALLOWED = (
    "allowed the read-only calls lambda:GetAccountSettings, lambda:GetFunctionConcurrency, "
    "sns:ListTopics, sns:ListSubscriptionsByTopic (docs/deploy.md, AWS prerequisites)."
)


def deploy_stack(repo: KeyRepo, reserved: int | None = None, extra: str = "") -> None:
    """The project's own dev stack file, with a reservation and extra settings if asked."""
    text = (PROJECT / "stacks" / "Pulumi.dev.yaml").read_text()
    if reserved is not None:
        text = text.replace("    timeoutSeconds: 5\n", f"    reservedConcurrency: {reserved}\n"
                            "    timeoutSeconds: 5\n")  # fmt: skip
    repo.write_bytes("stacks/Pulumi.dev.yaml", (text + extra).encode())


def settings(total: int, unreserved: int | str) -> Answer:
    return Answer.canned(
        "lambda-get-account-settings", total=str(total), unreserved=str(unreserved)
    )


def doctor(repo: KeyRepo, url: str, *args: str, process: bool = False, **env: str) -> tuple[
    int, list[str]
]:  # fmt: skip
    return run_doctor(repo, "--aws", "--endpoint-url", url, *args, process=process,
                      **{**FAKE_CREDENTIALS, **env})  # fmt: skip


def aws_lines(out: list[str]) -> list[tuple[str, str, str]]:
    return [
        (s, topic, t) for topic in ("aws", "lambda", "alarms") for s, t in doctor_lines(out, topic)
    ]


def reserve(moto: Moto, region: str, function: str, reserved: int) -> None:
    """A deployed endpoint function in ``region`` that holds ``reserved`` concurrency."""
    iam = moto.client("iam", region)
    role = iam.create_role(
        RoleName=f"{function}-{region}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = moto.client("lambda", region)
    lam.create_function(
        FunctionName=function, Runtime="python3.12", Role=role, Handler="index.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )  # fmt: skip
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=reserved)


def test_no_reservation_and_no_topic_yet_is_ready(keyrepo: KeyRepo, aws_front: AwsFront) -> None:
    deploy_stack(keyrepo)
    aws_front.can("GetAccountSettings", settings(1000, 1000))
    code, out = doctor(keyrepo, aws_front.url, process=True)
    assert code == 0, out
    assert aws_lines(out) == [
        ("ok", "lambda", f"dev {region}: 1000 of the account's 1000 concurrent executions "
         "unreserved; no keyops:lambda.reservedConcurrency (the function shares the unreserved "
         "pool)")
        for region in REGIONS
    ] + [
        ("skip", "alarms", f"dev {region}: no topic {TOPIC} yet (the first deploy creates it; run "
         "keyops doctor --aws after it to see whether every address of keyops:alarmEmails "
         "confirmed)")
        for region in REGIONS
    ]  # fmt: skip
    assert "; AWS is ready for a deploy of dev; " in out[-1]
    # Without a reservation there is no function to ask about.
    assert [name for name, _ in aws_front.seen] == ["GetAccountSettings"] * 2 + ["ListTopics"] * 2
    assert {region for _, region in aws_front.seen} == set(REGIONS)


def test_a_reservation_counts_back_what_the_function_holds(
    keyrepo: KeyRepo, moto: Moto, aws_front: AwsFront
) -> None:
    """The same account numbers in both regions; only eu-west-1's function holds 200 already."""
    deploy_stack(keyrepo, reserved=200)
    reserve(moto, "eu-west-1", FUNCTION, 200)
    aws_front.can("GetAccountSettings", settings(350, 150))
    code, out = doctor(keyrepo, aws_front.url)
    assert code == 1
    assert doctor_lines(out, "lambda") == [
        ("ok", "dev eu-west-1: keyops:lambda.reservedConcurrency 200 leaves 150 of the account's "
         "350 concurrent executions unreserved (Lambda needs 100, counting back the 200 "
         "keyops-dev-endpoint holds now)"),
        ("FAIL", "dev us-east-1: keyops:lambda.reservedConcurrency 200 needs 300 unreserved "
         "concurrent executions (200 for the function, 100 that Lambda keeps for the account's "
         "other functions), and only 150 of the account's 350 are: the deploy would fail here. "
         "Ask AWS to raise the Lambda quota 'Concurrent executions' in us-east-1 to 500 or more "
         "(Service Quotas), or lower keyops:lambda.reservedConcurrency to 50 or less, or remove "
         "it."),
    ]  # fmt: skip
    assert out[-1].startswith("result: 1 problem(s) stop a deploy (FAIL lines); ")


def test_a_new_accounts_quota_cannot_hold_any_reservation(
    keyrepo: KeyRepo, aws_front: AwsFront
) -> None:
    deploy_stack(keyrepo, reserved=200)
    aws_front.can("GetAccountSettings", settings(10, 10))
    code, out = doctor(keyrepo, aws_front.url, "--stack", "dev")
    assert code == 1
    fails = [t for s, t in doctor_lines(out, "lambda") if s == "FAIL"]
    assert fails[0] == (
        "dev eu-west-1: keyops:lambda.reservedConcurrency 200 needs 300 unreserved concurrent "
        "executions (200 for the function, 100 that Lambda keeps for the account's other "
        "functions), and only 10 of the account's 10 are: the deploy would fail here. Ask AWS to "
        "raise the Lambda quota 'Concurrent executions' in eu-west-1 to 300 or more (Service "
        "Quotas), or remove keyops:lambda.reservedConcurrency (the function then shares the "
        "unreserved pool)."
    )
    assert len(fails) == 2
    assert out[-1].startswith("result: 2 problem(s) stop a deploy (FAIL lines); ")


def test_a_pending_email_subscription_is_a_warning(
    keyrepo: KeyRepo, moto: Moto, aws_front: AwsFront
) -> None:
    pager = "arn:aws:sns:us-east-1:123456789012:oncall-pager"
    deploy_stack(keyrepo, extra=f"  keyops:alarmTopicArns:\n    - {pager}\n")
    topics = {region: moto.client("sns", region).create_topic(Name=TOPIC)["TopicArn"]
              for region in REGIONS}  # fmt: skip
    moto.client("sns", "us-east-1").create_topic(Name="oncall-pager")
    moto.client("sns", "us-east-1").create_topic(Name="keyops-dev-alarms-old")  # not the stack's
    moto.client("sns", "us-east-1").subscribe(
        TopicArn=topics["us-east-1"], Protocol="email", Endpoint="lead@example.com"
    )
    aws_front.can("GetAccountSettings", settings(1000, 1000))
    pending = Answer.canned("sns-subscriptions-pending", topic=topics["eu-west-1"])
    aws_front.can("ListSubscriptionsByTopic", pending, region="eu-west-1")
    code, out = doctor(keyrepo, aws_front.url)
    assert code == 0, out
    assert doctor_lines(out, "alarms") == [
        ("warn", f"dev eu-west-1: 1 of 2 e-mail subscription(s) of {TOPIC} still wait for "
         "confirmation (oncall@example.com): until each clicks the link in AWS's 'Subscription "
         "Confirmation' e-mail, no alarm reaches them"),
        ("ok", f"dev us-east-1: {TOPIC}: 1 e-mail subscription(s), confirmed"),
        ("ok", "dev us-east-1: oncall-pager: no e-mail subscription"),
    ]  # fmt: skip
    assert "; AWS is ready for a deploy of dev; " in out[-1]  # a warning does not stop a deploy
    listed = [(n, r) for n, r in aws_front.seen if n == "ListSubscriptionsByTopic"]
    assert (
        listed
        == [("ListSubscriptionsByTopic", "eu-west-1")]
        + [("ListSubscriptionsByTopic", "us-east-1")] * 2
    )


def test_access_denied_names_each_region_and_the_calls_to_allow(
    keyrepo: KeyRepo, moto: Moto, aws_front: AwsFront
) -> None:
    """Lambda refuses (canned: moto has no GetAccountSettings to refuse); moto's IAM refuses SNS."""
    deploy_stack(keyrepo)
    aws_front.can("GetAccountSettings", Answer.canned("lambda-access-denied"))
    with moto.allowed_only("logs:*") as env:
        code, out = doctor(keyrepo, aws_front.url, **env)
    assert code == 1
    assert aws_lines(out) == [
        ("FAIL", "lambda", f"dev: AWS denied lambda:GetAccountSettings in {region} "
         f"(AccessDeniedException). Use credentials {ALLOWED}")
        for region in REGIONS
    ] + [
        ("FAIL", "alarms", f"dev: AWS denied sns:ListTopics in {region} (AccessDenied). Use "
         f"credentials {ALLOWED}")
        for region in REGIONS
    ]  # fmt: skip
    assert env["AWS_SECRET_ACCESS_KEY"] not in "\n".join(out)
    assert out[-1].startswith("result: 4 problem(s) stop a deploy (FAIL lines); ")


@pytest.mark.parametrize(
    ("env", "what"),
    [
        ({}, "no AWS credentials were found"),
        ({"AWS_PROFILE": "nope"}, "the AWS profile 'nope' is not configured"),
    ],
)
def test_no_credentials_is_one_line_and_nothing_is_asked(
    keyrepo: KeyRepo, aws_front: AwsFront, env: dict[str, str], what: str
) -> None:
    deploy_stack(keyrepo)
    code, out = run_doctor(
        keyrepo, "--aws", "--endpoint-url", aws_front.url, AWS_EC2_METADATA_DISABLED="true", **env
    )
    assert code == 1
    assert aws_lines(out) == [(
        "FAIL", "aws", f"{what} (for lambda:GetAccountSettings in eu-west-1). Give keyops "
        "credentials for the stack's AWS account (AWS_PROFILE, e.g. after aws sso login, or "
        f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), {ALLOWED}",
    )]  # fmt: skip
    assert aws_front.seen == []


def test_a_region_that_does_not_answer_is_asked_once(keyrepo: KeyRepo) -> None:
    deploy_stack(keyrepo)
    url = closed_url()
    code, out = doctor(keyrepo, url)
    assert code == 1
    assert aws_lines(out) == [
        ("FAIL", "lambda", f"dev: region {region} does not answer (lambda:GetAccountSettings at "
         f"{url}). Check the network, the regions in the stack's Pulumi file, or --endpoint-url.")
        for region in REGIONS
    ]  # fmt: skip


UNUSABLE = (
    "dev: lambda:GetAccountSettings in eu-west-1 answered without usable counts in AccountLimit "
    "(ConcurrentExecutions, UnreservedConcurrentExecutions). Run it again; against an emulator, "
    "check that it implements GetAccountSettings."
)


@pytest.mark.parametrize(
    ("unreserved", "text"),
    [
        ("-5", UNUSABLE),
        ("null", UNUSABLE),
        ("12345678901234567890", UNUSABLE),
        # botocore's own parser raises on these, outside its exception tree.
        ('{"n": 5}', "TypeError"),
        ('"lots"', "ValueError"),
        ("1e400", "OverflowError"),
        ("[" * 100_000 + "]" * 100_000, "RecursionError"),
    ],
    ids=["negative", "null", "huge", "object", "text", "infinite", "deep"],
)
def test_an_account_settings_answer_without_counts_is_a_clear_failure(
    keyrepo: KeyRepo, aws_front: AwsFront, unreserved: str, text: str
) -> None:
    deploy_stack(keyrepo)
    aws_front.can("GetAccountSettings", settings(1000, unreserved))
    code, out = doctor(keyrepo, aws_front.url)
    assert code == 1
    if text != UNUSABLE:
        text = (
            "dev: lambda:GetAccountSettings in eu-west-1 got an answer the AWS SDK cannot read "
            f"({text}). Check that {aws_front.url} is AWS (or an emulator of it), then run it "
            "again."
        )
    assert doctor_lines(out, "lambda") == [
        ("FAIL", text),
        ("FAIL", text.replace("eu-west-1", "us-east-1")),
    ]


def test_without_aws_nothing_is_asked(keyrepo: KeyRepo, aws_front: AwsFront) -> None:
    deploy_stack(keyrepo)
    code, out = run_doctor(keyrepo, **FAKE_CREDENTIALS)
    assert code == 0, out
    assert aws_lines(out) == []
    assert "AWS is ready" not in out[-1]
    assert aws_front.seen == []
