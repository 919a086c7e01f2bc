"""The GitHub Actions workflows, parsed and checked: triggers, permissions, environments,
concurrency, pinning, and that every ``run:`` step is a project command that exists. The same
checks hold for this repository's workflows and for those ``keyops init`` writes (the template
set, which installs keyops from requirements.txt instead of calling make).

Workflows cannot run here, so this is what keeps them honest. The rule for ``run:`` steps:
one line; either ``make <target>`` for a target the Makefile defines, or
``keyops <command> ...`` whose arguments the real keyops parser accepts (with ``$VARS`` replaced
by sample values), optionally redirected to a file; or one of the plumbing lines in
:data:`PLUMBING`. Every ``$VAR`` must come from the step's ``env:`` or be a variable the runner
sets. No ``${{ }}`` expression may appear in a ``run:`` line: untrusted event fields reach the
shell only through ``env:``.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.workflows import (
    NAMES,
    PINNED,
    PROJECT,
    REPOSITORY,
    SETS,
    TEMPLATE,
    USES_LINE,
    WorkflowSet,
    load,
    run_problems,
    steps,
)

EVERY = [pytest.param(ws, name, id=f"{ws.label}-{name}") for ws in SETS for name in NAMES]
BOTH = [pytest.param(ws, id=ws.label) for ws in SETS]


@pytest.mark.parametrize(
    ("line", "env", "expected"),
    [
        ("curl -sSL https://example.invalid/x | sh", {}, "shell pipelines"),
        ("python -m pip install .", {}, "'python' is not make or keyops"),
        ("make deploy-everything", {}, "make target 'deploy-everything' does not exist"),
        ("keyops frobnicate", {}, "keyops has no command ['frobnicate']"),
        ("keyops check --no-such-flag", {}, "keyops rejects the arguments"),
        ('keyops check --base "origin/$BASE_REF"', {}, "$BASE_REF is neither"),
        ("keyops check --base ${{ github.head_ref }}", {}, "an expression in run:"),
        ("make install\nmake test", {}, "single line"),
        ("keyops check > a > b", {}, "only a final '> file'"),
    ],
)
def test_checker_refuses(line: str, env: dict[str, Any], expected: str) -> None:
    problems = run_problems(line, env)
    assert any(expected in p for p in problems), problems


def test_checker_accepts_a_project_command() -> None:
    assert run_problems("make lint", {}) == []
    assert run_problems('keyops validate --no-decrypt --stack "$S"', {"S": "dev"}) == []


def test_the_template_set_has_no_makefile_but_installs_from_requirements() -> None:
    assert TEMPLATE.run_problems("make install", {}) == [
        "a credentials repository has no Makefile: run keyops"
    ]
    assert TEMPLATE.run_problems("python -m pip install -r requirements.txt", {}) == []
    assert REPOSITORY.run_problems("python -m pip install -r requirements.txt", {}) == [
        "'python' is not make or keyops"
    ]


# -- every workflow -----------------------------------------------------------------------
@pytest.mark.parametrize(("ws", "name"), EVERY)
def test_run_steps_are_project_commands(ws: WorkflowSet, name: str) -> None:
    problems = {
        f"{job}: {step['run']!r}": ws.run_problems(step["run"], step.get("env") or {})
        for job, step in steps(ws.load(name))
        if "run" in step
    }
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.parametrize(("ws", "name"), EVERY)
def test_keyops_commands_in_workflows_have_help(ws: WorkflowSet, name: str) -> None:
    used = {
        shlex.split(step["run"])[1]
        for _, step in steps(ws.load(name))
        if "run" in step and step["run"].startswith("keyops ")
    }
    for command in used:
        proc = subprocess.run(
            [sys.executable, "-m", "keyops", command, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert f"usage: keyops {command}" in proc.stdout


@pytest.mark.parametrize(("ws", "name"), EVERY)
def test_uses_are_pinned_to_a_commit_with_a_version_comment(ws: WorkflowSet, name: str) -> None:
    lines = [m for m in map(USES_LINE.match, (ws.directory / name).read_text().splitlines()) if m]
    assert lines, "every workflow checks out the repository"
    for match in lines:
        assert PINNED.match(match.group(1)), match.group(0)
        assert re.match(r"\s*#\s*v\d+(\.\d+)*\s*$", match.group(2)), match.group(0)


@pytest.mark.parametrize(("ws", "name"), EVERY)
def test_permissions_are_empty_at_the_top_and_granted_per_job(ws: WorkflowSet, name: str) -> None:
    workflow = ws.load(name)
    assert workflow["permissions"] == {}
    for job_id, job in workflow["jobs"].items():
        assert isinstance(job.get("permissions"), dict), f"{job_id} has no explicit permissions"
        assert "write-all" not in str(job["permissions"])


@pytest.mark.parametrize(("ws", "name"), EVERY)
def test_checkouts_do_not_persist_credentials(ws: WorkflowSet, name: str) -> None:
    for job, step in steps(ws.load(name)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, job


@pytest.mark.parametrize(("ws", "name"), EVERY)
def test_no_dangerous_triggers_and_no_key_on_disk(ws: WorkflowSet, name: str) -> None:
    text = (ws.directory / name).read_text()
    workflow = ws.load(name)
    assert "pull_request_target" not in workflow["on"]
    assert "workflow_run" not in workflow["on"]
    # The age key travels only as SOPS_AGE_KEY in a step's env, never as a file.
    assert "SOPS_AGE_KEY_FILE" not in text
    for job, step in steps(workflow):
        assert "secrets." not in str(step.get("run", "")), job
        for key, value in (step.get("env") or {}).items():
            if "secrets." in str(value):
                assert key == "SOPS_AGE_KEY", (job, key)
    for job_id, job in workflow["jobs"].items():
        # Job-level env would hand the key to every step, actions included.
        assert "secrets." not in str(job.get("env", "")), job_id


# -- each workflow's shape -----------------------------------------------------------------
STACKS_MATRIX = "${{ fromJSON(needs.stacks.outputs.stacks) }}"


def _stacks_job(workflow: dict[str, Any], *extra: str) -> None:
    """The first job lists the stacks (keyops stack list) for the others' matrix."""
    job = workflow["jobs"]["stacks"]
    assert job["permissions"] == {"contents": "read"}
    assert job["outputs"] == {"stacks": "${{ steps.list.outputs.stacks }}"}
    (listing,) = [s for s in job["steps"] if s.get("id") == "list"]
    assert listing["run"].startswith("keyops stack list --deployable ")
    assert listing["run"].endswith(" --github-output")
    for option in extra:
        assert option in listing["run"]


@pytest.mark.parametrize("ws", BOTH)
def test_pr_workflow(ws: WorkflowSet) -> None:
    workflow = ws.load("pr.yml")
    assert workflow["on"] == {"pull_request": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    permissions = {
        "stacks": {"contents": "read"},
        "policy": {
            "contents": "read",
            "id-token": "write",
            "pull-requests": "write",
            "security-events": "write",
        },
        "preview": {"contents": "read", "id-token": "write"},
        "previews": {},
    }
    if ws is REPOSITORY:  # a credentials repository has no code to lint or test
        permissions |= {"lint": {"contents": "read"}, "test": {"contents": "read"}}
    assert {k: j["permissions"] for k, j in jobs.items()} == permissions
    runs = {job: [s["run"] for s in j["steps"] if "run" in s] for job, j in jobs.items()}
    assert (
        'keyops check --base "origin/$BASE_REF" --all-stacks --adoption adoption.json '
        "--format sarif > keyops.sarif" in runs["policy"]
    )
    if ws is REPOSITORY:
        assert runs["lint"] == ["make lint"]
        assert runs["test"] == ["make test"]
    verify = next(
        s for s in jobs["policy"]["steps"] if str(s.get("run")).startswith("keyops verify")
    )
    assert verify["run"] == (
        'keyops verify --base "origin/$BASE_REF" --skip-stacks "$SKIP_STACKS" '
        '--summary "$GITHUB_STEP_SUMMARY"'
    )
    assert verify["env"]["SKIP_STACKS"] == "${{ vars.KEYOPS_VERIFY_SKIP_STACKS }}"
    assert verify["if"] == "${{ !cancelled() }}"  # verified even when the policy check fails
    summary = next(r for r in runs["policy"] if r.startswith("keyops approval"))
    assert "--comment" in summary and '--summary "$GITHUB_STEP_SUMMARY"' in summary
    assert "--no-status" in summary  # retire-approval.yml alone owns the status
    uploads = [s for s in jobs["policy"]["steps"] if "upload-sarif" in str(s.get("uses"))]
    assert uploads[0]["with"]["sarif_file"] == "keyops.sarif"
    assert "!cancelled()" in uploads[0]["if"]  # findings fail the check step, SARIF still goes up
    _stacks_job(workflow)
    preview = jobs["preview"]
    assert preview["needs"] == "stacks"
    assert preview["if"] == "${{ needs.stacks.outputs.stacks != '[]' }}"
    assert preview["strategy"]["matrix"]["stack"] == STACKS_MATRIX
    assert preview["strategy"]["fail-fast"] is False
    pulumi = next(s for s in preview["steps"] if "pulumi/actions@" in str(s.get("uses")))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    assert pulumi["with"]["policyPacks"] == "policies/infra"
    # The required check sums up every preview; a skipped or cancelled one fails it.
    previews = jobs["previews"]
    assert previews["name"] == "pulumi preview"
    assert previews["needs"] == ["stacks", "preview"] and previews["if"] == "${{ always() }}"
    (fail,) = previews["steps"]
    assert fail["run"] == "exit 1"
    assert fail["if"] == (
        "${{ needs.stacks.result != 'success' || (needs.preview.result != 'success' && "
        "needs.preview.result != 'skipped') }}"
    )
    assert workflow["concurrency"]["cancel-in-progress"] is True


@pytest.mark.parametrize("ws", BOTH)
def test_retire_approval_workflow(ws: WorkflowSet) -> None:
    workflow = ws.load("retire-approval.yml")
    assert set(workflow["on"]) == {"pull_request", "pull_request_review"}
    assert workflow["on"]["pull_request_review"] == {"types": ["submitted", "dismissed"]}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "read",
        "statuses": "write",
    }
    (run,) = [s for s in job["steps"] if "run" in s and s["run"].startswith("keyops")]
    assert run["run"] == (
        'keyops approval --repo-slug "$REPO" --pr "$PR_NUMBER" --head-sha "$HEAD_SHA" '
        '--base "origin/$BASE_REF"'
    )
    assert run["env"]["HEAD_SHA"] == "${{ github.event.pull_request.head.sha }}"
    assert run["env"]["GITHUB_TOKEN"] == "${{ github.token }}"


@pytest.mark.parametrize("ws", BOTH)
def test_deploy_workflow_deploys_the_listed_stacks_one_at_a_time(ws: WorkflowSet) -> None:
    workflow = ws.load("deploy.yml")
    assert workflow["on"]["push"] == {"branches": ["main"]}
    dispatch = workflow["on"]["workflow_dispatch"]["inputs"]["stack"]
    assert dispatch["type"] == "string" and dispatch["default"] == "all"
    jobs = workflow["jobs"]
    assert list(jobs) == ["stacks", "deploy"]
    _stacks_job(workflow, '--only "$STACK"')
    (listing,) = [s for s in jobs["stacks"]["steps"] if s.get("id") == "list"]
    assert listing["env"] == {"STACK": "${{ inputs.stack || 'all' }}"}
    job = jobs["deploy"]
    assert job["needs"] == "stacks"
    assert job["if"] == "${{ needs.stacks.outputs.stacks != '[]' }}"
    # One stack at a time in the listed order (non-production first); a failure stops the rest.
    assert job["strategy"] == {
        "max-parallel": 1,
        "fail-fast": True,
        "matrix": {"stack": STACKS_MATRIX},
    }
    assert job["environment"] == "${{ matrix.stack }}"
    assert job["concurrency"] == {
        "group": "keyops-${{ matrix.stack }}",
        "cancel-in-progress": False,
    }
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    uses = [str(s.get("uses", "")).split("@")[0] for s in job["steps"]]
    order = [uses.index("aws-actions/configure-aws-credentials"), uses.index("pulumi/actions")]
    assert order == sorted(order)
    pulumi = job["steps"][order[1]]
    assert pulumi["with"]["command"] == "up"
    assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    assert pulumi["with"]["policyPacks"] == "policies/infra"
    smoke = job["steps"][-1]
    assert smoke["run"] == 'keyops smoke --stack "$STACK"'
    assert smoke["env"]["STACK"] == "${{ matrix.stack }}"
    # The age key of a stack comes from its environment only; KMS stacks leave it unset there.
    for step in (pulumi, smoke):
        assert step["env"]["SOPS_AGE_KEY"] == "${{ secrets.KEYOPS_DEPLOY_AGE_KEY }}"


@pytest.mark.parametrize("ws", BOTH)
def test_hygiene_workflow(ws: WorkflowSet) -> None:
    workflow = ws.load("hygiene.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    assert len(workflow["on"]["schedule"]) == 1
    jobs = workflow["jobs"]
    assert jobs["max-age"]["permissions"] == {"contents": "read", "issues": "write"}
    assert jobs["bundles"]["permissions"] == {"contents": "read", "actions": "write"}
    runs = [s["run"] for _, s in steps(workflow) if "run" in s]
    assert 'keyops hygiene issues --repo-slug "$REPO"' in runs
    assert (
        'keyops hygiene bundles --within-days 7 --repo-slug "$REPO" --dispatch deploy.yml '
        '--ref "$DEFAULT_BRANCH"'
    ) in runs
    assert "hygiene" not in str(workflow.get("env", ""))


def test_what_hygiene_dispatches_is_what_the_deploy_listing_takes() -> None:
    from keyops.cli.commands.hygiene import dispatch_input

    assert dispatch_input(["prod"]) == "prod"
    assert dispatch_input(["dev", "prod"]) == "dev,prod"
    # deploy.yml passes the input to `keyops stack list --only`, which splits on commas.
    (listing,) = [s for s in load("deploy.yml")["jobs"]["stacks"]["steps"] if s.get("id") == "list"]
    assert run_problems(listing["run"], {"STACK": dispatch_input(["dev", "prod"])}) == []


@pytest.mark.parametrize("name", NAMES)
def test_the_template_runs_the_same_keyops_commands_as_this_repository(name: str) -> None:
    """A credentials repository of its own gets every check this one has (a step added to one
    set belongs in the other too); only the install steps and the code jobs differ."""

    def keyops_runs(ws: WorkflowSet) -> list[str]:
        return [
            s["run"] for _, s in steps(ws.load(name)) if str(s.get("run", "")).startswith("keyops")
        ]

    assert keyops_runs(TEMPLATE) == keyops_runs(REPOSITORY)
    code_jobs = {"lint", "test"}
    assert list(TEMPLATE.load(name)["jobs"]) == [
        j for j in REPOSITORY.load(name)["jobs"] if j not in code_jobs
    ]


# -- the linters that `make lint` runs over .github/ and the template workflows -------------
@pytest.mark.parametrize("ws", BOTH)
def test_workflows_pass_the_github_workflow_schema(ws: WorkflowSet) -> None:
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *(str(ws.directory / n) for n in NAMES),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("ws", BOTH)
def test_zizmor_finds_nothing_at_medium_or_above(ws: WorkflowSet) -> None:
    inputs = (
        [str(PROJECT / ".github")] if ws is REPOSITORY else [str(ws.directory / n) for n in NAMES]
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "zizmor"),
            "--offline",
            "--min-severity",
            "medium",
            "--format",
            "plain",
            *inputs,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout


def test_make_lint_runs_the_workflow_linters() -> None:
    text = (PROJECT / "Makefile").read_text()
    recipe = text.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "zizmor --offline" in recipe
    assert "--builtin-schema vendor.github-workflows" in recipe
    assert "ruff check" in recipe and "mypy" in recipe
    assert recipe.count("$(TEMPLATE_WORKFLOWS)") == 2  # both linters see the template set too


# -- docs/github-setup.md stays true to the workflows ----------------------------------------
def _doc() -> str:
    return (PROJECT / "docs" / "github-setup.md").read_text()


def _json_blocks(text: str) -> list[Any]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, flags=re.S)]


def test_required_checks_in_the_setup_guide_are_the_check_names_the_workflows_produce() -> None:
    text = _doc()
    protection = re.search(r"--input - <<'EOF'\n(.*?)\nEOF", text, flags=re.S)
    assert protection is not None
    documented = [
        c["context"] for c in json.loads(protection.group(1))["required_status_checks"]["checks"]
    ]
    produced = {"keyops/approval"}  # the commit status that `keyops approval` posts
    for job in load("pr.yml")["jobs"].values():
        # One check per stack would make branch protection list the stacks: the per-stack
        # previews are summed up by `pulumi preview`, and the stack listing feeds them.
        if "${{" not in job["name"] and job["name"] != "stacks":
            produced.add(job["name"])
    assert (
        set(documented)
        == produced
        == {
            "keyops/approval",
            "keyops check",
            "lint",
            "tests",
            "pulumi preview",
        }
    )


def test_the_setup_guide_trust_policies_are_valid_and_scoped() -> None:
    trusts = [
        b
        for b in _json_blocks(_doc())
        if b["Statement"][0].get("Action") == "sts:AssumeRoleWithWebIdentity"
    ]
    subjects = [
        t["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        for t in trusts
    ]
    assert subjects == ["repo:acme/keyops:pull_request", "repo:acme/keyops:environment:prod"]
    for trust in trusts:
        condition = trust["Statement"][0]["Condition"]["StringEquals"]
        assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"


def test_every_variable_and_secret_the_workflows_use_is_documented() -> None:
    text = _doc()
    used: set[str] = set()
    for ws in SETS:
        for name in NAMES:
            used |= set(
                re.findall(
                    r"\$\{\{[^}]*?\b(?:vars|secrets)\.([A-Z0-9_]+)",
                    (ws.directory / name).read_text(),
                )
            )
    assert used == {
        "AWS_REGION",
        "KEYOPS_READONLY_ROLE_ARN",
        "KEYOPS_ADOPTION_READER_ROLE_ARN",
        "KEYOPS_DEPLOY_ROLE_ARN",
        "PULUMI_BACKEND_URL",
        "KEYOPS_AGE_KEY",
        "KEYOPS_DEPLOY_AGE_KEY",
        "KEYOPS_VERIFY_SKIP_STACKS",
    }
    for name in used:
        assert f"`{name}`" in text, name
