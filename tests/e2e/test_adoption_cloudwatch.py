"""``keyops adoption --from cloudwatch`` against a real AWS API emulator (moto server, 127.0.0.1).

The dev stack's Pulumi file names three regions here; Served metrics are put in two of them, as
CloudWatch extracts them from the endpoint's EMF lines. Asserted: each region's numbers, the
cross-region sum, the region with no data named, access denied and a region that does not
answer (exit 2, clear messages), and ``keyops retire`` accepting or refusing on the cross-region
share. moto does not evaluate Logs Insights queries (a stats query completes with only ``@ptr``
fields), so ``--distinct`` is tested through the logs client seam with a recorded
``GetQueryResults`` answer, and against moto for the clear error it must give.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from keyops.policy.evidence import load_adoption
from support.aws import FAKE_CREDENTIALS, Moto
from support.net import closed_url
from support.repo import PROJECT, KeyRepo

REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-1")
RECORDED = PROJECT / "tests" / "fixtures" / "cloudwatch" / "insights-distinct.json"
NEW, OLD = "ios-2026-11", "ios-2026-05"


def with_deployment(repo: KeyRepo, stack: str = "dev", extra: str = "") -> None:
    regions = "\n".join(f"    - {r}" for r in REGIONS)
    repo.write_bytes(
        f"stacks/Pulumi.{stack}.yaml",
        f"config:\n  keyops:production: false\n{extra}  keyops:regions:\n{regions}\n".encode(),
    )


def put(moto: Moto, eu_old: int, us_old: int) -> None:
    """1,000 answers naming a key in each of two regions, plus answers that name none."""
    eu = {("ios", NEW, NEW): 1000 - eu_old, ("ios", NEW, OLD): eu_old, ("ios", NEW, "none"): 400}
    moto.put_served("eu-west-1", "dev", eu)
    moto.put_served(
        "us-east-1", "dev", {("ios", NEW, NEW): 1000 - us_old, ("ios", NEW, OLD): us_old}
    )


def adoption(repo: KeyRepo, url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return repo.run(
        "adoption", "--from", "cloudwatch", "--endpoint-url", url, *args,
        env={**FAKE_CREDENTIALS, **(env or {})},
    )  # fmt: skip


def test_served_is_summed_across_regions_and_the_empty_region_is_named(
    keyrepo: KeyRepo, moto: Moto, tmp_path: Path
) -> None:
    with_deployment(keyrepo)
    put(moto, eu_old=5, us_old=25)
    out = tmp_path / "adoption.json"
    proc = adoption(keyrepo, moto.url, "--stack", "dev", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    evidence = load_adoption(out)
    old = evidence[OLD]
    assert (old.percent, old.count, old.total, old.unit) == (1.5, 30.0, 2000.0, "requests")
    assert (old.method, old.stack, old.client) == ("cloudwatch-requests", "dev", "ios")
    empty = (
        "cloudwatch ap-southeast-1: no Served data for stack dev in the window (is the endpoint "
        "deployed there and getting traffic?)"
    )
    assert [s.describe() for s in old.sources] == [
        "cloudwatch eu-west-1 5/1,000",
        "cloudwatch us-east-1 25/1,000",
        empty,
    ]
    assert evidence[NEW].percent == 98.5
    document = json.loads(out.read_text())
    assert (document["format"], document["method"]) == ("keyops-adoption/2", "cloudwatch-requests")
    assert document["notes"] == [empty]
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(
        "adoption of stack dev from CloudWatch (answers by held credential from the CloudWatch "
        "metric Served, summed over eu-west-1, us-east-1, ap-southeast-1), "
    )
    assert lines[1] == (
        f"  {OLD}: 1.5% = 30 of 2,000 requests, cloudwatch-requests (cloudwatch eu-west-1 "
        f"5/1,000, cloudwatch us-east-1 25/1,000, {empty})"
    )
    assert lines[3] == f"  note: {empty}"


def test_the_stack_dimension_is_the_credentials_stack(keyrepo: KeyRepo, moto: Moto) -> None:
    with_deployment(keyrepo, "prod-eu", extra="  keyops:credentialsStack: dev\n")
    put(moto, eu_old=5, us_old=5)
    proc = adoption(keyrepo, moto.url, "--stack", "prod-eu")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["credentials"][OLD]["percent"] == 0.5


@pytest.mark.parametrize(("us_old", "refused"), [(25, True), (5, False)])
def test_retire_accepts_or_refuses_on_the_cross_region_share(
    keyrepo: KeyRepo, moto: Moto, tmp_path: Path, us_old: int, refused: bool
) -> None:
    """eu-west-1 alone says 0.5%; only the sum over regions tells whether retiring is safe."""
    with_deployment(keyrepo)
    keyrepo.commit("deployment settings")
    put(moto, eu_old=5, us_old=us_old)
    out = tmp_path / "adoption.json"
    assert adoption(keyrepo, moto.url, "--stack", "dev", "--out", str(out)).returncode == 0
    retire = keyrepo.run(
        "retire", "--stack", "dev", "--client", "ios", "--id", OLD, "--now", "2026-12-10",
        "--allow-future", "--adoption", str(out),
    )  # fmt: skip
    if refused:
        assert retire.returncode == 1
        assert "nothing was written" in retire.stderr
        assert (
            f"error[adoption] {OLD} is still used by 1.5% of requests; "
            "max_retire_adoption_percent is 1%: keep it retiring until fewer installs use it "
            "(evidence: 30 of 2,000 requests; answers by held credential from the CloudWatch "
            "metric Served; "
        ) in retire.stderr
        assert "sources: cloudwatch eu-west-1 5/1,000, cloudwatch us-east-1 25/1,000, " in (
            retire.stderr
        )
        assert keyrepo.git("status", "--porcelain") == ""
    else:
        assert retire.returncode == 0, retire.stderr
        assert f"  {OLD}: retiring → retired, adoption 0.5% = 10 of 2,000 requests" in (
            retire.stdout
        )
        assert (
            f"  note[adoption] {OLD} is used by 0.5% of requests, at or below "
            "max_retire_adoption_percent 1% (evidence: 10 of 2,000 requests; "
        ) in retire.stdout


def test_access_denied_is_a_clear_error(keyrepo: KeyRepo, moto: Moto) -> None:
    with_deployment(keyrepo)
    with moto.allowed_only("logs:*") as env:
        proc = adoption(keyrepo, moto.url, "--stack", "dev", env=env)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: AWS denied cloudwatch:GetMetricData in eu-west-1 (HTTP 403). Use credentials "
        "that may call cloudwatch:GetMetricData and the Logs Insights queries on the endpoint's "
        "log groups (the stack's adoption-reader role; in CI, assume it with "
        "aws-actions/configure-aws-credentials).\n"
    )
    assert env["AWS_SECRET_ACCESS_KEY"] not in proc.stderr


def test_a_region_that_does_not_answer_is_a_clear_error(keyrepo: KeyRepo) -> None:
    with_deployment(keyrepo)
    url = closed_url()
    proc = adoption(keyrepo, url, "--stack", "dev")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: region eu-west-1 does not answer (cloudwatch:GetMetricData at {url}). Check "
        "the network, the regions in the stack's Pulumi file, or --endpoint-url.\n"
    )


def test_no_credentials_is_a_clear_error(keyrepo: KeyRepo, moto: Moto) -> None:
    with_deployment(keyrepo)
    proc = keyrepo.run(
        "adoption", "--from", "cloudwatch", "--stack", "dev", "--endpoint-url", moto.url,
        env={"AWS_EC2_METADATA_DISABLED": "true"},
    )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("error: no AWS credentials were found. Use credentials ")


def test_no_data_in_any_region_is_an_error_not_zero_traffic(keyrepo: KeyRepo, moto: Moto) -> None:
    with_deployment(keyrepo)
    proc = adoption(keyrepo, moto.url, "--stack", "dev")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: no adoption data for stack dev in any of its regions (eu-west-1, us-east-1, "
        "ap-southeast-1) in the last 14 days. Check that the endpoint is deployed and writes its "
        "metric lines; see docs/rotation.md.\n"
    )


def test_for_change_without_a_served_retirement_fetches_nothing(keyrepo: KeyRepo) -> None:
    with_deployment(keyrepo)
    base = keyrepo.commit("deployment settings")
    # No credentials and a closed endpoint: nothing may be fetched, so nothing fails.
    proc = keyrepo.run(
        "adoption", "--from", "cloudwatch", "--for-change", base, "--endpoint-url", closed_url(),
        env={"AWS_EC2_METADATA_DISABLED": "true"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["credentials"] == {}
    assert document["notes"] == [
        f"no served credential is retired by the change from {base}: nothing fetched"
    ]


def test_for_change_with_a_served_retirement_fetches_that_stack(
    keyrepo: KeyRepo, moto: Moto
) -> None:
    with_deployment(keyrepo)
    base = keyrepo.commit("deployment settings")
    doc = keyrepo.decrypt("credentials/dev/ios.yaml")
    doc["credentials"][1].update(state="retired", retired="2026-12-10")
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    keyrepo.commit("retire ios-2026-05")
    put(moto, eu_old=5, us_old=5)
    proc = adoption(keyrepo, moto.url, "--for-change", base)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["credentials"][OLD]["percent"] == 0.5


# -- --distinct: Logs Insights -------------------------------------------------------------------


class RecordedLogs:
    """The Logs Insights seam: answers GetQueryResults from a recorded response per query."""

    def __init__(self, region: str, recorded: dict[str, Any]) -> None:
        self.answers = recorded[region]
        self.queries: list[dict[str, Any]] = []

    def start_query(self, **kwargs: Any) -> dict[str, Any]:
        self.queries.append(kwargs)
        return {"queryId": str(len(self.queries) - 1)}

    def get_query_results(self, *, queryId: str) -> dict[str, Any]:
        query = self.queries[int(queryId)]["queryString"]
        kind = "per_held" if query.endswith("by Client, Held") else "per_client"
        answer: dict[str, Any] = self.answers[kind]
        return answer


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, RecordedLogs]:
    """Logs clients that answer from the recorded GetQueryResults of each region."""
    from keyops.cli.evidence import cloudwatch

    data = json.loads(RECORDED.read_text())
    clients = {region: RecordedLogs(region, data) for region in REGIONS}

    def factory() -> Any:
        def make(service: str, region: str, endpoint_url: str | None) -> Any:
            assert service == "logs"
            return clients[region]

        return make

    monkeypatch.setattr(cloudwatch, "aws_clients", factory)
    return clients


def test_distinct_installs_from_logs_insights(
    keyrepo: KeyRepo, recorded: dict[str, RecordedLogs], tmp_path: Path
) -> None:
    with_deployment(keyrepo)
    out = tmp_path / "adoption.json"
    proc = keyrepo.run(
        "adoption", "--from", "cloudwatch", "--distinct", "--stack", "dev", "--days", "7",
        "--now", "2026-12-01T10:00:00Z", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    old = load_adoption(out)[OLD]
    assert (old.percent, old.count, old.total, old.unit) == (0.429, 12.0, 2800.0, "installs")
    assert old.method == "cloudwatch-distinct"
    assert old.window is not None
    assert old.window.describe() == "2026-11-24T10:00:00Z to 2026-12-01T10:00:00Z"
    assert [s.describe() for s in old.sources] == [
        "cloudwatch logs eu-west-1 8/2,000",
        "cloudwatch logs us-east-1 4/800",
        "cloudwatch logs ap-southeast-1: no install hashes for stack dev in "
        "/aws/lambda/keyops-dev-endpoint in the window (no traffic, no log group, or a stack "
        "file without adoption.secret)",
    ]
    assert load_adoption(out)["web-2026-06"].percent == 100.0
    # The queries: the function's log group, the window, count_distinct of the install hash.
    query = recorded["eu-west-1"].queries[0]
    assert query["logGroupNames"] == ["/aws/lambda/keyops-dev-endpoint"]
    end = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
    window = (end - dt.timedelta(days=7)).timestamp(), end.timestamp()
    assert (query["startTime"], query["endTime"]) == tuple(map(int, window))
    assert query["queryString"] == (
        'filter ispresent(Served) and ispresent(install) and Stack = "dev" and Held != "none" '
        "| stats count_distinct(install) as installs by Client, Held"
    )
    assert "distinct install hashes from CloudWatch Logs Insights count_distinct" in proc.stderr


def test_distinct_against_an_emulator_that_does_not_run_queries_is_a_clear_error(
    keyrepo: KeyRepo, moto: Moto
) -> None:
    with_deployment(keyrepo)
    logs = moto.client("logs", "eu-west-1")
    group = "/aws/lambda/keyops-dev-endpoint"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="one")
    now_ms = int(time.time() * 1000)
    line = {"Stack": "dev", "Client": "ios", "Held": OLD, "Served": 1, "install": "0" * 16}
    logs.put_log_events(
        logGroupName=group,
        logStreamName="one",
        logEvents=[{"timestamp": now_ms - 60_000, "message": json.dumps(line)}],
    )
    proc = adoption(keyrepo, moto.url, "--distinct", "--stack", "dev")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: Logs Insights in eu-west-1 answered a row without Client, Held, installs (it had "
        "@ptr); the query was not evaluated as keyops asked. Check that the endpoint writes EMF "
        "lines to this log group; an emulator that does not run Logs Insights queries cannot "
        "give distinct installs.\n"
    )


class Polling(RecordedLogs):
    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.queries = []

    def get_query_results(self, *, queryId: str) -> dict[str, Any]:
        return {"status": self.statuses.pop(0) if self.statuses else "Complete", "results": []}


@pytest.mark.parametrize(
    ("statuses", "message"),
    [
        (["Running", "Running", "Complete"], None),
        (["Running", "Failed"], "the Logs Insights query in eu-west-1 ended Failed"),
    ],
)
def test_queries_are_polled_until_they_end(statuses: list[str], message: str | None) -> None:
    from keyops.cli.evidence import cloudwatch
    from keyops.cli.evidence.deployment import Deployment
    from keyops.core.errors import AwsError

    waits: list[float] = []
    logs = Polling(statuses)
    deployment = Deployment("dev", "dev", ("eu-west-1",))
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    run = lambda: cloudwatch.distinct_tallies(  # noqa: E731
        deployment, {"ios": (OLD,)}, start, start, endpoint_url=None,
        factory=lambda *_: logs, sleep=waits.append,
    )  # fmt: skip
    if message is None:
        assert run()[0].note is not None
        assert waits == [1.0, 1.0]
    else:
        with pytest.raises(AwsError, match=message):
            run()


def test_the_pr_workflow_fetches_and_checks_evidence(
    keyrepo: KeyRepo, recorded: dict[str, RecordedLogs]
) -> None:
    """pr.yml's adoption and check lines, as they are, on a pull request retiring ios-2026-05.

    Logs Insights answers through the recorded seam (moto does not evaluate queries).
    """
    from support.workflows import load, steps

    runs = [s["run"] for _, s in steps(load("pr.yml")) if "run" in s]
    fetch = next(r for r in runs if r.startswith("keyops adoption"))
    check = next(r for r in runs if r.startswith("keyops check"))
    with_deployment(keyrepo)
    keyrepo.git("update-ref", "refs/remotes/origin/main", keyrepo.commit("deployment settings"))
    keyrepo.git("checkout", "--quiet", "-b", "retire-ios")
    doc = keyrepo.decrypt("credentials/dev/ios.yaml")
    doc["credentials"][1].update(state="retired", retired="2026-12-10")
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    keyrepo.commit("retire ios-2026-05")

    proc = keyrepo.run(*shlex.split(fetch.replace("$BASE_REF", "main"))[1:], env=FAKE_CREDENTIALS)
    assert proc.returncode == 0, proc.stderr
    assert recorded["eu-west-1"].queries, "the evidence was fetched"
    argv = shlex.split(check.replace("$BASE_REF", "main"))[1:-2]  # without '> keyops.sarif'
    sarif = keyrepo.run(*argv, "--now", "2026-12-10")
    assert sarif.returncode == 0, sarif.stdout
    (result,) = [
        r for r in json.loads(sarif.stdout)["runs"][0]["results"] if r["ruleId"] == "adoption"
    ]
    assert result["level"] == "note"
    assert result["message"]["text"].startswith(
        "ios-2026-05 is used by 0.429% of installs, at or below max_retire_adoption_percent 1% "
        "(evidence: 12 of 2,800 installs; distinct install hashes from CloudWatch Logs Insights "
        "count_distinct; "
    )
    assert (
        "sources: cloudwatch logs eu-west-1 8/2,000, cloudwatch logs us-east-1 4/800, "
        in (result["message"]["text"])
    )
