"""A real AWS API emulator for tests: moto in server mode on 127.0.0.1, over HTTP.

``moto_server`` starts one ``ThreadedMotoServer`` per test module (moto[server] is a dev
dependency in pyproject.toml; without it the fixture FAILS with the install command); ``moto``
is that server emptied for one test. Tests talk
to it with boto3 and the CLI's ``--endpoint-url``, with fake credentials and the instance
metadata service turned off, so nothing leaves the machine.

``aws_front`` stands before moto for the few operations moto cannot answer as AWS does (it has
no Lambda ``GetAccountSettings``, and confirms every SNS e-mail subscription at once): a loopback
HTTP server that answers the operations a test gives a canned answer (a file of
``tests/fixtures/aws/``, in AWS's documented wire format) and passes every other request through
to moto unchanged, so the CLI still talks real HTTP and botocore parses the answers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import re
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from support.net import http_server
from support.repo import PROJECT

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

    @contextlib.contextmanager
    def allowed_only(self, action: str) -> Iterator[dict[str, str]]:
        """IAM enforced, and the environment of a user allowed only ``action`` (e.g. ``logs:*``).

        Enforcement starts after the three IAM calls that make the user, and ends on exit.
        """
        self.enforce_iam(after_actions=3)
        try:
            iam = self.client("iam", "us-east-1")
            iam.create_user(UserName="reader")
            key = iam.create_access_key(UserName="reader")["AccessKey"]
            statement = {"Effect": "Allow", "Action": action, "Resource": "*"}
            iam.put_user_policy(
                UserName="reader",
                PolicyName="only",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
            )
            yield {
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            }
        finally:
            self.enforce_iam(after_actions=float("inf"))

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


# -- a front for what moto cannot answer ---------------------------------------------------------

CANNED = PROJECT / "tests" / "fixtures" / "aws"
#: Operations of REST services, recognised by method and path (query services name their
#: operation in the body's ``Action``).
REST_OPERATIONS = (
    ("GET", re.compile(r"^/2016-08-19/account-settings/?$"), "GetAccountSettings"),
    ("GET", re.compile(r"^/2019-09-30/functions/[^/]+/concurrency$"), "GetFunctionConcurrency"),
)
#: Not relayed: the front's own connection handling decides these.
HOP_HEADERS = frozenset({"connection", "transfer-encoding", "content-length", "server", "date"})


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as AWS sends it: status, headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def canned(cls, name: str, **fill: str) -> Answer:
        """``tests/fixtures/aws/<name>.json``; ``{key}`` in its body is replaced by ``fill``."""
        data = json.loads((CANNED / f"{name}.json").read_text())
        body = data["body"] if isinstance(data["body"], str) else json.dumps(data["body"])
        for key, value in fill.items():
            body = body.replace("{" + key + "}", value)
        return cls(data["status"], data["headers"], body.encode())


def operation(method: str, path: str, body: bytes) -> str:
    """The AWS operation of a request (``""`` when unknown)."""
    for want, pattern, name in REST_OPERATIONS:
        if method == want and pattern.match(path.split("?", 1)[0]):
            return name
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action", [""])[0]


def signed_region(headers: Mapping[str, str]) -> str:
    """The region a SigV4 request was signed for (its credential scope), or ``""``."""
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    found = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/", auth)
    return found.group(1) if found else ""


@dataclass
class AwsFront:
    """Canned answers for some operations; every other request goes through to moto."""

    moto: Moto
    #: ``(operation, region)`` to its answer; region ``""``: in every region.
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    #: ``(operation, region)`` of every request the front received, in order.
    seen: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def can(self, name: str, answer: Answer, region: str = "") -> None:
        """Answer operation ``name`` (in ``region``, default every region) with ``answer``."""
        with self.lock:
            self.answers[(name, region)] = answer

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        name, region = operation(method, path, body), signed_region(headers)
        with self.lock:
            self.seen.append((name, region))
            canned = self.answers.get((name, region)) or self.answers.get((name, ""))
        if canned is not None:
            return canned
        target = urllib.parse.urlsplit(self.moto.url)
        connection = http.client.HTTPConnection(target.netloc, timeout=30)
        try:
            # The Host header is relayed as signed: moto checks the signature when IAM is on.
            connection.request(method, path, body=body or None, headers=headers)
            got = connection.getresponse()
            return Answer(got.status, dict(got.getheaders()), got.read())
        finally:
            connection.close()


def _front_handler(front: AwsFront) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            got = front.answer(self.command, self.path, headers, body)
            self.send_response(got.status)
            for key, value in got.headers.items():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(got.body)))
            self.end_headers()
            self.wfile.write(got.body)

        do_GET = do_POST = do_PUT = do_DELETE = _relay

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests assert on what the CLI prints

    return Handler


@pytest.fixture
def aws_front(moto: Moto) -> Iterator[AwsFront]:
    """A loopback front before this test's emptied moto (see the module's docstring)."""
    front = AwsFront(moto)
    with http_server(_front_handler(front)) as url:
        front.url = url
        yield front
