"""Stack and client names: refused before any path is built, and unknown ones answered alike.

Every command that takes ``--stack`` or ``--client`` is listed in ``INVOCATIONS`` with the
smallest argument list that parses; a test walks the real parser so that a new command with
such an option cannot be left out.
"""

from __future__ import annotations

import argparse

import pytest

from keyops.cli.main import COMMANDS, build_parser
from keyops.store import names
from support.repo import KeyRepo

STACK_ERROR = (
    "error: --stack {value!r} is not a valid stack name: a stack name must be 2-31 characters "
    "of lowercase letters, digits and '-', starting with a letter. It names the directory "
    "credentials/<stack>/; pass the bare name, e.g. --stack dev.\n"
)
CLIENT_ERROR = (
    "error: --client {value!r} is not a valid client name: a client name must be 3-63 "
    "characters of lowercase letters, digits and '-', starting with a letter or digit. It names "
    "the file credentials/<stack>/<client>.yaml; pass the bare name, e.g. --client ios.\n"
)

#: The smallest command line of each command (or sub-command) that has --stack or --client;
#: STACK and CLIENT are replaced by the values under test.
INVOCATIONS: dict[str, list[str]] = {
    "validate": ["validate", "--stack", "STACK"],
    "check": ["check", "--stack", "STACK"],
    "status": ["status", "--stack", "STACK"],
    "rotate": ["rotate", "--stack", "STACK", "--client", "CLIENT"],
    "promote": ["promote", "--stack", "STACK", "--client", "CLIENT"],
    "retire": ["retire", "--stack", "STACK", "--client", "CLIENT", "--id", "x-2026-01"],
    "revoke": [
        "revoke", "--stack", "STACK", "--client", "CLIENT", "--id", "x-2026-01",
        "--reason", "r", "--incident", "I-1",
    ],
    "rollout": [
        "rollout", "--stack", "STACK", "--client", "CLIENT", "--id", "x-2026-01", "--percent", "5"
    ],
    "app-auth": ["app-auth", "rotate", "--stack", "STACK", "--client", "CLIENT"],
    "export": ["export", "--stack", "STACK", "--client", "CLIENT", "--format", "json"],
    "history": ["history", "--stack", "STACK", "--client", "CLIENT"],
    "build": ["build", "--stack", "STACK", "--out", "bundle"],
    "serve": ["serve", "--stack", "STACK"],
    "client-config": ["client-config", "--stack", "STACK", "--client", "CLIENT"],
    "smoke": ["smoke", "--stack", "STACK", "--client", "CLIENT"],
    "approval": [
        "approval", "--repo-slug", "acme/keyops", "--pr", "1", "--head-sha", "0" * 40,
        "--base", "main", "--stack", "STACK",
    ],
    "hygiene issues": ["hygiene", "issues", "--repo-slug", "acme/keyops", "--stack", "STACK"],
    "hygiene bundles": ["hygiene", "bundles", "--stack", "STACK"],
    "adoption": [
        "adoption", "--from", "versions", "installs.csv", "--stack", "STACK", "--client", "CLIENT"
    ],
    "release": [
        "release", "--stack", "STACK", "--client", "CLIENT", "--app-version", "1.0.0",
        "--id", "x-2026-01",
    ],
    "verify": ["verify", "--stack", "STACK", "--client", "CLIENT"],
    "client add": [
        "client", "add", "--stack", "STACK", "--client", "CLIENT", "--platform", "ios",
        "--delivery", "served", "--app-id", "1874221", "--cluster", "eu",
    ],
    "doctor": ["doctor", "--stack", "STACK"],
}  # fmt: skip


def _with_names(parser: argparse.ArgumentParser, name: str) -> dict[str, set[str]]:
    """``{"command [sub]": {"--stack", "--client"}}`` for every parser that has either."""
    found: dict[str, set[str]] = {}
    options = {o for a in parser._actions for o in a.option_strings} & {"--stack", "--client"}
    if options:
        found[name] = options
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                found.update(_with_names(child, f"{name} {sub}".strip()))
    return found


def test_every_command_with_a_name_option_is_covered() -> None:
    found = _with_names(build_parser(), "")
    assert set(found) == set(INVOCATIONS), "add the new command to INVOCATIONS"
    for name, options in found.items():
        line = INVOCATIONS[name]
        assert ("--client" in options) == ("CLIENT" in line), name


@pytest.mark.parametrize("command", sorted(INVOCATIONS))
@pytest.mark.parametrize("bad", ["../dev", "dev/web", "Dev", "-x", "d"])
def test_a_stack_name_the_schema_does_not_allow_is_refused(
    keyrepo: KeyRepo, command: str, bad: str
) -> None:
    line = [bad if a == "STACK" else "ios" if a == "CLIENT" else a for a in INVOCATIONS[command]]
    line = [f"--stack={bad}" if a == "--stack" else a for a in line]
    line.remove(bad)
    proc = keyrepo.run(*line, key=False)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == STACK_ERROR.format(value=bad)


@pytest.mark.parametrize(
    "command", sorted(c for c, line in INVOCATIONS.items() if "CLIENT" in line)
)
def test_a_client_name_the_schema_does_not_allow_is_refused(keyrepo: KeyRepo, command: str) -> None:
    bad = "../dev/web"
    line = [bad if a == "CLIENT" else "dev" if a == "STACK" else a for a in INVOCATIONS[command]]
    line = [f"--client={bad}" if a == "--client" else a for a in line]
    line.remove(bad)
    before = {p: p.read_bytes() for p in keyrepo.root.rglob("*.yaml")}
    proc = keyrepo.run(*line, key=False)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == CLIENT_ERROR.format(value=bad)
    assert {p: p.read_bytes() for p in keyrepo.root.rglob("*.yaml")} == before


def test_export_of_a_path_as_client_is_refused_without_a_traceback(keyrepo: KeyRepo) -> None:
    # The case from the review: a relative path as the client name.
    proc = keyrepo.run(
        "export", "--stack", "dev", "--client", "../dev/web", "--format", "json", process=True
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == CLIENT_ERROR.format(value="../dev/web")


def test_an_unknown_stack_suggests_the_closest_one(keyrepo: KeyRepo) -> None:
    for line in (
        ["status", "--stack", "dve"],
        ["validate", "--stack", "dve"],
        ["check", "--stack", "dve"],
        ["rotate", "--stack", "dve", "--client", "ios"],
        ["export", "--stack", "dve", "--client", "ios", "--format", "json"],
        ["client-config", "--stack", "dve", "--client", "ios"],
        ["build", "--stack", "dve", "--out", "bundle"],
        ["history", "--stack", "dve", "--client", "ios"],
    ):
        proc = keyrepo.run(*line, key=False)
        assert (proc.returncode, proc.stderr) == (
            2,
            "error: stack 'dve' does not exist (no credentials/dve/ directory). Did you mean "
            "'dev'? Known stacks: dev.\n",
        ), line


def test_an_unknown_client_suggests_the_closest_one(keyrepo: KeyRepo) -> None:
    expected = (
        "error: client 'andriod' does not exist in stack 'dev' (no credentials/dev/andriod.yaml)."
        " Did you mean 'android'? Known clients of dev: android, ios, server, web.\n"
    )
    for line in (
        ["promote", "--stack", "dev", "--client", "andriod"],
        ["export", "--stack", "dev", "--client", "andriod", "--format", "json"],
        ["client-config", "--stack", "dev", "--client", "andriod"],
        ["history", "--stack", "dev", "--client", "andriod"],
    ):
        proc = keyrepo.run(*line)
        assert (proc.returncode, proc.stderr) == (2, expected), line


def test_a_client_that_is_not_served_is_named_by_smoke(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("smoke", "--stack", "dev", "--client", "servr")
    assert (proc.returncode, proc.stderr) == (
        2,
        "error: client 'servr' is not a served client of stack 'dev'. "
        "Known served clients of dev: android, ios, web.\n",
    )


def test_the_name_rules_are_the_schemas() -> None:
    from keyops.store.schema import STACK_SCHEMA, load_schema

    stack_pattern, _ = names.stack_rule()
    client_pattern, _ = names.client_rule()
    assert stack_pattern.pattern == load_schema(STACK_SCHEMA)["properties"]["stack"]["pattern"]
    assert (
        client_pattern.pattern
        == load_schema("credential-file.schema.json")["$defs"]["id"]["pattern"]
    )
    assert [names.closest(n, ["android", "ios", "web"]) for n in ("andorid", "wbe", "tvos")] == [
        "android",
        "web",
        None,
    ]


def test_commands_without_names_are_untouched() -> None:
    # These take no --stack or --client (stack add names its stack as an argument, which the
    # stack command checks itself): the check must not require one.
    assert {c.name for c in COMMANDS} - {n.split()[0] for n in INVOCATIONS} == {
        "fetch",
        "init",
        "keygen",
        "stack",
    }
