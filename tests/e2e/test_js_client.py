"""The JS client (clients/js, @keyops/client) against real endpoints, and its own unit tests.

- ``npm ci`` (only when node_modules is missing or older than the lockfile) and ``npm test``;
- ``npm run build``: the size budget and the browser bundle;
- interop: the BUILT package fetches, for every served client of the dev stack, from a real
  ``keyops serve`` on 127.0.0.1 and from the Lambda handler behind a loopback HTTP shim, and gets
  what ``keyops fetch`` gets for the same config and install id.

The dev stack is decrypted with the committed TEST-ONLY key (keys/dev-TEST-ONLY.agekey). Node
and npm are required: without them these tests fail, with the command that installs them.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from keyops.endpoint import lambda_handler
from support.apigw import http_api_event
from support.devstack import DevStack
from support.js import JS, ensure_built, ensure_installed, must, node, run, tool
from support.net import http_server
from support.repo import PROJECT

FETCH_SCRIPT = PROJECT / "tests" / "e2e" / "js" / "fetch.mjs"
BUDGET_BYTES = 15 * 1024
APP_VERSION = "5.2.0"
INSTALL_IDS = ("install-0001", "js-interop-install-7")


# -- the package's own tests and build ------------------------------------------------------------
def test_js_unit_tests_pass() -> None:
    ensure_installed()
    proc = must(run([tool("npm"), "test"]), "npm test")
    # Node's test runner closes with these lines: a run that found no test is a failure too.
    passed = re.search(r"^# pass (\d+)$", proc.stdout, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", proc.stdout, re.MULTILINE)
    assert passed and failed, proc.stdout[-3000:]
    assert int(failed.group(1)) == 0 and int(passed.group(1)) >= 150, proc.stdout[-3000:]


def test_build_reports_the_size_budget_and_makes_the_browser_bundle(tmp_path: Path) -> None:
    output = ensure_built()
    match = re.search(r"(\d+) bytes minified\+gzipped \(jose excluded; budget (\d+)\)", output)
    assert match, output
    assert int(match.group(2)) == BUDGET_BYTES
    assert 0 < int(match.group(1)) <= BUDGET_BYTES
    for name in ("index.js", "index.d.ts", "fetcher.d.ts", "pusher.d.ts"):
        assert (JS / "dist" / name).is_file(), name
    assert "connectPusher" in (JS / "dist" / "index.d.ts").read_text()
    # The browser bundle stands alone (jose inside): a copy away from node_modules still loads,
    # and computes a documented rollout bucket with WebCrypto.
    bundle = tmp_path / "keyops-client.js"
    shutil.copy(JS / "dist" / "browser" / "keyops-client.js", bundle)
    assert not re.search(r"\bfrom\s*[\"']|\bimport\s*[\"'({*]", bundle.read_text())
    script = (
        f"const m = await import({json.dumps(bundle.as_uri())});"
        "console.log(typeof m.connectPusher, typeof m.Fetcher,"
        " await m.rolloutBucket('ios', 'ios-2026-12', 'install-0001'));"
    )
    proc = run([node(), "--input-type=module", "-e", script], cwd=tmp_path, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "function function 22\n", "")


# -- a real dev stack (support.devstack) -----------------------------------------------------
def js_fetch(dev: DevStack, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ensure_built()
    path = dev.work / f"jobs-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(jobs))
    proc = run([node(), str(FETCH_SCRIPT), str(path)], cwd=PROJECT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    for job in jobs:  # the HMAC secret never reaches the output
        secret = json.loads(Path(job["config"]).read_text())["request_auth"]["secret"]
        assert secret not in proc.stdout
    return results


def python_fetch(dev: DevStack, config: Path, install_id: str) -> dict[str, Any]:
    return dev.fetch(config, install_id, APP_VERSION)


COMPARED = ("credential_id", "key", "cluster", "bundle_version", "source", "stale")


def test_the_js_client_gets_what_keyops_fetch_gets_from_keyops_serve(dev: DevStack) -> None:
    assert "web" in dev.clients and len(dev.clients) >= 3, dev.clients
    jobs: list[dict[str, Any]] = []
    for client in dev.clients:
        config = dev.config(client, dev.serve.url)
        for install_id in INSTALL_IDS:
            jobs.append(
                {"config": str(config), "install_id": install_id, "app_version": APP_VERSION}
            )
    results = js_fetch(dev, jobs)
    assert len(results) == len(jobs)
    for job, got in zip(jobs, results, strict=True):
        want = python_fetch(dev, Path(job["config"]), job["install_id"])
        assert "error" not in got, got
        assert {k: got[k] for k in COMPARED} == {k: want[k] for k in COMPARED}, job
        assert got["source"] == dev.serve.url and got["stale"] is False
        assert got["attempts"] == [f"{dev.serve.url}: ok ({got['credential_id']})"]
    # Every served client got its own credential.
    assert {r["credential_id"].rsplit("-", 2)[0] for r in results} == set(dev.clients)


def test_a_device_clock_an_hour_slow_is_corrected_from_the_servers_date(dev: DevStack) -> None:
    config = dev.config("web", dev.serve.url)
    job = {"config": str(config), "install_id": INSTALL_IDS[0], "app_version": APP_VERSION}
    (skewed,) = js_fetch(dev, [{**job, "clock_offset": -3600}])
    assert "error" not in skewed, skewed
    # The stale-token answer and the resend with the server's time are one attempt.
    assert skewed["attempts"] == [f"{dev.serve.url}: ok ({skewed['credential_id']})"]
    want = python_fetch(dev, config, INSTALL_IDS[0])
    assert {k: skewed[k] for k in COMPARED} == {k: want[k] for k in COMPARED}


# -- the Lambda handler behind a loopback HTTP shim -----------------------------------------------
class LambdaShim(BaseHTTPRequestHandler):
    """Turns each HTTP request into an API Gateway HTTP API (v2) event for the real handler."""

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        event = http_api_event(
            self.command,
            path,
            dict(self.headers.items()),
            query=query,
            source_ip=self.client_address[0],
        )
        answer = lambda_handler.handler(event, None)
        body = answer["body"].encode()
        if answer.get("isBase64Encoded"):
            body = base64.b64decode(body)
        self.send_response(answer["statusCode"])  # adds Date, as API Gateway does
        for name, value in answer["headers"].items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines carry no secret, but keep the test output clean


@pytest.fixture
def lambda_url(dev: DevStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("KEYOPS_BUNDLE", str(dev.bundle))
    monkeypatch.delenv("KEYOPS_PINNED_JWKS", raising=False)
    lambda_handler.reset()
    try:
        with http_server(LambdaShim) as url:
            yield url
    finally:
        lambda_handler.reset()


def test_the_js_client_fetches_through_the_lambda_handler(dev: DevStack, lambda_url: str) -> None:
    config = dev.config("web", lambda_url)
    (got,) = js_fetch(
        dev, [{"config": str(config), "install_id": INSTALL_IDS[1], "app_version": APP_VERSION}]
    )
    assert "error" not in got, got
    assert got["source"] == lambda_url
    via_lambda = python_fetch(dev, config, INSTALL_IDS[1])
    via_serve = python_fetch(dev, dev.config("web", dev.serve.url), INSTALL_IDS[1])
    compared = ("credential_id", "key", "cluster", "bundle_version")
    assert {k: got[k] for k in compared} == {k: via_lambda[k] for k in compared}
    assert {k: got[k] for k in compared} == {k: via_serve[k] for k in compared}
