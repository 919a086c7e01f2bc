"""keyops.endpoint.emf: one valid Embedded Metric Format line per answer, names as documented."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from keyops.endpoint.emf import EmfLog
from keyops.endpoint.installs import held_label, install_hash
from support.emf import emf_document, emf_problems

SALT = b"s" * 32
IDS = ("ios-2026-11", "ios-2026-05")


def log() -> tuple[EmfLog, list[str]]:
    lines: list[str] = []
    return EmfLog("prod", SALT, write=lines.append, clock=lambda: 1_800_000_000.25), lines


def test_served_line_is_valid_emf_with_the_documented_names() -> None:
    emf, lines = log()
    emf.served("ios", "ios-2026-11", held_label("ios-2026-05", IDS), "install-0001")
    assert len(lines) == 1
    assert emf_document(lines[0]) == {
        "_aws": {
            "Timestamp": 1_800_000_000_250,
            "CloudWatchMetrics": [
                {
                    "Namespace": "keyops",
                    "Dimensions": [["Stack", "Client", "Credential", "Held"]],
                    "Metrics": [{"Name": "Served", "Unit": "Count"}],
                }
            ],
        },
        "Stack": "prod",
        "Client": "ios",
        "Credential": "ios-2026-11",
        "Held": "ios-2026-05",
        "install": install_hash(SALT, "install-0001"),
        "Served": 1,
    }


def test_no_held_claim_is_the_dimension_value_none() -> None:
    emf, lines = log()
    emf.served("ios", "ios-2026-11", held_label(None, IDS), "install-0001")
    assert emf_document(lines[0])["Held"] == "none"


def test_an_unknown_held_id_is_counted_apart_and_never_a_dimension_value() -> None:
    emf, lines = log()
    emf.served("ios", "ios-2026-11", held_label("made-up-id", IDS), "install-0001")
    document = emf_document(lines[0])
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["Stack", "Client", "Credential"]]
    assert directive["Metrics"] == [{"Name": "HeldUnknown", "Unit": "Count"}]
    assert document["HeldUnknown"] == 1
    assert "Held" not in document and "Served" not in document
    assert "made-up-id" not in lines[0]


@pytest.mark.parametrize(("status", "code"), [(401, "invalid-token"), (401, "replayed-token")])
def test_error_line(status: int, code: str) -> None:
    emf, lines = log()
    emf.error(status, code)
    document = emf_document(lines[0])
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stack", "Code"]]
    assert document["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "Errors", "Unit": "Count"}
    ]
    assert (document["Code"], document["Status"], document["Errors"]) == (code, status, 1)
    assert "install" not in document


def test_the_install_id_never_leaves_the_function() -> None:
    emf, lines = log()
    emf.served("ios", "ios-2026-11", "ios-2026-05", "install-secret-looking-0001")
    assert "install-secret-looking-0001" not in lines[0]
    digest = json.loads(lines[0])["install"]
    assert len(digest) == 16 and int(digest, 16) >= 0
    # Another stack's salt gives another hash: installs cannot be joined across stacks.
    assert digest != install_hash(b"t" * 32, "install-secret-looking-0001")


def test_without_a_salt_the_install_property_is_left_out() -> None:
    lines: list[str] = []
    EmfLog("prod", None, write=lines.append).served("ios", "ios-2026-11", "none", "install-0001")
    assert "install" not in emf_document(lines[0])


def test_the_checker_refuses_what_the_specification_refuses() -> None:
    emf, lines = log()
    emf.served("ios", "ios-2026-11", "ios-2026-05", "install-0001")
    good = json.loads(lines[0])
    missing_target = {**good}
    del missing_target["Held"]
    assert "dimension 'Held' is not a string member: None" in emf_problems(
        json.dumps(missing_target)
    )
    string_metric = {**good, "Served": "1"}
    assert "metric 'Served' is not a number member: '1'" in emf_problems(json.dumps(string_metric))
    extra = json.loads(lines[0])
    extra["_aws"]["CloudWatchMetrics"][0]["Extra"] = 1
    assert any("Additional properties" in p for p in emf_problems(json.dumps(extra)))
    no_timestamp = json.loads(lines[0])
    del no_timestamp["_aws"]["Timestamp"]
    problems = emf_problems(json.dumps(no_timestamp))
    assert any("'Timestamp' is a required property" in p for p in problems)


def test_default_writer_prints_one_line_to_stdout() -> None:
    code = (
        "from keyops.endpoint.emf import EmfLog\n"
        "EmfLog('dev', b'k' * 32).served('web', 'web-2026-06', 'none', 'install-0001')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and proc.stderr == ""
    assert emf_document(lines[0])["Client"] == "web"


def test_the_new_endpoint_modules_import_only_the_standard_library() -> None:
    """Nothing is added to the Lambda cold start but stdlib and keyops' own small modules."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import keyops.endpoint.emf, keyops.endpoint.replay, keyops.endpoint.installs\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'keyops'}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
