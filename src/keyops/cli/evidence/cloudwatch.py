"""Adoption of a deployed stack from CloudWatch, summed over every region it runs in.

Each answer of the endpoint writes one Embedded Metric Format line (keyops.endpoint.emf), from
which CloudWatch makes the metric ``Served`` (namespace ``keyops``, dimensions ``Stack``,
``Client``, ``Credential``, ``Held``) and keeps the line, with its ``install`` hash, in the
function's log group. Two methods:

- **requests** (default): ``GetMetricData`` sums ``Served`` per held credential over the window
  in each region, then over the regions. The metric names are built from the repository's client
  files (every credential id, as served and as held), so no ``ListMetrics`` is needed: the
  adoption-reader role only allows ``cloudwatch:GetMetricData`` and the Logs Insights calls.
- **distinct** (``--distinct``): a Logs Insights query per region counts distinct install hashes
  per held credential (``count_distinct``) and per client. Logs Insights answers per region, so
  an install seen in two regions counts in both; with latency routing an install stays in one
  region almost always. ``count_distinct`` is exact up to a high cardinality and approximate
  beyond it (CloudWatch documents it as an estimate for very many values).

A region with no data is named in the evidence (never counted as zero traffic); every AWS failure
is an :class:`~keyops.core.errors.AwsError` (exit 2) saying which region and what to do.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from botocore.exceptions import ClientError

from keyops.cli.awsapi import CALL_ERRORS, ClientFactory, Fixes, failure
from keyops.cli.awsapi import clients as aws_clients
from keyops.cli.evidence.deployment import Deployment
from keyops.cli.evidence.tally import Tally
from keyops.core.errors import AwsError
from keyops.endpoint.emf import HELD_UNKNOWN, NAMESPACE, SERVED
from keyops.endpoint.installs import NONE

PERIOD_SECONDS = 86400
MAX_QUERIES_PER_CALL = 500
QUERY_TIMEOUT_SECONDS = 300.0
POLL_SECONDS = 1.0
FIXES = Fixes(
    credentials=(
        "Use credentials that may call cloudwatch:GetMetricData and the Logs Insights queries on "
        "the endpoint's log groups (the stack's adoption-reader role; in CI, assume it with "
        "aws-actions/configure-aws-credentials)."
    ),
    other="Check the stack's Pulumi file and that the endpoint is deployed there.",
)


class LogsClient(Protocol):
    """The two Logs Insights calls used (the seam tests replace with a recorded answer)."""

    def start_query(self, **kwargs: Any) -> dict[str, Any]: ...

    def get_query_results(self, **kwargs: Any) -> dict[str, Any]: ...


# -- requests: GetMetricData ---------------------------------------------------------------------


def _metric(stack: str, name: str, dims: Mapping[str, str]) -> dict[str, Any]:
    dimensions = [{"Name": "Stack", "Value": stack}]
    dimensions += [{"Name": k, "Value": v} for k, v in dims.items()]
    return {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions}


def metric_queries(
    stack: str, clients: Mapping[str, Sequence[str]]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(client, held, metric name, query)`` for every Served and HeldUnknown series."""
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    for client in sorted(clients):
        ids = sorted(set(clients[client]))
        for served in ids:
            series = [(SERVED, held, {"Held": held}) for held in [*ids, NONE]]
            series.append((HELD_UNKNOWN, "", {}))
            for name, held, extra in series:
                dims = {"Client": client, "Credential": served, **extra}
                query = {
                    "Id": f"m{len(out)}",
                    "MetricStat": {
                        "Metric": _metric(stack, name, dims),
                        "Period": PERIOD_SECONDS,
                        "Stat": "Sum",
                        "Unit": "Count",
                    },
                    "ReturnData": True,
                }
                out.append((client, held, name, query))
    return out


def served_tallies(
    deployment: Deployment,
    clients: Mapping[str, Sequence[str]],
    start: dt.datetime,
    end: dt.datetime,
    *,
    endpoint_url: str | None,
    factory: ClientFactory | None = None,
) -> list[Tally]:
    queries = metric_queries(deployment.credentials_stack, clients)
    factory = factory or aws_clients()
    tallies = []
    for region in deployment.regions:
        tally = Tally(f"cloudwatch {region}")
        seen_any = False
        try:
            client = factory("cloudwatch", region, endpoint_url)
            for at in range(0, len(queries), MAX_QUERIES_PER_CALL):
                chunk = queries[at : at + MAX_QUERIES_PER_CALL]
                by_id = {q[3]["Id"]: q for q in chunk}
                for result in _metric_data(client, [q[3] for q in chunk], start, end):
                    query = by_id.get(result.get("Id")) if isinstance(result, dict) else None
                    if query is None:
                        continue  # an answer to nothing asked (hostile or buggy): not evidence
                    app, held, name, _ = query
                    values = result.get("Values") or []
                    seen_any = seen_any or bool(values)
                    value = int(sum(float(v) for v in values))
                    if name == HELD_UNKNOWN:
                        tally.unknown[app] += value
                    elif held != NONE:
                        tally.held[(app, held)] += value
                        tally.total[app] += value
        except CALL_ERRORS as exc:
            raise failure(exc, region, "cloudwatch:GetMetricData", endpoint_url, FIXES) from None
        if not seen_any:
            tally.note = (
                f"no Served data for stack {deployment.credentials_stack} in the window (is the "
                "endpoint deployed there and getting traffic?)"
            )
        tallies.append(tally)
    return tallies


def _metric_data(
    client: Any, queries: list[dict[str, Any]], start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        if token:
            kwargs["NextToken"] = token
        answer = client.get_metric_data(**kwargs)
        results.extend(answer.get("MetricDataResults") or [])
        token = answer.get("NextToken")
        if not token:
            return results


# -- distinct installs: Logs Insights ------------------------------------------------------------


def insights_queries(stack: str) -> tuple[str, str]:
    """Distinct installs per (client, held), and per client, among answers naming a key."""
    where = (
        f'filter ispresent({SERVED}) and ispresent(install) and Stack = "{stack}" '
        f'and Held != "{NONE}"'
    )
    return (
        f"{where} | stats count_distinct(install) as installs by Client, Held",
        f"{where} | stats count_distinct(install) as installs by Client",
    )


def distinct_tallies(
    deployment: Deployment,
    clients: Mapping[str, Sequence[str]],
    start: dt.datetime,
    end: dt.datetime,
    *,
    endpoint_url: str | None,
    factory: ClientFactory | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Tally]:
    per_held, per_client = insights_queries(deployment.credentials_stack)
    factory = factory or aws_clients()
    tallies = []
    for region in deployment.regions:
        tally = Tally(f"cloudwatch logs {region}")
        try:
            logs = factory("logs", region, endpoint_url)
            run = _Insights(logs, deployment.log_group, start, end, sleep)
            held_rows = run.rows(per_held, ("Client", "Held", "installs"), region)
            client_rows = run.rows(per_client, ("Client", "installs"), region)
        except CALL_ERRORS as exc:
            raise failure(exc, region, "logs:StartQuery", endpoint_url, FIXES) from None
        for row in held_rows:
            if row["Client"] in clients and row["Held"] in clients[row["Client"]]:
                tally.held[(row["Client"], row["Held"])] += _installs(row, region)
        for row in client_rows:
            if row["Client"] in clients:
                tally.total[row["Client"]] += _installs(row, region)
        if tally.empty:
            tally.note = (
                f"no install hashes for stack {deployment.credentials_stack} in "
                f"{deployment.log_group} in the window (no traffic, no log group, or a stack "
                "file without adoption.secret)"
            )
        tallies.append(tally)
    return tallies


def _installs(row: Mapping[str, str], region: str) -> int:
    value = row["installs"]
    if not value.isdigit() or len(value) > 15:
        raise AwsError(
            f"Logs Insights in {region} answered installs={value[:20]!r}, not a count",
            "Report this; the query's answer is not what keyops expects.",
        )
    return int(value)


class _Insights:
    def __init__(
        self,
        logs: LogsClient,
        group: str,
        start: dt.datetime,
        end: dt.datetime,
        sleep: Callable[[float], None],
    ) -> None:
        self.logs, self.group, self.sleep = logs, group, sleep
        self.start, self.end = int(start.timestamp()), int(end.timestamp())

    def rows(self, query: str, fields: tuple[str, ...], region: str) -> list[dict[str, str]]:
        try:
            started = self.logs.start_query(
                logGroupNames=[self.group],
                startTime=self.start,
                endTime=self.end,
                queryString=query,
                limit=10000,
            )
        except ClientError as exc:
            if (exc.response.get("Error") or {}).get("Code") == "ResourceNotFoundException":
                return []  # no log group: no traffic ever reached this region
            raise
        query_id = started["queryId"]
        waited = 0.0
        while True:
            answer = self.logs.get_query_results(queryId=query_id)
            status = answer.get("status")
            if status == "Complete":
                break
            if status not in ("Scheduled", "Running"):
                raise AwsError(
                    f"the Logs Insights query in {region} ended {status}",
                    "Run it again; if it keeps failing, narrow --days.",
                )
            if waited >= QUERY_TIMEOUT_SECONDS:
                raise AwsError(
                    f"the Logs Insights query in {region} did not finish in "
                    f"{QUERY_TIMEOUT_SECONDS:g} s",
                    "Run it again, or narrow --days.",
                )
            self.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
        return [_row(item, fields, region) for item in answer.get("results") or []]


def _row(item: Any, fields: tuple[str, ...], region: str) -> dict[str, str]:
    row = (
        {str(cell.get("field")): str(cell.get("value")) for cell in item if isinstance(cell, dict)}
        if isinstance(item, list)
        else {}
    )
    missing = [f for f in fields if f not in row]
    if missing:
        got = ", ".join(sorted(row)) or "nothing"
        raise AwsError(
            f"Logs Insights in {region} answered a row without {', '.join(missing)} (it had "
            f"{got}); the query was not evaluated as keyops asked",
            "Check that the endpoint writes EMF lines to this log group; an emulator that does "
            "not run Logs Insights queries cannot give distinct installs.",
        )
    return row
