"""Reading the GitHub workflows as data: their jobs, steps and the commands they run.

Two sets follow the same rules: this repository's ``.github/workflows`` and the ones ``keyops
init`` writes into a credentials repository of its own (package data under
``src/keyops/templates/init/dot-github/workflows``). The second set has no Makefile to call: it
installs keyops from ``requirements.txt`` instead.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from keyops.cli import main as cli
from keyops.core.errors import KeyopsError

PROJECT = Path(__file__).resolve().parents[2]
WORKFLOWS = PROJECT / ".github" / "workflows"
TEMPLATE_WORKFLOWS = PROJECT / "src" / "keyops" / "templates" / "init" / "dot-github" / "workflows"
NAMES = ("pr.yml", "retire-approval.yml", "deploy.yml", "hygiene.yml")

#: The only shell lines that are neither make nor keyops: put the venv on PATH for later steps,
#: and fail the summing-up job of the previews (its `if:` decides).
PLUMBING = frozenset({'echo "$GITHUB_WORKSPACE/.venv/bin" >> "$GITHUB_PATH"', "exit 1"})
#: A credentials repository of its own installs the keyops release its requirements.txt pins.
TEMPLATE_PLUMBING = frozenset({"python -m pip install -r requirements.txt", "exit 1"})
#: Variables the runner sets for every step.
RUNNER_VARS = frozenset({"GITHUB_WORKSPACE", "GITHUB_PATH", "GITHUB_STEP_SUMMARY", "GITHUB_ENV"})
#: Sample values that stand in for env variables when parsing keyops arguments.
SAMPLES = {
    "PR_NUMBER": "42",
    "HEAD_SHA": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
    "REPO": "acme/keyops",
    "BASE_REF": "main",
    "DEFAULT_BRANCH": "main",
    "GITHUB_STEP_SUMMARY": "/tmp/summary.md",
    "SKIP_STACKS": "staging",
}
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")


@dataclass(frozen=True)
class WorkflowSet:
    label: str
    directory: Path
    plumbing: frozenset[str]
    #: Whether `make TARGET` lines may call this repository's Makefile.
    make: bool

    def load(self, name: str) -> dict[str, Any]:
        return load(name, self.directory)

    def run_problems(self, line: str, env: dict[str, Any]) -> list[str]:
        return run_problems(line, env, plumbing=self.plumbing, make=self.make)


REPOSITORY = WorkflowSet("repository", WORKFLOWS, PLUMBING, make=True)
TEMPLATE = WorkflowSet("template", TEMPLATE_WORKFLOWS, TEMPLATE_PLUMBING, make=False)
SETS = (REPOSITORY, TEMPLATE)


def load(name: str, directory: Path = WORKFLOWS) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((directory / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def make_targets() -> set[str]:
    text = (PROJECT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][A-Za-z0-9_-]*):(?!=)", text, flags=re.M))


def keyops_commands() -> set[str]:
    parser = cli.build_parser()
    for action in parser._actions:
        if action.dest == "command":
            return set(action.choices or {})  # type: ignore[arg-type]
    raise AssertionError("keyops has no subcommands")


def run_problems(
    line: str, env: dict[str, Any], *, plumbing: frozenset[str] = PLUMBING, make: bool = True
) -> list[str]:
    """Why a ``run:`` line breaks the rule (empty when it is allowed)."""
    if "\n" in line.strip():
        return ["a run: step must be a single line"]
    line = line.strip()
    if "${{" in line:
        return ["an expression in run: (pass it through env:)"]
    problems = [
        f"${name} is neither in the step's env: nor set by the runner"
        for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", line)
        if name not in env and name not in RUNNER_VARS
    ]
    if line in plumbing:
        return problems
    if re.search(r"[|;&`]|\$\(", line):
        return [*problems, "shell pipelines, lists or substitutions are not allowed"]
    words = shlex.split(line)
    if ">" in words:  # one redirection of stdout to a plain file name, at the end
        at = words.index(">")
        if at != len(words) - 2 or not re.fullmatch(r"[A-Za-z0-9_.-]+", words[-1]):
            return [*problems, "only a final '> file' redirection is allowed"]
        words = words[:at]
    if words[0] == "make" and not make:
        return [*problems, "a credentials repository has no Makefile: run keyops"]
    if words[0] == "make":
        unknown = [w for w in words[1:] if "=" not in w and w not in make_targets()]
        return problems + [f"make target {w!r} does not exist" for w in unknown]
    if words[0] != "keyops":
        return [*problems, f"{words[0]!r} is not make or keyops"]
    argv = [re.sub(r"\$\{?(\w+)\}?", lambda m: SAMPLES.get(m.group(1), "x"), w) for w in words]
    if len(argv) < 2 or argv[1] not in keyops_commands():
        return [*problems, f"keyops has no command {argv[1:2]}"]
    try:
        cli.build_parser().parse_args(argv[1:])
    except KeyopsError as exc:
        return [*problems, f"keyops rejects the arguments: {exc.render()}"]
    return problems


def steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job_id, step) for job_id, job in workflow["jobs"].items() for step in job.get("steps", [])
    ]


# -- the checker itself can fail ---------------------------------------------------------
