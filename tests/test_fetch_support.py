"""Real ``keyops serve`` processes on 127.0.0.1 for the client's integration tests. No tests here.

``two_servers`` builds the sample stack with ``keyops build`` after pointing the stack file's
``endpoints`` at two free loopback ports, then starts one ``keyops serve`` per port and waits for
``/healthz``. Everything is stopped by process id at teardown, so nothing outlives a test.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import KeyRepo

START_TIMEOUT = 120.0  # a shared 2-core machine under full test load is slow to start


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def closed_url() -> str:
    """A loopback URL nothing listens on: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


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


def point_endpoints(repo: KeyRepo, urls: list[str]) -> None:
    document = repo.read_doc("credentials/dev/_stack.yaml")
    document["endpoints"] = urls
    repo.write_doc("credentials/dev/_stack.yaml", document)
    repo.commit("endpoints for the test servers")


def wait_healthy(server: Server) -> int:
    """Wait for /healthz to answer 200; return the bundle_version it reports."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    version: int = json.load(answer)["bundle_version"]
                    return version
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(
        f"keyops serve at {server.url} did not become healthy:\n"
        + server.log.read_text(errors="replace")[-3000:]
    )


def wait_for_version(server: Server, version: int) -> None:
    """Wait until /healthz reports at least ``version`` (the server reloads on its own)."""
    deadline = time.monotonic() + START_TIMEOUT
    seen = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as answer:
                seen = json.load(answer)["bundle_version"]
                if seen >= version:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{server.url} still serves bundle_version {seen}, wanted {version}")


def start_server(repo: KeyRepo, bundle: Path, port: int, log: Path) -> Server:
    handle = log.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keyops",
            "serve",
            "--bundle",
            str(bundle),
            "--port",
            str(port),
            "--poll",
            "0.2",
        ],
        cwd=repo.root,
        env=repo.env(),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    return Server(f"http://127.0.0.1:{port}", proc, log)


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
            served.servers.append(start_server(keyrepo, bundle, port, tmp_path / f"serve{i}.log"))
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
