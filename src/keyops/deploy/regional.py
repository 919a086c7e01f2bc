"""``RegionalEndpoint``: the key-serving endpoint in one AWS region, self-sufficient.

Per region: an arm64 Lambda whose code asset carries the signed bundle (static stability: the
read path touches no data store, so a region serves as long as Lambda and API Gateway run
there), an HTTP API with a throttled ``$default`` stage and JSON access logs that never record
the ``Authorization`` header, two custom domains with TLS 1.2 (``<region>.<domain>`` for health
checks and operators, ``<domain>`` for latency routing), an ACM certificate validated by DNS, and
CloudWatch alarms on 5xx, p99 latency and throttles published to the region's alarm topic, and
the region's dashboard and saved distinct-installs query (``observability``).

Built in two steps: the constructor declares everything up to the certificate; :meth:`serve`
then validates it and attaches the domains. In between, the program declares the one DNS
validation record that every region's certificate shares for ``<domain>`` (ACM gives the same
record for the same name in every region of an account), so no region owns it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Any

import pulumi
import pulumi_aws as aws

from keyops.deploy import iam, observability
from keyops.deploy.alarms import AlarmTopic
from keyops.deploy.asset import HANDLER, RUNTIME
from keyops.deploy.config import DeployConfig

#: Routes and their authorization: /metrics carries adoption counts, so it needs SigV4 (IAM).
#: OPTIONS reaches the function, which answers CORS preflights from the bundle's allowed origins;
#: the API sets no CORS configuration of its own, so the two can never disagree.
ROUTES = {
    "GET /v1/credentials": "NONE",
    "OPTIONS /v1/credentials": "NONE",
    "GET /healthz": "NONE",
    "GET /metrics": "AWS_IAM",
}
TLS_POLICY = "TLS_1_2"
STAGE = "$default"
#: Access log fields. Deliberately no $context.authorizer / request headers: the bearer token
#: must never reach a log.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "method": "$context.httpMethod",
        "route": "$context.routeKey",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "latency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
    },
    sort_keys=True,
)


#: How each alarm treats a period without data, and why (docs/deploy.md, Alarms). With no
#: traffic, API Gateway and Lambda publish nothing: that is not an outage, so these stay OK. A
#: region that is fully down also publishes nothing; the health-check alarm (frontdoor) is the
#: one that treats missing data as breaching.
MISSING_DATA = {"5xx": "notBreaching", "p99-latency": "notBreaching", "throttles": "notBreaching"}


def option_for(domain: str, options: list[Any]) -> Any:
    """The ACM DNS validation option of one domain of the certificate."""
    return next(x for x in options if x.domain_name == domain)


class RegionalEndpoint(pulumi.ComponentResource):
    url: pulumi.Output[str]
    #: Set by :meth:`serve`: what the global latency record of this region points at.
    global_target: pulumi.Output[str]
    global_zone: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: DeployConfig,
        region: str,
        provider: aws.Provider,
        code: pulumi.Archive,
        environment: dict[str, str],
        alarm_topic: AlarmTopic,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keyops:deploy:RegionalEndpoint", name, None, opts)
        self.name = name
        self.region = region
        self.config = config
        o = pulumi.ResourceOptions(parent=self, provider=provider)
        self._opts = o
        stack = config.stack
        tags = {
            "keyops:stack": stack,
            "keyops:region": region,
            "keyops:production": str(config.production).lower(),
        }

        # -- function -------------------------------------------------------------------
        fn_logs = aws.cloudwatch.LogGroup(
            f"{name}-fn-logs",
            name=config.function_log_group,
            retention_in_days=config.log_retention_days,
            tags=tags,
            opts=o,
        )
        self.role = iam.endpoint_role(
            f"{name}-fn-role",
            config.endpoint_role_name(region),
            fn_logs,
            tags,
            config.function_policy_statements,
            o,
        )
        lam = config.lambda_
        self.function = aws.lambda_.Function(
            f"{name}-fn",
            name=config.function_name,
            description=f"keyops {stack} key-serving endpoint ({region})",
            runtime=RUNTIME,
            handler=HANDLER,
            architectures=[lam.architecture],
            code=code,
            role=self.role.arn,
            memory_size=lam.memory_mb,
            timeout=lam.timeout_seconds,
            # Optional: a reservation fails on accounts whose regional quota cannot keep 100
            # unreserved (docs/deploy.md, AWS prerequisites).
            reserved_concurrent_executions=lam.reserved_concurrency,
            environment={"variables": environment},
            logging_config={"log_format": "JSON", "log_group": fn_logs.name},
            tags={**tags, "keyops:component": "endpoint"},
            # New code (a new bundle) ships only after what it needs, e.g. the keyring that
            # holds a newly served key's secret for the auth servers.
            opts=pulumi.ResourceOptions.merge(o, pulumi.ResourceOptions(depends_on=list(after))),
        )

        # -- HTTP API -------------------------------------------------------------------
        api_logs = aws.cloudwatch.LogGroup(
            f"{name}-api-logs",
            name=f"/aws/apigateway/keyops-{stack}",
            retention_in_days=config.log_retention_days,
            tags=tags,
            opts=o,
        )
        self.api = aws.apigatewayv2.Api(
            f"{name}-api",
            name=f"keyops-{stack}",
            protocol_type="HTTP",
            # Only the custom domains answer: TLS policy and throttling cannot be bypassed.
            disable_execute_api_endpoint=True,
            tags=tags,
            opts=o,
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_uri=self.function.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=lam.timeout_seconds * 1000,
            opts=o,
        )
        for route_key, auth in ROUTES.items():
            method, path = route_key.split(" ", 1)
            slug = path.strip("/").replace("/", "-")
            if method != "GET":  # GET routes keep their names: a rename replaces deployed routes
                slug = f"{method.lower()}-{slug}"
            aws.apigatewayv2.Route(
                f"{name}-route-{slug}",
                api_id=self.api.id,
                route_key=route_key,
                authorization_type=auth,
                target=integration.id.apply(lambda i: f"integrations/{i}"),
                opts=o,
            )
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=self.api.execution_arn.apply(lambda arn: f"{arn}/*/*"),
            opts=o,
        )
        throttle = config.throttle
        route_settings = aws.apigatewayv2.StageDefaultRouteSettingsArgs(
            detailed_metrics_enabled=True,
            throttling_rate_limit=throttle.rate_limit if throttle else None,
            throttling_burst_limit=throttle.burst_limit if throttle else None,
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self.api.id,
            name=STAGE,
            auto_deploy=True,
            default_route_settings=route_settings,
            access_log_settings={"destination_arn": api_logs.arn, "format": ACCESS_LOG_FORMAT},
            tags=tags,
            opts=o,
        )

        # -- what operators and the retirement gate read --------------------------------
        self.fn_logs = fn_logs
        self.dashboard = observability.declare(
            name,
            config=config,
            region=region,
            api_id=self.api.id,
            function_name=self.function.name,
            log_group=fn_logs,
            opts=o,
        )

        # -- TLS certificate (validated in serve()) ------------------------------------
        self.regional_name = config.regional_domain(region)
        self.certificate = aws.acm.Certificate(
            f"{name}-cert",
            domain_name=self.regional_name,
            subject_alternative_names=[config.domain],
            validation_method="DNS",
            tags=tags,
            opts=o,
        )
        self.url = pulumi.Output.from_input(f"https://{self.regional_name}")

        # -- alarms ---------------------------------------------------------------------
        a = config.alarms
        api_dims = {"ApiId": self.api.id, "Stage": pulumi.Output.from_input(STAGE)}

        def alarm(
            kind: str,
            description: str,
            namespace: str,
            metric: str,
            dimensions: dict[str, pulumi.Output[str]],
            threshold: int,
            statistic: str | None = None,
            extended: str | None = None,
        ) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{name}-alarm-{kind}",
                name=f"keyops-{stack}-{region}-{kind}",
                alarm_description=description,
                namespace=namespace,
                metric_name=metric,
                dimensions=dimensions,
                statistic=statistic,
                extended_statistic=extended,
                threshold=threshold,
                period=a.period_seconds,
                evaluation_periods=a.evaluation_periods,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data=MISSING_DATA[kind],
                alarm_actions=alarm_topic.actions,
                ok_actions=alarm_topic.actions,
                tags=tags,
                opts=o,
            )

        self.alarms = [
            alarm(
                "5xx",
                "The endpoint answered 5xx (no valid bundle, or a crash).",
                "AWS/ApiGateway",
                "5xx",
                api_dims,
                a.errors_5xx,
                statistic="Sum",
            ),
            alarm(
                "p99-latency",
                "p99 latency of the endpoint is above the threshold (ms).",
                "AWS/ApiGateway",
                "Latency",
                api_dims,
                a.latency_p99_ms,
                extended="p99",
            ),
            alarm(
                "throttles",
                "Invocations were throttled at the reserved concurrency.",
                "AWS/Lambda",
                "Throttles",
                {"FunctionName": self.function.name},
                a.throttles,
                statistic="Sum",
            ),
        ]

    def serve(self, shared_validation_fqdn: pulumi.Output[str]) -> None:
        """Validate the certificate (with the shared record of ``<domain>``), attach the domains."""
        name, config, o = self.name, self.config, self._opts
        tags = {
            "keyops:stack": config.stack,
            "keyops:region": self.region,
            "keyops:production": str(config.production).lower(),
        }
        option = self.certificate.domain_validation_options.apply(
            partial(option_for, self.regional_name)
        )
        # The record of <region>.<domain> is this region's alone.
        record = aws.route53.Record(
            f"{name}-cert-validation-regional",
            zone_id=config.hosted_zone_id,
            name=option.apply(lambda x: x.resource_record_name),
            type=option.apply(lambda x: x.resource_record_type),
            records=[option.apply(lambda x: x.resource_record_value)],
            ttl=300,
            opts=o,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-cert-validation",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[record.fqdn, shared_validation_fqdn],
            opts=o,
        )
        domains = {}
        for role, domain in (("regional", self.regional_name), ("global", config.domain)):
            dn = aws.apigatewayv2.DomainName(
                f"{name}-domain-{role}",
                domain_name=domain,
                domain_name_configuration={
                    "certificate_arn": validation.certificate_arn,
                    "endpoint_type": "REGIONAL",
                    "security_policy": TLS_POLICY,
                },
                tags=tags,
                opts=o,
            )
            aws.apigatewayv2.ApiMapping(
                f"{name}-mapping-{role}",
                api_id=self.api.id,
                domain_name=dn.id,
                stage=self.stage.id,
                opts=o,
            )
            domains[role] = dn
        regional = domains["regional"].domain_name_configuration
        aws.route53.Record(
            f"{name}-regional-record",
            zone_id=config.hosted_zone_id,
            name=self.regional_name,
            type="A",
            aliases=[
                {
                    "name": regional.target_domain_name,
                    "zone_id": regional.hosted_zone_id,
                    "evaluate_target_health": True,
                }
            ],
            opts=o,
        )
        target = domains["global"].domain_name_configuration
        self.global_target = target.target_domain_name
        self.global_zone = target.hosted_zone_id
        self.register_outputs(
            {"url": self.url, "apiId": self.api.id, "functionName": self.function.name}
        )
