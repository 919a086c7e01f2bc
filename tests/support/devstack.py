"""The committed dev stack, built and served as a user would: ``keyops build`` into a temporary
directory, then ``keyops serve`` on 127.0.0.1, both decrypting with the committed TEST-ONLY key
(keys/dev-TEST-ONLY.agekey).

Fixtures (module scope): ``dev_bundle`` (a built bundle and the environment to run keyops in)
and ``dev`` (the same, served by a real ``keyops serve``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.js import run
from support.net import free_port
from support.repo import PROJECT, clean_env
from support.serve import Server, wait_healthy

DEV_KEY = PROJECT / "keys" / "dev-TEST-ONLY.agekey"


@dataclass
class DevBundle:
    work: Path
    bundle: Path
    env: dict[str, str]

    def keyops(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(
            [sys.executable, "-m", "keyops", "-C", str(PROJECT), *args],
            cwd=self.work,
            timeout=120,
            env=self.env,
        )

    def config(self, client: str, url: str) -> Path:
        """The client's bootstrap config from ``keyops client-config``, pointed at ``url``."""
        proc = self.keyops("client-config", "--stack", "dev", "--client", client)
        assert proc.returncode == 0, proc.stderr
        document = json.loads(proc.stdout)
        document["endpoints"] = [url]
        path = self.work / f"{client}-{url.rsplit(':', 1)[-1]}.json"
        path.write_text(json.dumps(document))
        path.chmod(0o600)
        return path

    def fetch(self, config: Path, install_id: str, app_version: str) -> dict[str, Any]:
        """What ``keyops fetch`` (the Python reference client) gets with ``config``."""
        proc = self.keyops(
            "fetch", "--config", str(config), "--install-id", install_id,
            "--app-version", app_version, "--rounds", "1", "--timeout", "20", "--format", "json",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        answer: dict[str, Any] = json.loads(proc.stdout)
        return answer


@dataclass
class DevStack(DevBundle):
    serve: Server
    clients: list[str]


def served_clients() -> list[str]:
    """The dev stack's clients with ``delivery: served`` (cleartext metadata of each file)."""
    return sorted(
        path.stem
        for path in (PROJECT / "credentials" / "dev").glob("*.yaml")
        if re.search(r"^delivery:\s*served\s*$", path.read_text(), re.MULTILINE)
    )


@pytest.fixture(scope="module")
def dev_bundle(tmp_path_factory: pytest.TempPathFactory) -> DevBundle:
    work = tmp_path_factory.mktemp("dev-stack")
    env = clean_env(work / "home")
    env["SOPS_AGE_KEY_FILE"] = str(DEV_KEY)
    bundle = work / "bundle"
    built = DevBundle(work, bundle, env).keyops("build", "--stack", "dev", "--out", str(bundle))
    assert built.returncode == 0, built.stderr
    return DevBundle(work, bundle, env)


@pytest.fixture(scope="module")
def dev(dev_bundle: DevBundle) -> Iterator[DevStack]:
    work, bundle, env = dev_bundle.work, dev_bundle.bundle, dev_bundle.env
    port = free_port()
    log = work / f"serve-{port}.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "keyops", "serve", "--bundle", str(bundle),
                "--host", "127.0.0.1", "--port", str(port),
            ],
            cwd=work,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_healthy(server)
        yield DevStack(work, bundle, env, server, served_clients())
    finally:
        server.stop()
