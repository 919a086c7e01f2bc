"""``GlobalFrontDoor``: one name for every region, answered by the nearest healthy one.

For each region, a Route 53 latency record for ``<domain>`` aliases that region's API Gateway
custom domain, and carries a health check on ``https://<region>.<domain>/healthz``. When a region's
check fails (its Lambda is down, or its bundle expired and ``/healthz`` answers 503), Route 53
stops answering with it; clients that still hold its address fail over by their endpoint list.

A region that is fully down publishes no API Gateway or Lambda metric at all, so only its health
check can tell. Each check gets an alarm on ``HealthCheckStatus``, which Route 53 publishes in
us-east-1 only: the alarm lives there (the program's global provider) and treats missing data
as breaching, because a check that reports nothing is not a healthy one.

Route 53 is global: every resource here, and the one DNS validation record that all regions'
certificates share for ``<domain>`` (:func:`shared_validation_record`), is on the global
provider, so none of them moves when ``keyops:regions`` is reordered or loses a region.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import pulumi
import pulumi_aws as aws

from keyops.deploy.alarms import AlarmTopic
from keyops.deploy.config import DeployConfig
from keyops.deploy.regional import RegionalEndpoint, option_for

HEALTH_PATH = "/healthz"
#: Route 53 publishes HealthCheckStatus (1 healthy, 0 unhealthy) once a minute.
HEALTH_ALARM_PERIOD = 60


def _record_of(domain: str, options: list[Any]) -> tuple[str, str, str]:
    """(name, type, value) of the DNS validation record ACM asks for ``domain``."""
    o = option_for(domain, options)
    return (o.resource_record_name, o.resource_record_type, o.resource_record_value)


def _one_record(domain: str, found: Sequence[Sequence[str]]) -> tuple[str, str, str]:
    """The validation record every certificate agrees on for ``domain``."""
    records = {(str(n), str(t), str(v)) for n, t, v in found}
    if len(records) != 1:
        raise pulumi.RunError(
            f"ACM asks for {len(records)} different DNS validation records for {domain} across "
            "the stack's regions; keyops expects one per account and name. Check the "
            "certificates with `aws acm describe-certificate` in each region."
        )
    return records.pop()


def shared_validation_record(
    name: str,
    *,
    config: DeployConfig,
    certificates: Sequence[aws.acm.Certificate],
    provider: aws.Provider,
) -> aws.route53.Record:
    """The DNS validation record of ``<domain>``, declared once for every region's certificate.

    ACM gives one CNAME per account and domain name, in every region. Owned by no region, it
    stays when a region is removed, so the remaining certificates keep renewing.
    """
    found = [
        c.domain_validation_options.apply(partial(_record_of, config.domain)) for c in certificates
    ]
    record = pulumi.Output.all(*found).apply(partial(_one_record, config.domain))
    return aws.route53.Record(
        name,
        zone_id=config.hosted_zone_id,
        name=record.apply(lambda r: r[0]),
        type=record.apply(lambda r: r[1]),
        records=[record.apply(lambda r: r[2])],
        ttl=300,
        opts=pulumi.ResourceOptions(provider=provider),
    )


class GlobalFrontDoor(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: DeployConfig,
        endpoints: Mapping[str, RegionalEndpoint],
        provider: aws.Provider,
        alarm_topic: AlarmTopic,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keyops:deploy:GlobalFrontDoor", name, None, opts)
        # The global provider (us-east-1): Route 53's API and its health-check metrics.
        o = pulumi.ResourceOptions(parent=self, provider=provider)
        hc = config.health_check
        tags = {"keyops:stack": config.stack, "keyops:production": str(config.production).lower()}
        self.health_checks: dict[str, aws.route53.HealthCheck] = {}
        self.health_alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for region, endpoint in endpoints.items():
            check = aws.route53.HealthCheck(
                f"{name}-{region}-health",
                fqdn=config.regional_domain(region),
                port=443,
                type="HTTPS",
                resource_path=HEALTH_PATH,
                request_interval=hc.interval_seconds,
                failure_threshold=hc.failure_threshold,
                measure_latency=True,
                tags={"Name": f"keyops-{config.stack}-{region}", **tags},
                opts=o,
            )
            self.health_checks[region] = check
            self.health_alarms[region] = aws.cloudwatch.MetricAlarm(
                f"{name}-{region}-health-alarm",
                name=f"keyops-{config.stack}-{region}-health",
                alarm_description=(
                    f"Route 53 finds {config.regional_domain(region)}{HEALTH_PATH} unhealthy: "
                    "the region is down, its bundle expired, or its certificate fails."
                ),
                namespace="AWS/Route53",
                metric_name="HealthCheckStatus",
                dimensions={"HealthCheckId": check.id},
                statistic="Minimum",
                period=HEALTH_ALARM_PERIOD,
                evaluation_periods=config.alarms.evaluation_periods,
                threshold=1,
                comparison_operator="LessThanThreshold",
                # No data means Route 53 is not checking: as bad as a failing check.
                treat_missing_data="breaching",
                alarm_actions=alarm_topic.actions,
                ok_actions=alarm_topic.actions,
                tags={**tags, "keyops:region": region},
                opts=o,
            )
            aws.route53.Record(
                f"{name}-{region}-latency",
                zone_id=config.hosted_zone_id,
                name=config.domain,
                type="A",
                set_identifier=region,
                latency_routing_policies=[{"region": region}],
                health_check_id=check.id,
                aliases=[
                    {
                        "name": endpoint.global_target,
                        "zone_id": endpoint.global_zone,
                        "evaluate_target_health": True,
                    }
                ],
                opts=o,
            )
        self.url = pulumi.Output.from_input(f"https://{config.domain}")
        self.register_outputs({"url": self.url})
