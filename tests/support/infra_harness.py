"""Run the real ``infra/`` program under Pulumi's mocks and dump what it declared, as JSON.

Used by tests/test_infra*.py in a fresh subprocess per stack: the Pulumi runtime keeps
process-wide state (settings, root stack, config), so one process runs one program.

    python tests/support/infra_harness.py STACK_FILE STACK OUT.json [--broken] [--program MAIN.py]

The stack's settings reach the program the way the Pulumi CLI passes them, through the
``PULUMI_CONFIG`` environment variable (structured values as JSON text). ``--broken`` runs the
program with a hand-built config that the schema would refuse (one region in production, no
throttling, a wildcard IAM statement) so the CrossGuard rules can be seen to fail.
``--program`` runs another ``infra/__main__.py`` (one ``keyops init`` wrote) instead of this
repository's.

The mocks follow what Pulumi's mocks do here: inputs arrive camelCase at every depth (and secrets
wrapped, which is how this records which inputs were secret), outputs are returned camelCase,
``preview=False`` so that every ``apply`` runs, and ``set_mocks`` happens before the import.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
ROOT = "pulumi:pulumi:Stack"
#: The role whose session runs the mocked deployment.
DEPLOYER = "keyops-deployer"


def pulumi_config(stack_file: Path) -> dict[str, str]:
    """``config:`` of a stack file as the CLI hands it to a program: every value a string."""
    data = yaml.safe_load(stack_file.read_text())["config"]
    out = {}
    for key, value in data.items():
        if isinstance(value, dict | list):
            out[key] = json.dumps(value)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def _jsonable(value: Any) -> Any:
    import pulumi

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"$asset": str(value.path)}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _redact(props: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Top-level secret inputs replaced by their SHA-256: secrets never reach the JSON file."""
    out = dict(props)
    for path in paths:
        if path in out:
            digest = hashlib.sha256(str(out[path]).encode()).hexdigest()
            out[path] = {"$secret-sha256": digest}
    return out


class RecordingMocks:
    """Mocks that answer like AWS would, enough for the program, and record every resource."""

    def __init__(self) -> None:
        self.resources: list[dict[str, Any]] = []
        self.provider_regions: dict[str, str] = {}

    # Unwrap Pulumi's secret markers, remembering where they were.
    def _unwrap(self, value: Any, path: str, secrets: list[str]) -> Any:
        from pulumi.runtime import rpc

        if rpc.is_rpc_secret(value):
            secrets.append(path or "$")
            return self._unwrap(rpc.unwrap_rpc_secret(value), path, secrets)
        if isinstance(value, dict):
            return {
                k: self._unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
        return value

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        secrets: list[str] = []
        inputs = self._unwrap(dict(args.inputs), "", secrets)
        recorded = _redact(inputs, secrets)
        rid = f"{args.name}-id"
        provider_id = (args.provider or "").rsplit("::", 1)[-1]
        region = inputs.get("region") or self.provider_regions.get(provider_id, "")
        if args.typ == "pulumi:providers:aws":
            self.provider_regions[rid] = inputs.get("region", "")
            region = inputs.get("region", "")
        state = dict(inputs)
        service = args.typ.split(":")[1].split("/")[0] if ":" in args.typ else "x"
        # Derived from the logical name only, never from the order of creation: runs of two
        # configurations are compared resource by resource (tests/test_infra_dr.py).
        state.setdefault("name", f"{args.name}-physical")
        state["arn"] = f"arn:aws:{service}:{region}:{ACCOUNT}:{args.name}"
        typ = args.typ
        # ARNs in AWS's own shapes where a rule or a test reads them.
        arns = {
            "aws:route53/healthCheck:HealthCheck": f"arn:aws:route53:::healthcheck/{rid}",
            "aws:sns/topic:Topic": f"arn:aws:sns:{region}:{ACCOUNT}:{state['name']}",
            "aws:secretsmanager/secret:Secret": (
                f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{state['name']}-AbCdEf"
            ),
            "aws:kms/key:Key": f"arn:aws:kms:{region}:{ACCOUNT}:key/{rid}",
            "aws:kms/replicaKey:ReplicaKey": f"arn:aws:kms:{region}:{ACCOUNT}:key/{rid}",
            "aws:cloudwatch/metricAlarm:MetricAlarm": (
                f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{state['name']}"
            ),
        }
        if typ in arns:
            state["arn"] = arns[typ]
        if typ == "aws:sns/topicSubscription:TopicSubscription":
            state["arn"] = f"{state['topic']}:{rid}"
        if typ == "aws:iam/role:Role":
            rid = state["name"]  # an IAM role's id is its name
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{state['name']}"
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{state['name']}"
        if typ == "aws:lambda/function:Function":
            state["invokeArn"] = f"arn:aws:apigateway:{region}:lambda:path/functions/{rid}"
        if typ == "aws:apigatewayv2/api:Api":
            state["arn"] = f"arn:aws:apigateway:{region}::/apis/{rid}"
            state["executionArn"] = f"arn:aws:execute-api:{region}:{ACCOUNT}:{rid}"
            state["apiEndpoint"] = f"https://{rid}.execute-api.{region}.amazonaws.com"
        if typ == "aws:apigatewayv2/domainName:DomainName":
            config = dict(state["domainNameConfiguration"])
            config["targetDomainName"] = f"d-{rid}.execute-api.{region}.amazonaws.com"
            config["hostedZoneId"] = f"ZAPIGW{region.upper().replace('-', '')}"
            state["domainNameConfiguration"] = config
        if typ == "aws:acm/certificate:Certificate":
            names = [state["domainName"], *state.get("subjectAlternativeNames", [])]
            state["domainValidationOptions"] = [
                {
                    "domainName": n,
                    "resourceRecordName": f"_v.{n}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": f"_{n}.acm-validations.aws.",
                }
                for n in names
            ]
        if typ == "aws:route53/record:Record":
            state["fqdn"] = state["name"]
        if typ == "aws:kms/key:Key":
            state["keyId"] = rid
        self.resources.append(
            {
                "type": typ,
                "name": args.name,
                "id": rid,
                "provider": provider_id or None,
                "region": region,
                "custom": bool(args.custom),
                "inputs": _jsonable(recorded),
                "state": _jsonable(_redact(state, secrets)),
                "secretInputs": secrets,
            }
        )
        return rid, state

    def call(self, args: Any) -> tuple[dict[str, Any], list[Any]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{DEPLOYER}/ci",
                "userId": "AROAEXAMPLE:ci",
                "id": ACCOUNT,
            }, []
        if args.token == "aws:iam/getSessionContext:getSessionContext":
            assert args.args["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{DEPLOYER}/ci"
            return {
                "arn": args.args["arn"],
                "issuerArn": f"arn:aws:iam::{ACCOUNT}:role/{DEPLOYER}",
                "issuerId": "AROAEXAMPLE",
                "issuerName": DEPLOYER,
                "sessionName": "ci",
                "id": args.args["arn"],
            }, []
        raise AssertionError(f"unexpected invoke {args.token}")


def broken_config(stack_file: Path) -> Any:
    """A production config the schema refuses, built by hand to bypass it."""
    from keyops.deploy.config import parse

    raw = {k.split(":", 1)[1]: v for k, v in pulumi_config(stack_file).items()}
    good = parse(raw, "prod")
    return dataclasses.replace(
        good,
        regions=good.regions[:1],
        throttle=None,
        function_policy_statements=(
            {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
        ),
    )


def main() -> None:
    stack_file, stack, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    broken = "--broken" in sys.argv
    program = PROJECT / "infra" / "__main__.py"
    if "--program" in sys.argv:
        program = Path(sys.argv[sys.argv.index("--program") + 1])
    os.environ["PULUMI_CONFIG"] = json.dumps(pulumi_config(stack_file))
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = "[]"

    import pulumi
    from pulumi.runtime import mocks
    from pulumi.runtime.stack import wait_for_rpcs

    recorder = RecordingMocks()

    class Adapter(mocks.Mocks):
        def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return recorder.new_resource(args)

        def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
            return recorder.call(args)

    links: dict[tuple[str, str], dict[str, Any]] = {}

    class Monitor(mocks.MockMonitor):
        """Also records each resource's URN and its explicit dependencies (depends_on)."""

        def RegisterResource(self, request: Any) -> Any:
            links[(request.type, request.name)] = {
                # As the engine writes them: the root stack's type is no part of its children's
                # URNs (the runbook in docs/deploy.md quotes real URNs).
                "urn": self.make_urn(request.parent, request.type, request.name).replace(
                    f"::{ROOT}$", "::"
                ),
                "parent": request.parent or None,
                "dependencies": sorted(request.dependencies),
                "protect": bool(request.protect),
                "retainOnDelete": bool(request.retainOnDelete),
            }
            return super().RegisterResource(request)

    adapter = Adapter()
    mocks.set_mocks(adapter, project="keyops", stack=stack, preview=False, monitor=Monitor(adapter))
    error = None
    try:
        if broken:
            from keyops.deploy import program

            for name, value in program.run(broken_config(stack_file)).items():
                pulumi.export(name, value)
        else:
            runpy.run_path(str(program), run_name="__main__")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"

    outputs: dict[str, Any] = {}

    async def collect() -> None:
        root = pulumi.runtime.get_root_resource()
        for name, value in getattr(root, "outputs", {}).items():
            output = pulumi.Output.from_input(value)
            outputs[name] = {
                "value": _jsonable(await output.future()),
                "secret": await output.is_secret(),
            }
        await wait_for_rpcs()

    loop = asyncio.get_event_loop()
    if error is None:
        try:
            loop.run_until_complete(collect())
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
    for resource in recorder.resources:
        resource.update(links.get((resource["type"], resource["name"]), {}))
    out.write_text(
        json.dumps({"error": error, "resources": recorder.resources, "outputs": outputs}, indent=1)
    )


if __name__ == "__main__":
    main()
