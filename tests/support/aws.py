"""A real AWS API emulator for tests: moto in server mode on 127.0.0.1, over HTTP.

``moto_server`` starts one ``ThreadedMotoServer`` per test module (moto[server] is a dev
dependency in pyproject.toml; without it the fixture FAILS with the install command); ``moto``
is that server emptied for one test. Tests talk
to it with boto3 and the CLI's ``--endpoint-url``, with fake credentials and the instance
metadata service turned off, so nothing leaves the machine.
"""

from __future__ import annotations

import datetime as dt
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    # Never ask 169.254.169.254 for credentials: loopback only.
    "AWS_EC2_METADATA_DISABLED": "true",
}
INSTALL_HINT = "pip install -e '.[dev]' (moto[server] and boto3 are dev dependencies)"


@dataclass(frozen=True)
class Moto:
    url: str

    def client(self, service: str, region: str, **credentials: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id=credentials.get("key", "testing"),
            aws_secret_access_key=credentials.get("secret", "testing"),
        )

    def put_served(
        self,
        region: str,
        stack: str,
        counts: Mapping[tuple[str, str, str], int],
        *,
        when: dt.datetime | None = None,
    ) -> None:
        """Served data points, as CloudWatch extracts them from the endpoint's EMF lines."""
        moment = when or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        data = [
            {
                "MetricName": "Served",
                "Dimensions": [
                    {"Name": "Stack", "Value": stack},
                    {"Name": "Client", "Value": client},
                    {"Name": "Credential", "Value": served},
                    {"Name": "Held", "Value": held},
                ],
                "Value": float(value),
                "Unit": "Count",
                "Timestamp": moment,
            }
            for (client, served, held), value in counts.items()
        ]
        self.client("cloudwatch", region).put_metric_data(Namespace="keyops", MetricData=data)

    def reset(self) -> None:
        """Forget every resource and data point (moto's own reset endpoint)."""
        self._post("/moto-api/reset", b"")

    def enforce_iam(self, after_actions: float) -> None:
        """moto checks IAM policies from the next ``after_actions`` requests on (inf: never)."""
        self._post("/moto-api/reset-auth", str(after_actions).encode())

    def _post(self, path: str, data: bytes) -> None:
        # Not form-encoded: moto reads the raw body.
        headers = {"Content-Type": "text/plain"}
        request = urllib.request.Request(f"{self.url}{path}", data, headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[Moto]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # a missing peer fails loudly, never skips
        pytest.fail(f"moto server is not installed ({exc}); install it: {INSTALL_HINT}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield Moto(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: Moto) -> Moto:
    """The module's emulator, emptied for this test."""
    moto_server.reset()
    return moto_server
