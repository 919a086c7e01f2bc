"""``GlobalFrontDoor``: one name for every region, answered by the nearest healthy one.

For each region, a Route 53 latency record for ``<domain>`` aliases that region's API Gateway
custom domain, and carries a health check on ``https://<region>.<domain>/healthz``. When a region's
check fails (its Lambda is down, or its bundle expired and ``/healthz`` answers 503), Route 53
stops answering with it; clients that still hold its address fail over by their endpoint list.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from keyops.deploy.config import DeployConfig
from keyops.deploy.regional import RegionalEndpoint

HEALTH_PATH = "/healthz"


class GlobalFrontDoor(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: DeployConfig,
        endpoints: Mapping[str, RegionalEndpoint],
        provider: aws.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keyops:deploy:GlobalFrontDoor", name, None, opts)
        # Route 53 is a global service; the primary region's provider manages it.
        o = pulumi.ResourceOptions(parent=self, provider=provider)
        hc = config.health_check
        self.health_checks: dict[str, aws.route53.HealthCheck] = {}
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
                tags={"Name": f"keyops-{config.stack}-{region}", "keyops:stack": config.stack},
                opts=o,
            )
            self.health_checks[region] = check
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
