"""openapi.yaml against the live server: schemathesis, and real answers validated by the spec."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
import yaml
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.endpoint import PROJECT, Server, app_auth, claims, mint, new_epk
from support.repo import KeyRepo

SPEC_PATH = PROJECT / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
schema = schemathesis.openapi.from_path(str(SPEC_PATH))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
def test_schemathesis_live(case: Any, server: Server) -> None:
    # Random bearer tokens and headers: never a 5xx, only documented statuses and bodies.
    case.call_and_validate(base_url=server.url, checks=CHECKS)


def _resolve(node: Any) -> Any:
    if isinstance(node, dict) and "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _resolve(target)
    return node


def conforms(path: str, answer: httpx.Response) -> None:
    """The answer's status, content type, headers and body are what the spec documents."""
    responses = SPEC["paths"][path]["get"]["responses"]
    assert str(answer.status_code) in responses, answer.status_code
    documented = _resolve(responses[str(answer.status_code)])
    content_type = answer.headers["content-type"].split(";")[0]
    assert content_type in documented["content"]
    for name, header in (documented.get("headers") or {}).items():
        if header.get("required"):
            assert name.lower() in answer.headers
        header_schema = _resolve(header).get("schema")
        if header_schema and name.lower() in answer.headers:
            jsonschema.validate(answer.headers[name.lower()], header_schema)
    body_schema = _resolve(documented["content"][content_type]["schema"])
    body: Any = answer.json() if content_type.endswith("json") else answer.text
    resolver_root = {**body_schema, "components": SPEC["components"]}
    jsonschema.validate(body, resolver_root)


def test_real_answers_match_the_spec(server: Server, served_repo: KeyRepo) -> None:
    kid, secret = app_auth(served_repo)
    url = server.url + "/v1/credentials"

    def with_token(token: str) -> httpx.Response:
        return httpx.get(url, headers={"Authorization": f"Bearer {token}"})

    answers = {
        200: with_token(mint(kid, secret, claims(new_epk()))),
        400: with_token(mint(kid, secret, claims(jti="short"))),
        401: httpx.get(url),
        "stale": with_token(mint(kid, secret, claims(iat=int(time.time()) - 3600))),
    }
    for key, answer in answers.items():
        assert answer.status_code == (401 if key == "stale" else key)
        conforms("/v1/credentials", answer)
    conforms("/healthz", httpx.get(server.url + "/healthz"))
    conforms("/metrics", httpx.get(server.url + "/metrics"))


def test_426_and_503_match_the_spec(keyrepo: KeyRepo, tmp_path: Path) -> None:
    from keyops.build.bundle import build_bundle
    from keyops.endpoint.core import Endpoint, Request

    doc = keyrepo.decrypt("credentials/dev/ios.yaml")
    doc["credentials"][0]["min_app_version"] = "9.0.0"
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    bundle = build_bundle(keyrepo.root, "dev", sops=keyrepo.sops())
    token = mint(*app_auth(keyrepo), claims())
    for endpoint, status in ((Endpoint(bundle), 426), (Endpoint(None), 503)):
        answer = endpoint.handle(Request.get("/v1/credentials", f"Bearer {token}"))
        response = httpx.Response(answer.status, headers=answer.all_headers(), content=answer.body)
        assert response.status_code == status
        conforms("/v1/credentials", response)


@pytest.mark.parametrize("path", ["/v1/credentials", "/healthz", "/metrics"])
def test_every_code_in_the_spec_is_documented(path: str) -> None:
    documented = set(SPEC["paths"][path]["get"]["responses"])
    expected = {
        "/v1/credentials": {"200", "400", "401", "405", "426", "431", "500", "503"},
        "/healthz": {"200", "400", "405", "431", "500", "503"},
        "/metrics": {"200", "400", "405", "431", "500"},
    }
    assert documented == expected[path]
