"""Real ``keyops serve`` processes on 127.0.0.1, started and stopped by process id."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.net import free_port
from support.repo import KeyRepo

#: A shared 2-core machine under full test load is slow to start a server.
START_TIMEOUT = 120.0


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def health(url: str, timeout: float = 2) -> dict[str, Any] | None:
    """``GET /healthz`` as JSON when it answers 200, else None."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=timeout) as answer:
            if answer.status == 200:
                data: dict[str, Any] = json.load(answer)
                return data
    except (urllib.error.URLError, OSError, ValueError):
        pass
    return None


def launch(repo: KeyRepo, args: list[str], log: Path, *, port: int | None = None) -> Server:
    """Start ``keyops serve ARGS`` on ``port`` (default: a free one); do not wait."""
    port = port or free_port()
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keyops", "serve", "--port", str(port), *args],
            cwd=repo.root,
            env=repo.env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return Server(proc, f"http://127.0.0.1:{port}", log)


def wait_healthy(server: Server, timeout: float = START_TIMEOUT) -> int:
    """Wait for /healthz to answer 200; return the bundle_version it reports."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.proc.poll() is None:
        body = health(server.url)
        if body is not None:
            return int(body["bundle_version"])
        time.sleep(0.1)
    server.stop()
    raise AssertionError(
        f"keyops serve at {server.url} did not become healthy:\n{server.output()[-3000:]}"
    )


def wait_for_version(server: Server, version: int, timeout: float = START_TIMEOUT) -> None:
    """Wait until /healthz reports at least ``version`` (the server reloads on its own)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        body = health(server.url)
        seen = body["bundle_version"] if body else seen
        if seen is not None and seen >= version:
            return
        time.sleep(0.1)
    raise AssertionError(f"{server.url} still serves bundle_version {seen}, wanted {version}")


def start_serve(
    repo: KeyRepo,
    args: list[str],
    log: Path,
    *,
    port: int | None = None,
    wait: bool = True,
    timeout: float = START_TIMEOUT,
) -> Server:
    """``keyops serve`` as a real subprocess; with ``wait``, healthy before it returns.

    A server that exits at start is returned as it is, for tests of refusals.
    """
    server = launch(repo, args, log, port=port)
    if wait:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.proc.poll() is not None or health(server.url, timeout=1) is not None:
                return server
            time.sleep(0.1)
        server.stop()
        raise AssertionError(f"server did not become healthy:\n{server.output()}")
    return server


def point_endpoints(repo: KeyRepo, urls: list[str], *, commit: bool = True) -> None:
    """Set the dev stack's endpoints (the stack file, re-encrypted), and commit it."""
    document = repo.read_doc("credentials/dev/_stack.yaml")
    document["endpoints"] = urls
    repo.write_doc("credentials/dev/_stack.yaml", document)
    if commit:
        repo.commit("endpoints for the test servers")
