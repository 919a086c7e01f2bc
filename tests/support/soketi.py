"""A real Pusher-protocol server for the end-to-end tests: soketi, pinned in tests/e2e/pusher.

``Soketi(workdir).start(apps)`` starts ``soketi start`` with Node on free loopback ports, its
JSON config (test-only secrets) written to its stdin rather than to a file, waits until
``/ready`` answers, and stops it by process id. Everything stays on 127.0.0.1: the WebSocket and
HTTP API port, the metrics port, and cluster discovery, which soketi otherwise binds to 0.0.0.0 and
broadcasts to 255.255.255.255. ``restart(apps)`` replaces it with a soketi holding other apps on
the same WebSocket port: that is how a test adds a key at the server, changes a secret or
deletes a key. uWebSockets listens with SO_REUSEPORT, so the new process starts while the old
one still runs, and only then is the old one killed (by its process id). Its clients see the
connection drop, and pusher-js reconnects after its fixed 1 s delay to the only server left. A
graceful stop would race instead: during soketi's grace period the kernel may hand a reconnect
to the closing process, and one reset there sends pusher-js into a 15 s backoff. (The same
SO_REUSEPORT means a stale server would share a port without a bind error: a first start checks
that the port is free.)

Two facts about soketi shape the tests:

- Its apps come from the config, one key set per app; its HTTP API finds an app by the id in
  the path and checks the signature with *that* app's secret (the first app with the id).
  Pusher holds several key sets per app and checks the one named by ``auth_key``. A WebSocket
  finds its app by key, so several keys of one app connect fine; an HTTP API check reaches only
  the first key set listed for an app id.
- The pinned uWebSockets.js build (an npm ``overrides`` entry, see package.json) ships native
  binaries for Node 16, 18 and 20. On another Node it silently falls back to a JavaScript
  emulation that pusher-js cannot connect to, so :func:`check_node` refuses that loudly.

Missing Node, npm or packages FAIL the test with the install command, never skip it.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import npm
from support.net import free_port, free_udp_port, port_is_free
from support.pusher_api import Cred
from support.repo import PROJECT

PUSHER_DIR = PROJECT / "tests" / "e2e" / "pusher"
SOKETI_JS = PUSHER_DIR / "node_modules" / "@soketi" / "soketi" / "bin" / "server.js"
UWS_BINARIES = PUSHER_DIR / "node_modules" / "uWebSockets.js" / "binaries"
INSTALL = "Install the test peers with 'make e2e' (or: cd tests/e2e/pusher && npm ci)."
#: A shared 2-core machine under full test load is slow to start Node.
START_TIMEOUT = 90.0
#: What the uWebSockets.js loader prints when it falls back to its JavaScript emulation.
FALLBACK_MARKS = ("not compatible with your Node.js build", "fallback implementation")
READY_MARK = "Server is up and running"


@dataclass(frozen=True)
class App:
    id: str
    key: str
    secret: str


def apps_for(creds: list[Cred]) -> list[App]:
    """The soketi apps of the live credentials, in the order given (see the module docstring)."""
    return [App(c.app_id, c.key, c.secret) for c in creds if c.state in LIVE]


LIVE = ("pending", "active", "retiring")


def check_node() -> str:
    """Node with a native uWebSockets.js binary for its ABI; fails the test otherwise."""
    npm.ensure_installed(PUSHER_DIR)
    node = npm.node()
    abi = npm.run([node, "-p", "process.versions.modules"], cwd=PUSHER_DIR, timeout=60)
    arch = {"x86_64": "x64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    binary = UWS_BINARIES / f"uws_linux_{arch}_{abi.stdout.strip()}.node"
    if not binary.is_file():
        version = npm.run([node, "--version"], cwd=PUSHER_DIR, timeout=60).stdout.strip()
        pytest.fail(
            f"soketi cannot run natively on node {version} (ABI {abi.stdout.strip()}): the "
            "pinned uWebSockets.js build has binaries for Node 16, 18 and 20 only, and on other "
            "versions it falls back to a JavaScript emulation that pusher-js never connects to. "
            "Install Node.js 20 (e.g. from the distribution or NodeSource), then run 'make e2e'.",
            pytrace=False,
        )
    if not SOKETI_JS.is_file():
        pytest.fail(f"soketi is not installed in {PUSHER_DIR}. {INSTALL}", pytrace=False)
    return node


@dataclass
class Soketi:
    workdir: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_udp_port)
    apps: list[App] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / f"soketi-{self.starts}.log"

    def config(self) -> dict[str, object]:
        return {
            "debug": False,  # debug prints the whole config, secrets included
            "host": "127.0.0.1",
            "port": self.port,
            "metrics.enabled": False,
            "metrics.host": "127.0.0.1",
            "metrics.port": self.metrics_port,
            # Cluster discovery: bound to loopback and unicast to it, never a broadcast.
            "cluster.address": "127.0.0.1",
            "cluster.hostname": "127.0.0.1",
            "cluster.port": self.cluster_port,
            "cluster.unicast": "127.0.0.1",
            "shutdownGracePeriod": 200,
            "appManager.driver": "array",
            "appManager.array.apps": [
                {"id": a.id, "key": a.key, "secret": a.secret, "enabled": True} for a in self.apps
            ],
        }

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self, apps: list[App]) -> None:
        for port in (self.port, self.metrics_port):
            if not port_is_free(port):
                pytest.fail(f"127.0.0.1:{port} is taken: soketi would share it", pytrace=False)
        self._launch(apps)

    def _launch(self, apps: list[App]) -> None:
        node = check_node()
        self.apps = list(apps)
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith(("UWS_", "SOKETI_"))}
        with self.log.open("wb") as log:
            # The config (test-only secrets) goes through a pipe: no file ever holds it.
            self.proc = subprocess.Popen(
                [node, str(SOKETI_JS), "start", "--config=/dev/stdin"],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        assert self.proc.stdin is not None
        with self.proc.stdin:
            self.proc.stdin.write(json.dumps(self.config()).encode())
        self.wait_ready()

    def wait_ready(self) -> None:
        """This process's own log says it is up (while two share the port, an HTTP probe could
        reach the old one), and the port answers ``/ready``."""
        deadline = time.monotonic() + START_TIMEOUT
        assert self.proc is not None
        while time.monotonic() < deadline and self.proc.poll() is None:
            if READY_MARK in self.output():
                try:
                    with urllib.request.urlopen(self.url + "/ready", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.05)
        else:
            self.stop()
            pytest.fail(f"soketi did not become ready:\n{self.output()[-3000:]}", pytrace=False)
        text = self.output()
        if any(mark in text for mark in FALLBACK_MARKS):
            self.stop()
            pytest.fail(
                "soketi runs on uWebSockets.js's JavaScript fallback, which pusher-js cannot "
                f"connect to:\n{text[-2000:]}\nUse Node.js 20, then run 'make e2e'.",
                pytrace=False,
            )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def restart(self, apps: list[App]) -> float:
        """Replace the server with one holding ``apps``, on the same WebSocket port.

        Returns the monotonic time at which the old server was killed: from then on only the new
        one takes connections and answers the HTTP API.
        """
        old = self.proc
        if old is None or old.poll() is not None:
            self.proc = None
            self.start(apps)
            return time.monotonic()
        # Fresh metrics and cluster ports: those are not shared with the old process.
        self.metrics_port, self.cluster_port = free_port(), free_udp_port()
        self._launch(apps)
        switched = time.monotonic()
        old.kill()
        old.wait(timeout=30)
        return switched
