"""``keyops check`` reporters on a real change: text, json, sarif, github, markdown.

The change retires a key too early and copies a secret, so every format has errors, warnings
and an approval to report. No format may contain a key, a secret or ciphertext.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from keyops.cli.reporters import Report, github, text
from keyops.core.findings import Finding, Severity
from support.repo import KeyRepo

IOS = "credentials/dev/ios.yaml"
ANDROID = "credentials/dev/android.yaml"
FILES = ("ios", "android", "web", "server", "_stack")

# A structural subset of the SARIF 2.1.0 schema (the official schema file is not available
# offline): required properties, enums and types of every object keyops emits, with
# additionalProperties closed so a misspelt property fails.
_MESSAGE = {
    "type": "object",
    "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
    "properties": {"text": {"type": "string"}, "id": {"type": "string"}},
    "additionalProperties": False,
}
SARIF_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "runs"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tool"],
                "additionalProperties": False,
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "additionalProperties": False,
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "informationUri": {"type": "string", "format": "uri"},
                                    "rules": {
                                        "type": "array",
                                        "uniqueItems": True,
                                        "items": {"$ref": "#/$defs/reportingDescriptor"},
                                    },
                                },
                            }
                        },
                    },
                    "originalUriBaseIds": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {"uri": {"type": "string"}, "description": _MESSAGE},
                            "additionalProperties": False,
                        },
                    },
                    "results": {"type": "array", "items": {"$ref": "#/$defs/result"}},
                    "properties": {"type": "object"},
                },
            },
        },
    },
    "$defs": {
        "level": {"enum": ["none", "note", "warning", "error"]},
        "reportingDescriptor": {
            "type": "object",
            "required": ["id"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "shortDescription": _MESSAGE,
                "fullDescription": _MESSAGE,
                "help": _MESSAGE,
                "helpUri": {"type": "string", "format": "uri"},
                "defaultConfiguration": {
                    "type": "object",
                    "properties": {"level": {"$ref": "#/$defs/level"}},
                    "additionalProperties": False,
                },
            },
        },
        "result": {
            "type": "object",
            "required": ["message"],
            "additionalProperties": False,
            "properties": {
                "ruleId": {"type": "string"},
                "ruleIndex": {"type": "integer", "minimum": -1},
                "level": {"$ref": "#/$defs/level"},
                "message": _MESSAGE,
                "partialFingerprints": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
                "properties": {"type": "object"},
                "locations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "physicalLocation": {
                                "type": "object",
                                "additionalProperties": False,
                                "anyOf": [
                                    {"required": ["artifactLocation"]},
                                    {"required": ["address"]},
                                ],
                                "properties": {
                                    "artifactLocation": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "uri": {"type": "string", "format": "uri-reference"},
                                            "uriBaseId": {"type": "string"},
                                        },
                                    },
                                    "region": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "startLine": {"type": "integer", "minimum": 1}
                                        },
                                    },
                                },
                            },
                            "logicalLocations": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "fullyQualifiedName": {"type": "string"},
                                        "kind": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture
def changed(keyrepo: KeyRepo) -> tuple[KeyRepo, str, set[str]]:
    """A committed change with findings; returns the repo, the base and every secret value."""
    base = keyrepo.git("rev-parse", "HEAD")
    secrets = collect_secrets(keyrepo)
    ios = keyrepo.read_doc(IOS)
    ios["credentials"][1]["state"] = "retired"
    ios["credentials"][1]["retired"] = "2026-11-27"
    keyrepo.write_doc(IOS, ios)
    android = keyrepo.read_doc(ANDROID)
    android["credentials"][0]["secret"] = ios["credentials"][0]["secret"]
    keyrepo.write_doc(ANDROID, android)
    keyrepo.commit("retire early, copy a secret")
    secrets |= collect_secrets(keyrepo)
    return keyrepo, base, secrets


def collect_secrets(repo: KeyRepo) -> set[str]:
    """Every secret value and every ciphertext of the repository's files."""
    found: set[str] = set()
    for name in FILES:
        rel = f"credentials/dev/{name}.yaml"
        doc = repo.read_doc(rel)
        for item in doc.get("credentials", []) + doc.get("app_auth", []):
            found |= {item[k] for k in ("key", "secret") if k in item}
        if "encryption_master_key" in doc:
            found.add(doc["encryption_master_key"])
        for signing in doc.get("signing_keys", []):
            found.add(signing["private_jwk"])
            found.add(json.loads(signing["private_jwk"])["d"])
        found |= set(re.findall(r"ENC\[[^\]]+\]", repo.path(rel).read_text()))
    return found


def run_format(repo: KeyRepo, base: str, fmt: str) -> str:
    proc = repo.run("check", "--base", base, "--now", "2026-11-27", "--format", fmt)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == ""
    return proc.stdout


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "markdown"])
def test_no_format_shows_a_secret_or_ciphertext(
    changed: tuple[KeyRepo, str, set[str]], fmt: str
) -> None:
    repo, base, secrets = changed
    out = run_format(repo, base, fmt)
    assert len(secrets) > 20
    leaked = [s for s in secrets if s in out]
    assert leaked == []
    assert "ENC[" not in out


def test_sarif_is_valid_2_1_0(changed: tuple[KeyRepo, str, set[str]]) -> None:
    repo, base, _ = changed
    log = json.loads(run_format(repo, base, "sarif"))
    jsonschema.Draft202012Validator(
        SARIF_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(log)
    run = log["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    results = {(r["ruleId"], r["level"]) for r in run["results"]}
    assert ("unique-key", "error") in results and ("min-overlap", "error") in results
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
    first = next(r for r in run["results"] if r["ruleId"] == "min-overlap")
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": IOS, "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": first["locations"][0]["physicalLocation"]["region"]["startLine"]},
    }
    assert first["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "$.credentials[1].state"
    )


def test_sarif_schema_check_can_fail() -> None:
    bad = {"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": []}]}
    with pytest.raises(jsonschema.ValidationError, match="'name' is a required property"):
        jsonschema.Draft202012Validator(SARIF_SCHEMA).validate(bad)


def test_json_has_the_validate_shape(changed: tuple[KeyRepo, str, set[str]]) -> None:
    repo, base, _ = changed
    data = json.loads(run_format(repo, base, "json"))
    assert set(data) == {"findings", "summary"}
    assert set(data["summary"]) == {"files", "findings", "errors", "warnings"}
    assert data["summary"]["files"] == 5
    assert all(
        set(f) == {"rule", "severity", "path", "pointer", "credential_id", "message", "line"}
        for f in data["findings"]
    )


def test_github_annotations(changed: tuple[KeyRepo, str, set[str]]) -> None:
    repo, base, _ = changed
    lines = run_format(repo, base, "github").splitlines()
    overlap = [line for line in lines if "min-overlap" in line]
    assert len(overlap) == 1
    assert re.fullmatch(
        r"::error file=credentials/dev/ios\.yaml,line=\d+,title=keyops min-overlap::"
        r"ios-2026-05 has been retiring for 24 day\(s\) since 2026-11-03; min_overlap_days is "
        r"30: retire it on or after 2026-12-03 \(ios-2026-05\)",
        overlap[0],
    )
    assert any(line.startswith("::warning file=credentials/dev/ios.yaml,") for line in lines)
    assert lines[-1] == "keyops check: 3 error(s), 3 warning(s) in 5 file(s)"


def test_github_escapes_what_could_inject_a_command() -> None:
    finding = Finding("a,b:c.yaml", "$", "schema", Severity.ERROR, "two\nlines 100%", line=3)
    out = github.render(Report([finding], 1)).splitlines()[0]
    assert out == "::error file=a%2Cb%3Ac.yaml,line=3,title=keyops schema::two%0Alines 100%25"


def test_markdown_summary(changed: tuple[KeyRepo, str, set[str]]) -> None:
    repo, base, _ = changed
    out = run_format(repo, base, "markdown")
    assert out.startswith(
        "## keyops check\n\n**❌ fails**: 3 error(s), 3 warning(s) in 5 file(s) against "
        f"`{base[:12]}`.\n\n### What this change does\n\n"
        "- `dev/android`: android-2026-03: secret value changed (redacted)\n"
        "- `dev/ios`: ios-2026-05: retiring → retired (overlap 24 days, no adoption evidence)\n"
    )
    assert "| error | `unique-key` | credentials/dev/android.yaml:" in out
    assert out.endswith(
        "### Approvals still needed\n\n"
        "- ios-2026-05: retiring → retired needs an APPROVED review from one of: alice-sec, "
        "bob-sec, security-oncall (not the author)\n"
    )


def test_text_is_one_line_per_finding_without_colour_when_piped(
    changed: tuple[KeyRepo, str, set[str]],
) -> None:
    repo, base, _ = changed
    out = run_format(repo, base, "text")
    assert "\033[" not in out
    lines = out.splitlines()
    android = [line for line in lines if line.startswith("credentials/dev/android.yaml::")]
    assert [line.split(": ", 1)[1].split(" ", 1)[0] for line in android] == [
        "error[immutable-secret]",
        "error[unique-key]",
    ]
    assert lines[0] == android[0]
    assert all("::$" in line for line in lines[:-1])
    assert lines[-1] == "3 error(s), 3 warning(s) in 5 file(s)"


def test_text_colour_on_a_terminal() -> None:
    finding = Finding("credentials/dev/ios.yaml", "$", "max-age", Severity.WARNING, "old", line=4)
    coloured = text.render(Report([finding], 1, colour=True))
    assert coloured == (
        "credentials/dev/ios.yaml::$: \033[33mwarning[max-age]\033[0m old (line 4)\n"
        "0 error(s), 1 warning(s) in 1 file(s)\n"
    )
    assert text.use_colour(False) is False


def test_validate_and_check_print_the_same_line_for_the_same_finding(keyrepo: KeyRepo) -> None:
    doc = keyrepo.decrypt("credentials/dev/ios.yaml")
    doc["credentials"][0]["state"] = "shiny"
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    validate = keyrepo.run("validate", "--stack", "dev")
    check = keyrepo.run("check", "--stack", "dev", "--now", "2026-11-27")
    assert (validate.returncode, check.returncode) == (1, 1)
    expected = (
        "credentials/dev/ios.yaml::$.credentials[0].state: error[schema] 'shiny' is not one of "
        "'pending', 'active', 'retiring', 'retired', 'revoked' (credential ios-2026-11, line 9)"
    )
    assert expected in validate.stdout.splitlines()
    assert expected in check.stdout.splitlines()
