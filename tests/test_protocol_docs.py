"""docs/protocol.md and openapi.yaml say exactly what the endpoint does: codes and token rules.

The implementation's side is read from the code itself: every ``ServiceError(status, "code",
…)`` written in ``keyops.endpoint`` (what the core, the Lambda adapter and the server can
answer), and ``claims.TOKEN_RULES``, which the last test holds to the verifier's behaviour.
"""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from keyops.endpoint import claims as token_rules
from keyops.endpoint.core import Endpoint, Request
from keyops.protocol.bundle import Bundle
from support.endpoint import PROJECT, app_auth, claims, mint
from support.repo import KeyRepo

DOC = (PROJECT / "docs" / "protocol.md").read_text()
SPEC: dict[str, Any] = yaml.safe_load((PROJECT / "openapi.yaml").read_text())
ENDPOINT_SOURCES = sorted((PROJECT / "src" / "keyops" / "endpoint").glob("*.py"))


def implemented() -> set[tuple[int, str]]:
    """(status, code) of every ServiceError the endpoint's modules construct."""
    found = set()
    for path in ENDPOINT_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "ServiceError"
                and len(node.args) >= 2
            ):
                status, code = node.args[0], node.args[1]
                assert isinstance(status, ast.Constant) and isinstance(code, ast.Constant), path
                found.add((int(status.value), str(code.value)))
    return found


def documented_table() -> set[tuple[int, str]]:
    section = DOC.split("## Errors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([0-9]{3}) \| `([a-z-]+)` \|", section, re.MULTILINE)
    return {(int(status), code) for status, code in rows}


def test_the_error_table_is_what_the_endpoint_answers() -> None:
    assert implemented() == documented_table()


def test_openapi_problem_codes_are_what_the_endpoint_answers() -> None:
    problem = SPEC["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
    assert sorted(problem) == sorted(code for _, code in implemented())
    statuses = {status for status, _ in implemented()} - {404}  # unknown paths are not in paths
    documented = {int(s) for s in SPEC["paths"]["/v1/credentials"]["get"]["responses"]} - {200}
    assert documented == statuses


def test_openapi_token_claims_are_the_rules() -> None:
    schema = SPEC["components"]["schemas"]["AppTokenClaims"]
    rules = token_rules.TOKEN_RULES
    assert {name: prop["type"] for name, prop in schema["properties"].items()} == rules["claims"]
    assert schema["required"] == rules["required"]
    scheme = SPEC["components"]["securitySchemes"]["appToken"]["description"]
    header = rules["header"]
    assert f'"alg":"{header["alg"]}"' in scheme and f'"typ":"{header["typ"]}"' in scheme
    assert f"typ, when present, exactly {header['typ']}" in scheme


def test_the_docs_claims_table_is_the_rules() -> None:
    section = DOC.split("### 2. Build the token", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(
        r"^\| `([a-z_]+)`( \(optional\))? \| [^|]+ \| ([^|]+) \|$", section, re.MULTILINE
    )
    table = {name: (bool(optional), rule) for name, optional, rule in rows}
    rules = token_rules.TOKEN_RULES
    assert sorted(table) == sorted(rules["claims"])
    assert sorted(n for n, (optional, _) in table.items() if not optional) == sorted(
        rules["required"]
    )
    words = {"string": "a string", "integer": "an integer", "object": "an object"}
    for name, kind in rules["claims"].items():
        assert table[name][1].startswith(words[kind]), name
    header = rules["header"]
    assert (
        f'`{{"alg":"{header["alg"]}","kid":"<request_auth.kid>","typ":"{header["typ"]}"}}`' in DOC
    )
    assert f"`typ`, when present, exactly `{header['typ']}`" in DOC


WRONG = {"string": 12345, "integer": "12345", "object": "not an object"}


@pytest.mark.parametrize("claim", sorted(token_rules.TOKEN_RULES["claims"]))
def test_the_rules_are_what_the_verifier_enforces(
    bundle_dir: Path, served_repo: KeyRepo, claim: str
) -> None:
    now = int(time.time())
    endpoint = Endpoint(Bundle.load(bundle_dir), clock=lambda: now)
    kid, secret = app_auth(served_repo)

    def status(body: dict[str, Any], **header: Any) -> int:
        token = mint(kid, secret, body, **header)
        return endpoint.handle(Request.get("/v1/credentials", f"Bearer {token}")).status

    good = claims(iat=now, held="ios-2026-11")
    assert status(good) == 200
    kind = token_rules.TOKEN_RULES["claims"][claim]
    assert status({**good, claim: WRONG[kind]}) in (400, 401)
    if claim in token_rules.TOKEN_RULES["required"]:
        assert status({k: v for k, v in good.items() if k != claim}) in (400, 401)
    assert status(good, typ="jwt") == 401
    assert status({**good, "iat": float(now)}) == 400
    assert status({**good, "aud": [good["aud"]]}) == 401
