"""The Lambda adapter fed with recorded API Gateway HTTP API (payload 2.0) events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyops.endpoint import lambda_handler
from support.endpoint import app_auth, claims, jwks_of, mint, new_epk, open_answer
from support.repo import KeyRepo

EVENTS = Path(__file__).parent / "events"


def event(name: str, token: str = "") -> dict[str, Any]:
    text = (EVENTS / name).read_text().replace("{{TOKEN}}", token)
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.fixture
def deployed(bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("KEYOPS_BUNDLE", str(bundle_dir))
    monkeypatch.delenv("KEYOPS_PINNED_JWKS", raising=False)
    lambda_handler.reset()
    yield bundle_dir
    lambda_handler.reset()


def test_credentials_event(
    deployed: Path, served_repo: KeyRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    epk = new_epk()
    token = mint(*app_auth(served_repo), claims(epk, held="ios-2026-05"))
    answer = lambda_handler.handler(event("credentials.json", token), None)
    assert answer["statusCode"] == 200
    assert answer["isBase64Encoded"] is False
    assert answer["headers"] == {"content-type": "application/jose", "cache-control": "no-store"}
    payload = open_answer(answer["body"], epk, jwks_of(deployed))
    assert (payload["client"], payload["credential_id"]) == ("ios", "ios-2026-11")
    logged = capsys.readouterr().out
    # One CloudWatch EMF line: the Served metric by stack, client, credential and held, and the
    # install hash (never the install id, a token or a key) as a property.
    line = json.loads(logged)
    assert line["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "keyops",
            "Dimensions": [["Stack", "Client", "Credential", "Held"]],
            "Metrics": [{"Name": "Served", "Unit": "Count"}],
        }
    ]
    assert {k: v for k, v in line.items() if k not in ("_aws", "install")} == {
        "Stack": "dev",
        "Client": "ios",
        "Credential": "ios-2026-11",
        "Held": "ios-2026-05",
        "Served": 1,
    }
    assert len(line["install"]) == 16 and "install-0001" not in logged
    assert token not in logged and payload["key"] not in logged


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("credentials-no-auth.json", 401, "invalid-token"),
        ("unknown-route.json", 404, "not-found"),
        ("post-credentials.json", 405, "method-not-allowed"),
    ],
)
def test_error_events(deployed: Path, name: str, status: int, code: str) -> None:
    answer = lambda_handler.handler(event(name, "x.y.z"), None)
    assert answer["statusCode"] == status
    assert answer["headers"]["content-type"] == "application/problem+json"
    assert json.loads(answer["body"])["code"] == code


def test_health_and_metrics_events(deployed: Path) -> None:
    health = lambda_handler.handler(event("healthz.json"), None)
    assert health["statusCode"] == 200
    assert json.loads(health["body"])["status"] == "ok"
    metrics = lambda_handler.handler(event("metrics.json"), None)
    assert metrics["statusCode"] == 200
    assert metrics["headers"]["content-type"].startswith("text/plain; version=0.0.4")


def test_missing_bundle_is_503_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundle_dir: Path
) -> None:
    monkeypatch.setenv("KEYOPS_BUNDLE", str(tmp_path / "absent"))
    lambda_handler.reset()
    answer = lambda_handler.handler(event("healthz.json"), None)
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["code"] == "not-ready"
    monkeypatch.setenv("KEYOPS_BUNDLE", str(bundle_dir))
    assert lambda_handler.handler(event("healthz.json"), None)["statusCode"] == 200
    lambda_handler.reset()


def test_pinned_jwks_from_the_environment(deployed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYOPS_PINNED_JWKS", json.dumps({"keys": []}))
    lambda_handler.reset()
    assert lambda_handler.handler(event("healthz.json"), None)["statusCode"] == 503
    monkeypatch.setenv("KEYOPS_PINNED_JWKS", json.dumps(jwks_of(deployed)))
    lambda_handler.reset()
    assert lambda_handler.handler(event("healthz.json"), None)["statusCode"] == 200


def test_the_cold_start_path_is_light(bundle_dir: Path, served_repo: KeyRepo) -> None:
    """Import, bundle load and a first answer load no module the answer does not need."""
    code = (
        "import json, os, sys\n"
        "from keyops.endpoint import lambda_handler\n"
        "answer = lambda_handler.handler(json.loads(os.environ['EVENT']))\n"
        "assert answer['statusCode'] == 200, answer\n"
        "heavy = ('pulumi', 'pulumi_aws', 'boto3', 'botocore', 'httptools', 'uvloop', 'yaml',"
        " 'jsonschema', 'keyops.store', 'keyops.build', 'keyops.client',"
        # The serving side builds its JOSE on cryptography: a JOSE library's import dominated
        # the cold start. Nor does it need these standard modules to answer.
        " 'joserfc', 'dataclasses', 'inspect', 'logging', 'pathlib', 'datetime', 'secrets')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    token = mint(*app_auth(served_repo), claims())
    env = {**os.environ, "KEYOPS_BUNDLE": str(bundle_dir)}
    env["EVENT"] = json.dumps(event("credentials.json", token))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
