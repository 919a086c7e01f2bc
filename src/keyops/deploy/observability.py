"""What operators and the retirement gate read in each region: a dashboard and a saved query.

The endpoint writes one CloudWatch Embedded Metric Format line per answer to its log group
(namespace ``keyops``): metric ``Served`` with the dimensions ``Stack``, ``Client``, ``Credential``
and ``Held``, ``HeldUnknown`` (``Stack``, ``Client``, ``Credential``) for a held id the client does
not have, ``Errors`` with the dimensions ``Stack`` and ``Code`` (so stacks sharing an account and
region stay apart), and the property ``install`` (a truncated HMAC of the install id, never a
dimension). CloudWatch turns those lines into metrics in the function's region; the dashboard
shows them next to API Gateway's latency, and the saved Logs Insights query counts distinct
installs per client and held credential from the same lines.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from keyops.deploy.config import DeployConfig

NAMESPACE = "keyops"
#: Distinct installs per client and held credential, from the Served lines of the function's
#: log group (count_distinct is approximate for very many values: see docs/deploy.md).
DISTINCT_INSTALLS_QUERY = (
    "filter ispresent(Served) and ispresent(install)\n"
    "| stats count_distinct(install) by Client, Held"
)
PERIOD = 300


def _search(terms: str, stat: str, ident: str, label: str) -> list[dict[str, Any]]:
    """A metric-math SEARCH: every metric matching ``terms``, one line per dimension set."""
    return [{"expression": f"SEARCH('{terms}', '{stat}', {PERIOD})", "id": ident, "label": label}]


def _widget(
    title: str, region: str, metrics: list[Any], y: int, x: int = 0, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "period": PERIOD,
            "metrics": metrics,
            **extra,
        },
    }


def dashboard_body(stack: str, region: str, api_id: str, function_name: str) -> str:
    """The dashboard of one stack in one region, as CloudWatch's JSON."""
    served = f'Namespace="{NAMESPACE}" MetricName="Served" Stack="{stack}"'
    api = ["AWS/ApiGateway", "Latency", "ApiId", api_id, "Stage", "$default"]
    widgets = [
        _widget(
            "Answers by client, credential and held (Served)",
            region,
            [_search(served, "Sum", "served", "")],
            y=0,
            stat="Sum",
        ),
        _widget(
            "Held ids the client does not have (HeldUnknown)",
            region,
            [
                _search(
                    f'Namespace="{NAMESPACE}" MetricName="HeldUnknown" Stack="{stack}"',
                    "Sum",
                    "unknown",
                    "",
                )
            ],
            y=0,
            x=12,
            stat="Sum",
        ),
        _widget(
            "Errors by code",
            region,
            [
                _search(
                    f'Namespace="{NAMESPACE}" MetricName="Errors" Stack="{stack}"',
                    "Sum",
                    "errors",
                    "",
                ),
                ["AWS/ApiGateway", "5xx", "ApiId", api_id, "Stage", "$default", {"stat": "Sum"}],
                ["AWS/ApiGateway", "4xx", "ApiId", api_id, "Stage", "$default", {"stat": "Sum"}],
            ],
            y=6,
        ),
        _widget(
            "Latency (ms)",
            region,
            [
                [*api, {"stat": "p50"}],
                [*api, {"stat": "p99"}],
                ["AWS/Lambda", "Duration", "FunctionName", function_name, {"stat": "p99"}],
            ],
            y=6,
            x=12,
        ),
    ]
    return json.dumps({"widgets": widgets}, sort_keys=True)


def declare(
    name: str,
    *,
    config: DeployConfig,
    region: str,
    api_id: pulumi.Output[str],
    function_name: pulumi.Output[str],
    log_group: aws.cloudwatch.LogGroup,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.Dashboard:
    """The region's dashboard and its saved distinct-installs query."""
    aws.cloudwatch.QueryDefinition(
        f"{name}-distinct-installs",
        name=f"keyops/{config.stack}/distinct-installs",
        log_group_names=[log_group.name],
        query_string=DISTINCT_INSTALLS_QUERY,
        opts=opts,
    )
    return aws.cloudwatch.Dashboard(
        f"{name}-dashboard",
        dashboard_name=f"keyops-{config.stack}-{region}",
        dashboard_body=pulumi.Output.all(api_id, function_name).apply(
            lambda args: dashboard_body(config.stack, region, args[0], args[1])
        ),
        opts=opts,
    )
