"""Real keyops repositories for tests: real git, real sops-encrypted files, an age identity each.

``KeyRepo`` is one repository in a temporary directory: its own age identity (generated with
pyrage, a binding of the reference rage implementation), a ``.sops.yaml`` with a dev rule for
it, the policy settings, and the sample dev stack encrypted with the real sops binary. The
``keyrepo`` fixture (conftest.py) copies a template built once per test process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage

from keyops.store import sample
from keyops.store.sops import Sops
from support.cli import run_in_process, run_subprocess

PROJECT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 27)


def new_identity() -> tuple[str, str]:
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def sops_rules(rules: dict[str, list[str]]) -> str:
    """``.sops.yaml`` text: one creation rule per stack, each with its age recipients."""
    lines = ["creation_rules:"]
    for stack, recipients in rules.items():
        lines += [
            f"  - path_regex: ^credentials/{stack}/[^/]+\\.yaml$",
            "    encrypted_regex: ^(key|secret|encryption_master_key|private_jwk)$",
            f"    age: {','.join(recipients)}",
        ]
    return "\n".join(lines) + "\n"


def clean_env(home: Path) -> dict[str, str]:
    """The environment minus any key source that could leak in from the machine."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOPS_", "AWS_", "KEYOPS_", "GIT_", "PYTEST_XDIST")) and k != "HOME"
    }
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "Test Author"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "author@example.invalid"
    env["NO_COLOR"] = "1"
    return env


@dataclass
class KeyRepo:
    root: Path
    identity_file: Path
    recipient: str
    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    # -- environment ---------------------------------------------------------------------
    def env(self, *, key: bool = True, **extra: str) -> dict[str, str]:
        env = clean_env(self.home)
        if key:
            env["SOPS_AGE_KEY_FILE"] = str(self.identity_file)
        env.update(self.extra_env)
        env.update(extra)
        return env

    def sops(self) -> Sops:
        return Sops(self.root, env=self.env())

    # -- files ---------------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        return self.root / rel

    def write_bytes(self, rel: str, data: bytes) -> Path:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    def write_doc(self, rel: str, document: dict[str, Any], *, encrypt: bool = True) -> Path:
        """Write a document; encrypted with real sops under the path's creation rule."""
        plain = sample.dump_yaml(document)
        data = self.sops().encrypt(plain, rel) if encrypt else plain
        return self.write_bytes(rel, data)

    def decrypt(self, rel: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.sops().decrypt(rel))
        return data

    def read_doc(self, rel: str) -> dict[str, Any]:
        """Decrypted content of a sample file (a fresh copy to edit and write back)."""
        return self.decrypt(rel)

    def add_stack_without_key(self, stack: str = "prod") -> None:
        """Commit a stack encrypted to a recipient whose private key is thrown away.

        It stands for a stack whose key this machine does not hold (only CI's does).
        """
        _, recipient = new_identity()
        rules = {"dev": [self.recipient], stack: [recipient]}
        self.write_bytes(".sops.yaml", sops_rules(rules).encode())
        today = dt.date(2026, 11, 20)
        self.write_doc(f"credentials/{stack}/_stack.yaml", sample.stack_document(stack, today))
        server = sample.dev_stack(today)["server"]
        server["credentials"][0]["id"] = f"{stack}-server-2026-11"
        self.write_doc(f"credentials/{stack}/server.yaml", server)
        self.commit(f"{stack} stack, encrypted to a key this machine lacks")

    # -- git -----------------------------------------------------------------------------
    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=self.root, env=self.env(), capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    # -- the CLI -------------------------------------------------------------------------
    def run(
        self,
        *args: str,
        key: bool = True,
        input: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        process: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run the keyops CLI as a user would: in-process, or as ``python -m keyops``."""
        full_env = self.env(key=key)
        if env:
            full_env.update(env)
        where = cwd or self.root
        if process:
            return run_subprocess(args, env=full_env, cwd=where, input=input, timeout=timeout)
        return run_in_process(args, env=full_env, cwd=where, input=input)


def build_template(target: Path) -> tuple[str, str]:
    identity, recipient = new_identity()
    target.mkdir(parents=True)
    keyfile = target.parent / "identity.agekey"
    keyfile.write_text(f"# test identity\n{identity}\n")
    (target / ".sops.yaml").write_text(sops_rules({"dev": [recipient]}))
    (target / "policies").mkdir()
    settings_text = (PROJECT / "policies" / "keyops.yaml").read_text()
    settings_text = settings_text.replace(
        "age1xptlq8ymcsam5wdxrguuaww5nup3m5qw28yrgj7lm98pu8d4s96svmtsp5", recipient
    )
    (target / "policies" / "keyops.yaml").write_text(settings_text)
    env = clean_env(target.parent)
    env["SOPS_AGE_KEY_FILE"] = str(keyfile)
    sops = Sops(target, env=env)
    for name, document in sample.dev_stack(TODAY).items():
        rel = f"credentials/dev/{name}.yaml"
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(sops.encrypt(sample.dump_yaml(document), rel))
    return identity, recipient


def new_repo(base: Path, template: tuple[Path, str, str]) -> KeyRepo:
    """A committed copy of the sample repository under ``base`` (the ``keyrepo`` fixture's)."""
    source, identity, recipient = template
    root = base / "repo"
    shutil.copytree(source, root, symlinks=True)
    home = base / "home"
    home.mkdir()
    keyfile = base / "identity.agekey"
    keyfile.write_text(f"# test identity\n{identity}\n")
    repo = KeyRepo(root=root, identity_file=keyfile, recipient=recipient, home=home)
    repo.git("init", "--quiet", "--initial-branch=main")
    repo.commit("initial credentials")
    return repo
