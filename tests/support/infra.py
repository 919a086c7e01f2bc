"""Helpers for the deployment tests: a repository with dev + prod stacks, the mocked program run,
and a secret scanner that looks inside base64url (JWS/JWE segments) as well as raw bytes."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keyops.deploy.guard import Recorded
from keyops.store import sample
from keyops.store.sops import Sops
from support.repo import PROJECT, TODAY, clean_env, new_identity, sops_rules

HARNESS = PROJECT / "tests" / "support" / "infra_harness.py"
B64_TOKEN = re.compile(rb"[A-Za-z0-9_-]{16,}")


@dataclass
class DeployRepo:
    root: Path
    keyfile: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = clean_env(self.home)
        env.update(
            SOPS_AGE_KEY_FILE=str(self.keyfile),
            KEYOPS_REPO=str(self.root),
            KEYOPS_ASSET_STRATEGY="copy",
        )
        env.update(extra)
        return env

    def secrets(self, stack: str) -> dict[str, list[str]]:
        """Every decrypted secret of a stack, by kind."""
        sops = Sops(self.root, env=self.env())
        found: dict[str, list[str]] = {"pusher": [], "app_auth": [], "master": [], "signing": []}
        for path in sorted((self.root / "credentials" / stack).glob("*.yaml")):
            doc = json.loads(sops.decrypt(path.relative_to(self.root).as_posix()))
            found["pusher"] += [c["secret"] for c in doc.get("credentials", [])]
            found["app_auth"] += [a["secret"] for a in doc.get("app_auth", [])]
            if "encryption_master_key" in doc:
                found["master"].append(doc["encryption_master_key"])
            for key in doc.get("signing_keys", []):
                found["signing"].append(json.loads(key["private_jwk"])["d"])
        return found


@pytest.fixture(scope="module")
def deploy_repo(
    tmp_path_factory: pytest.TempPathFactory, _template: tuple[Path, str, str]
) -> DeployRepo:
    """One dev + prod repository per test module (import this fixture into the module)."""
    return make_repo(tmp_path_factory.mktemp("deploy"), _template)


def make_repo(base: Path, template: tuple[Path, str, str]) -> DeployRepo:
    """The conftest template (dev stack) plus a prod stack under a second age identity."""
    source, identity, recipient = template
    root = base / "repo"
    shutil.copytree(source, root, symlinks=True)
    home = base / "home"
    home.mkdir()
    prod_identity, prod_recipient = new_identity()
    keyfile = base / "identities.agekey"
    keyfile.write_text(f"# test identities\n{identity}\n{prod_identity}\n")
    (root / ".sops.yaml").write_text(sops_rules({"dev": [recipient], "prod": [prod_recipient]}))
    repo = DeployRepo(root, keyfile, home)
    sops = Sops(root, env=repo.env())
    documents = sample.dev_stack(TODAY)
    documents["_stack"] = sample.stack_document(
        "prod", dt.date(2026, 11, 1), ["https://keys.example.com"]
    )
    documents["web"]["allowed_origins"] = ["https://app.example.com"]  # no localhost in prod
    for name, document in documents.items():
        rel = f"credentials/prod/{name}.yaml"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(sops.encrypt(sample.dump_yaml(document), rel))
    for args in (
        ("init", "--quiet", "--initial-branch=main"),
        ("add", "-A"),
        ("commit", "--quiet", "-m", "dev and prod credentials"),
    ):
        subprocess.run(["git", *args], cwd=root, env=repo.env(), check=True)
    return repo


@dataclass
class Run:
    """One mocked run of the program: what it declared and what it exported."""

    error: str | None
    resources: list[dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    raw: str

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_]

    def children(self, component: str) -> list[dict[str, Any]]:
        """The resources declared inside the component resource named ``component``."""
        return [r for r in self.resources if (r.get("parent") or "").endswith(f"::{component}")]

    def by_urn(self) -> dict[str, dict[str, Any]]:
        return {r["urn"]: r for r in self.resources}

    def one(self, type_: str, region: str | None = None) -> dict[str, Any]:
        found = [r for r in self.of(type_) if region is None or r["region"] == region]
        assert len(found) == 1, (type_, region, len(found))
        return found[0]

    def recorded(self) -> list[Recorded]:
        providers = {r["id"]: r["inputs"] for r in self.of("pulumi:providers:aws")}
        return [
            Recorded(
                r["type"],
                r["name"],
                r["urn"],
                r["inputs"],
                r["state"],
                providers.get(r["provider"]) if r["provider"] else None,
                protect=r["protect"],
            )
            for r in self.resources
            if r["custom"] and not r["type"].startswith("pulumi:")
        ]


def run_program(
    repo: DeployRepo, stack: str, out: Path, *extra: str, stack_file: Path | None = None
) -> Run:
    """The real infra/ program in a fresh interpreter under Pulumi's mocks."""
    stack_file = stack_file or PROJECT / "stacks" / f"Pulumi.{stack}.yaml"
    return run_harness(
        sys.executable, PROJECT / "infra", stack_file, stack, out, repo.env(), *extra
    )


def run_harness(
    python: str | Path,
    program_dir: Path,
    stack_file: Path,
    stack: str,
    out: Path,
    env: dict[str, str],
    *extra: str,
) -> Run:
    """``program_dir/__main__.py`` under Pulumi's mocks, run by ``python`` (any keyops install)."""
    proc = subprocess.run(
        [
            str(python),
            str(HARNESS),
            str(stack_file),
            stack,
            str(out),
            "--program",
            str(program_dir / "__main__.py"),
            *extra,
        ],
        cwd=program_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    raw = out.read_text()
    data = json.loads(raw)
    return Run(data["error"], data["resources"], data["outputs"], raw)


def altered(
    records: list[Recorded], name: str, *, drop: bool = False, **props: Any
) -> list[Recorded]:
    """``records`` with the resource ``name`` changed in inputs and outputs alike (or dropped).

    ``protect=``/``provider=`` change those options; any other keyword is a property.
    """
    assert any(r.name == name for r in records), name
    out = []
    for r in records:
        if r.name != name:
            out.append(r)
        elif not drop:
            options = {k: props.pop(k) for k in ("protect", "provider") if k in props}
            out.append(
                dataclasses.replace(
                    r,
                    inputs={**r.inputs, **props},
                    outputs={**r.outputs, **props},
                    **options,
                )
            )
    return out


def expand(data: bytes, depth: int = 3) -> Iterator[bytes]:
    """``data`` and, recursively, whatever its base64url tokens decode to (JWS/JWE segments)."""
    yield data
    if depth == 0:
        return
    for token in B64_TOKEN.findall(data):
        try:
            decoded = base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            continue
        if decoded:
            yield from expand(decoded, depth - 1)


def leaked(tree: Path, secrets: list[str]) -> list[tuple[str, str]]:
    """(file, secret prefix) for every secret found in any file under ``tree``."""
    hits = []
    for file in sorted(p for p in tree.rglob("*") if p.is_file()):
        data = file.read_bytes()
        # Base64 expansion only for text-sized files: compiled wheels hold no bundle.
        for blob in expand(data) if len(data) < 1_000_000 else [data]:
            for secret in secrets:
                if secret.encode() in blob:
                    hits.append((file.relative_to(tree).as_posix(), secret[:4] + "…"))
    return hits
