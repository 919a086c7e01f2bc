"""The command line contract of validate: exit codes, --help, JSON shape, global options."""

from __future__ import annotations

import json
from typing import Any

from support.repo import KeyRepo
from support.validate import rewrite, run

WEB = "credentials/dev/web.yaml"
EXIT_CODES_HELP = """exit codes:
  0    success: no error findings
  1    findings (validation or policy errors), or a refused change
  2    usage or environment error (bad arguments, sops missing, no decryption key)
  3    unexpected error: a bug in keyops (the message names a log with the details)
  130  interrupted
"""


def test_help_lists_options_and_exit_codes(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "validate", "--help")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith(
        "usage: keyops validate [-h] [--stack S] [--all-stacks] [--no-decrypt]\n"
        "                       [--format {text,json,sarif,github,markdown}]"
    )
    for option in (
        "PATH",
        "--stack S",
        "--no-decrypt",
        "--format {text,json,sarif,github,markdown}",
    ):
        assert option in proc.stdout
    assert proc.stdout.endswith(EXIT_CODES_HELP)
    top = run(keyrepo, "--help")
    assert top.stdout.endswith(EXIT_CODES_HELP)
    assert "validate" in top.stdout and "status" in top.stdout


def test_usage_errors_exit_2(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "validate", "--frobnicate")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: keyops: unrecognized arguments: --frobnicate. Run 'keyops --help' for usage.\n"
    )
    fmt = run(keyrepo, "validate", "--format", "xml")
    assert fmt.returncode == 2
    assert fmt.stderr == (
        "error: keyops validate: argument --format: invalid choice: 'xml' (choose from 'text', "
        "'json', 'sarif', 'github', 'markdown'). Run 'keyops validate --help' for usage.\n"
    )
    bare = run(keyrepo)
    assert bare.returncode == 2
    assert bare.stderr.startswith("usage: keyops ")


def test_exit_codes_0_1_2(keyrepo: KeyRepo) -> None:
    assert run(keyrepo, "validate").returncode == 0
    keyrepo.write_bytes("credentials/dev/empty.yaml", b"")
    assert run(keyrepo, "validate").returncode == 1
    assert run(keyrepo, "validate", key=False).returncode == 2


def _three_problems(doc: dict[str, Any]) -> None:
    doc["pusher"]["app_id"] = 42
    doc["credentials"][0]["retiring_since"] = "2026-07-01"
    doc["surprise"] = True


def test_json_report_shape(keyrepo: KeyRepo) -> None:
    rewrite(keyrepo, WEB, _three_problems)
    proc = run(keyrepo, "validate", "--format", "json")
    assert (proc.returncode, proc.stderr) == (1, "")
    report = json.loads(proc.stdout)
    assert list(report) == ["findings", "summary"]
    assert report["summary"] == {"files": 5, "findings": 3, "errors": 3, "warnings": 0}
    assert report["findings"] == [
        {
            "rule": "schema",
            "severity": "error",
            "path": WEB,
            "pointer": "$.pusher.app_id",
            "credential_id": None,
            "message": "42 must be the Pusher app id: digits, as a quoted string",
            "line": 5,
        },
        {
            "rule": "schema",
            "severity": "error",
            "path": WEB,
            "pointer": "$.credentials[0].retiring_since",
            "credential_id": "web-2026-06",
            "message": "field 'retiring_since' is not allowed when state is 'active'",
            "line": 14,
        },
        {
            "rule": "schema",
            "severity": "error",
            "path": WEB,
            "pointer": "$.surprise",
            "credential_id": None,
            "message": "unknown field 'surprise'; remove it or check its spelling",
            "line": 23,
        },
    ]


def test_text_and_json_agree(keyrepo: KeyRepo) -> None:
    rewrite(keyrepo, WEB, _three_problems)
    text = run(keyrepo, "validate").stdout.splitlines()
    data = json.loads(run(keyrepo, "validate", "--format", "json").stdout)
    assert len(text) == len(data["findings"]) + 1
    for line, item in zip(text, data["findings"], strict=False):
        assert line.startswith(f"{item['path']}::{item['pointer']}: error[{item['rule']}] ")
        assert item["message"] in line


def test_clean_json_report(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "validate", "--format", "json", "--no-decrypt", key=False)
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {
        "findings": [],
        "summary": {"files": 5, "findings": 0, "errors": 0, "warnings": 0},
    }


def test_repo_option_and_environment(keyrepo: KeyRepo) -> None:
    elsewhere = keyrepo.root.parent
    by_option = run(keyrepo, "-C", str(keyrepo.root), "validate", cwd=elsewhere)
    assert (by_option.returncode, by_option.stdout) == (
        0,
        "ok: 5 file(s) validated, no findings\n",
    )
    by_env = run(keyrepo, "validate", cwd=elsewhere, env={"KEYOPS_REPO": str(keyrepo.root)})
    assert by_env.returncode == 0
    missing = run(keyrepo, "-C", str(elsewhere / "nope"), "validate")
    assert missing.returncode == 2
    assert missing.stderr == (
        f"error: repository directory {elsewhere / 'nope'} does not exist. Check --repo.\n"
    )


def test_from_a_subdirectory(keyrepo: KeyRepo) -> None:
    proc = run(keyrepo, "validate", cwd=keyrepo.path("credentials/dev"))
    assert (proc.returncode, proc.stdout) == (0, "ok: 5 file(s) validated, no findings\n")
