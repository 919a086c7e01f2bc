"""Real ``keyops serve`` processes on 127.0.0.1 for the client's integration tests. No tests here.

``two_servers`` builds the sample stack with ``keyops build`` after pointing the stack file's
``endpoints`` at two free loopback ports, then starts one ``keyops serve`` per port and waits for
``/healthz``. Everything is stopped by process id at teardown, so nothing outlives a test.
``run_fetch`` runs ``keyops fetch`` in-process, or as a real process, outside any repository.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.cli import run_in_process, run_subprocess
from support.net import free_port
from support.repo import KeyRepo, clean_env
from support.serve import Server, launch, point_endpoints, wait_healthy


@dataclass
class Served:
    repo: KeyRepo
    bundle: Path
    servers: list[Server] = field(default_factory=list)
    #: What the servers' /healthz reports (keyops build derives it from the repository).
    bundle_version: int = 0

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]


@pytest.fixture
def two_servers(keyrepo: KeyRepo, tmp_path: Path) -> Iterator[Served]:
    ports = [free_port(), free_port()]
    point_endpoints(keyrepo, [f"http://127.0.0.1:{p}" for p in ports])
    bundle = tmp_path / "bundle"
    built = keyrepo.run("build", "--stack", "dev", "--out", str(bundle))
    assert built.returncode == 0, built.stderr
    served = Served(keyrepo, bundle)
    try:
        for i, port in enumerate(ports):
            args = ["--bundle", str(bundle), "--poll", "0.2"]
            served.servers.append(launch(keyrepo, args, tmp_path / f"serve{i}.log", port=port))
        for server in served.servers:
            served.bundle_version = wait_healthy(server)
        yield served
    finally:
        for server in served.servers:
            server.stop()


def write_config(repo: KeyRepo, path: Path, client: str = "ios", *extra: str) -> dict[str, object]:
    proc = repo.run(
        "client-config", "--stack", "dev", "--client", client, "--out", str(path), *extra
    )
    assert proc.returncode == 0, proc.stderr
    data: dict[str, object] = json.loads(path.read_text())
    return data


def run_fetch(
    cwd: Path, *args: str, process: bool = False, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``keyops fetch ARGS`` in ``cwd``, with a clean environment (HOME is ``cwd``)."""
    env = clean_env(cwd)
    if process:
        return run_subprocess(["fetch", *args], env=env, cwd=cwd, timeout=timeout)
    return run_in_process(["fetch", *args], env=env, cwd=cwd)
