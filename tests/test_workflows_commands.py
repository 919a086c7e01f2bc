"""Every keyops command a workflow runs is exercised by a test in the same form.

The table below maps each ``run:`` line of the workflows to the test that runs it; a new or changed
line fails here until a test covers it. The ``keyops check`` and ``keyops verify`` lines of pr.yml
are run right here, on a real repository whose base is a remote-tracking ``origin/main``, as in a
pull-request checkout (verify with ``--api-url`` added: tests reach no network but loopback).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from support.pusher_api import PusherApi, hold, stack_creds
from support.repo import KeyRepo
from support.workflows import NAMES, load, steps

COVERED = {
    'keyops adoption --from cloudwatch --distinct --for-change "origin/$BASE_REF" '
    "--out adoption.json": (
        "tests/e2e/test_adoption_cloudwatch.py::test_the_pr_workflow_fetches_and_checks_evidence"
    ),
    'keyops check --base "origin/$BASE_REF" --all-stacks --adoption adoption.json '
    "--format sarif > keyops.sarif": (
        "tests/test_workflows_commands.py::test_pr_check_writes_sarif_for_code_scanning"
    ),
    'keyops approval --repo-slug "$REPO" --pr "$PR_NUMBER" --head-sha "$HEAD_SHA" '
    '--base "origin/$BASE_REF" --adoption adoption.json --no-status --comment '
    '--summary "$GITHUB_STEP_SUMMARY"': (
        "tests/test_approval.py::test_the_one_bot_comment_is_edited_in_place"
    ),
    'keyops approval --repo-slug "$REPO" --pr "$PR_NUMBER" --head-sha "$HEAD_SHA" '
    '--base "origin/$BASE_REF"': "tests/test_approval.py (success, pending, failure, error)",
    'keyops verify --base "origin/$BASE_REF" --skip-stacks "$SKIP_STACKS" '
    '--summary "$GITHUB_STEP_SUMMARY"': (
        "tests/test_workflows_commands.py::test_pr_verify_checks_the_keys_the_pull_request_adds"
    ),
    'keyops smoke --stack "$STACK"': "tests/test_smoke_command.py (one matrix job per stack)",
    "keyops stack list --deployable --github-output": (
        "tests/test_stack_cli.py::test_the_workflow_listing_writes_the_matrix_in_deploy_order"
    ),
    'keyops stack list --deployable --only "$STACK" --github-output': (
        "tests/test_stack_cli.py::test_the_deploy_listing_takes_what_hygiene_dispatches"
    ),
    'keyops hygiene issues --repo-slug "$REPO"': "tests/test_hygiene.py (issues)",
    'keyops hygiene bundles --within-days 7 --repo-slug "$REPO" --dispatch deploy.yml '
    '--ref "$DEFAULT_BRANCH"': (
        "tests/test_hygiene.py::"
        "test_an_endpoint_serving_an_expiring_bundle_gets_a_dispatched_redeploy"
    ),
}


def test_every_keyops_line_of_the_workflows_has_a_test() -> None:
    lines = {
        step["run"].strip()
        for name in NAMES
        for _, step in steps(load(name))
        if "run" in step and step["run"].startswith("keyops ")
    }
    assert lines == set(COVERED)


def test_pr_check_writes_sarif_for_code_scanning(keyrepo: KeyRepo) -> None:
    # A pull-request checkout: the base branch is known as origin/main.
    keyrepo.git("update-ref", "refs/remotes/origin/main", "HEAD")
    keyrepo.git("checkout", "--quiet", "-b", "retire-too-early")
    doc = keyrepo.read_doc("credentials/dev/ios.yaml")
    doc["credentials"][1].update(state="retired", retired="2026-11-27")
    keyrepo.write_doc("credentials/dev/ios.yaml", doc)
    keyrepo.commit("retire ios-2026-05 before the overlap ends")
    (keyrepo.root / "adoption.json").write_text("{}")  # the step before fetches it
    (line,) = [k for k in COVERED if k.startswith("keyops check")]
    argv = shlex.split(line.replace("$BASE_REF", "main"))[1:-2]  # without '> keyops.sarif'
    proc = keyrepo.run(*argv, "--now", "2026-11-27")
    assert proc.returncode == 1, proc.stderr  # findings fail the step; the SARIF is still whole
    sarif = json.loads(proc.stdout)
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    assert run["tool"]["driver"]["name"] == "keyops"
    results = {(r["ruleId"], r["level"]) for r in run["results"]}
    assert ("min-overlap", "error") in results
    located = [r for r in run["results"] if r["ruleId"] == "min-overlap"]
    uri = located[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "credentials/dev/ios.yaml"
    secrets = keyrepo.decrypt("credentials/dev/ios.yaml")["credentials"]
    for cred in secrets:
        assert cred["key"] not in proc.stdout and cred["secret"] not in proc.stdout


def test_pr_verify_checks_the_keys_the_pull_request_adds(
    keyrepo: KeyRepo, pusher_api: PusherApi, tmp_path: Path
) -> None:
    keyrepo.git("update-ref", "refs/remotes/origin/main", "HEAD")
    keyrepo.git("checkout", "--quiet", "-b", "rotate-android")
    doc = keyrepo.read_doc("credentials/dev/android.yaml")
    new = dict(doc["credentials"][0], id="android-2026-11", state="pending", created="2026-11-27")
    new.update(key="1" * 20, secret="2" * 20)
    new.pop("activated")
    doc["credentials"].insert(0, new)
    keyrepo.write_doc("credentials/dev/android.yaml", doc)
    keyrepo.commit("rotate android")
    hold(pusher_api, stack_creds(keyrepo))
    (line,) = [k for k in COVERED if k.startswith("keyops verify")]
    summary = tmp_path / "summary.md"
    for skip, calls in (("", 1), ("dev", 1)):  # calls so far: a skipped stack makes none
        words = line.replace("$BASE_REF", "main").replace("$SKIP_STACKS", skip)
        argv = shlex.split(words.replace("$GITHUB_STEP_SUMMARY", str(summary)))[1:]
        proc = keyrepo.run(*argv, "--api-url", pusher_api.url, "--now", "2026-11-27")
        assert (proc.returncode, proc.stderr) == (0, "")
        assert len(pusher_api.seen) == calls
    text = summary.read_text()
    assert (
        "| dev | android | android-2026-11 | pending | **live** | HTTP 200, channels listed |"
        in text
    )
    assert (
        "| dev | ios | ios-2026-11 | active | **skipped** | unchanged since origin/main |" in text
    )
    assert text.endswith("## keyops verify\n\nNothing to verify: every stack is skipped (dev).\n\n")
    for cred in stack_creds(keyrepo):
        assert cred.secret not in text
