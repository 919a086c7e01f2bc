"""A real browser: Debian's Chromium, driven by playwright-core, uses @keyops/client on a page.

``scripts/web_demo.py`` (what ``make web-demo`` runs) serves the example page of
clients/js/example/ on one loopback port and starts ``keyops serve`` with the dev bundle on
another, so every call of the page is cross-origin and goes through a CORS preflight:

- at ``http://localhost:PORT`` (allowed by the dev web client's ``http://localhost:*``) the page
  shows the web key, the one ``keyops fetch`` gets; with its clock an hour slow it still does,
  which needs the exposed ``Date`` header;
- at ``http://127.0.0.1:PORT`` (not allowed) the preflight is refused and the page shows the
  documented ``NothingUsable`` error.

Each page's screenshot is saved in tests/e2e/browser/artifacts/ (git-ignored). Chromium
(/usr/bin/chromium), Node 20+ and npm are required: without them the tests fail with the
command that installs them. Nothing is downloaded at run time: the Node packages come from the
committed lockfiles with ``npm ci``, and Playwright never fetches a browser of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.devstack import DevBundle
from support.js import ensure_built, ensure_installed, node, run
from support.net import free_port
from support.repo import PROJECT

BROWSER = PROJECT / "tests" / "e2e" / "browser"
ARTIFACTS = BROWSER / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
DEMO = PROJECT / "scripts" / "web_demo.py"
START_TIMEOUT = 300.0  # seconds for the demo's keyops serve on a busy 2-core machine
WEB_CREDENTIAL = "web-2026-06"
REFUSED = (
    "NothingUsable: no usable Pusher key: every endpoint failed, and there is no cached or "
    "bundled key"
)


def chromium() -> None:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is not installed ({CHROMIUM} is missing): the browser test cannot run. "
            "Install it with 'apt-get install -y chromium' (as root; .ci/run does this when it "
            "is missing), then run the tests again.",
            pytrace=False,
        )


@dataclass
class Demo:
    allowed: str  # the page at http://localhost:PORT/
    other: str  # the same page at http://127.0.0.1:PORT/, an origin that is not allowed
    endpoint: str
    log: Path
    pages: dict[str, dict[str, Any]]

    def requests(self) -> list[str]:
        """keyops serve's access log (``"METHOD PATH" STATUS``): each request but /healthz."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.count('"') == 2 and "/healthz" not in line:
                request, status = line.split('"')[1], line.split('"')[2].split()[0]
                out.append(f"{request} {status}")
        return out


def start_demo(bundle: DevBundle, log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port, keyops_port = free_port(), free_port()
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [
                sys.executable, str(DEMO), "--port", str(port), "--keyops-port", str(keyops_port),
                "--bundle", str(bundle.bundle),
            ],
            cwd=PROJECT,
            env=bundle.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its keyops serve too: one group to stop if it hangs
        )  # fmt: skip
    ready = f"web demo: open http://localhost:{port}/"
    deadline = time.monotonic() + START_TIMEOUT
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_demo(proc)
            pytest.fail(f"the web demo did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)
    return proc, f"http://localhost:{port}/", f"http://127.0.0.1:{port}/"


def stop_demo(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # the demo stops its keyops serve first
        try:
            proc.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this test created, by its id
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def drive(work: Path, pages: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Open each page (name -> URL) in one fresh Chromium profile; what each page shows."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    jobs = {
        "profile": str(work / "chromium-profile"),
        "pages": [
            {"url": url, "screenshot": str(ARTIFACTS / f"{name}.png")}
            for name, url in pages.items()
        ],
    }
    (work / "pages.json").write_text(json.dumps(jobs))
    proc = run([node(), str(BROWSER / "drive.mjs"), str(work / "pages.json")], cwd=BROWSER)
    if proc.returncode != 0:
        pytest.fail(f"driving Chromium failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    shown: list[dict[str, Any]] = json.loads(proc.stdout)
    return dict(zip(pages, shown, strict=True))


@pytest.fixture(scope="module")
def demo(dev_bundle: DevBundle) -> Iterator[Demo]:
    chromium()
    ensure_built()
    ensure_installed(BROWSER)
    log = dev_bundle.work / "web-demo.log"
    proc, allowed, other = start_demo(dev_bundle, log)
    try:
        endpoint = next(
            line.split("keyops serve at ", 1)[1].split(";", 1)[0]
            for line in log.read_text().splitlines()
            if line.startswith("web demo: open ")
        )
        pages = drive(
            dev_bundle.work,
            {
                "not-allowed": other,  # first: nothing cached in the profile yet
                "allowed": allowed,
                "slow-clock": allowed + "?clock_offset=-3600",
            },
        )
        yield Demo(allowed, other, endpoint, log, pages)
    finally:
        stop_demo(proc)


def test_a_page_whose_origin_is_not_allowed_gets_no_key(demo: Demo) -> None:
    page = demo.pages["not-allowed"]
    assert page["state"] == "error", page
    assert page["shown"]["origin"] == demo.other.rstrip("/")
    assert page["shown"]["status"] == REFUSED
    # The browser refused the preflight: the request with the token was never sent.
    assert page["shown"]["attempts"] == f"{demo.endpoint}: unreachable (network error (TypeError))"
    assert (page["shown"]["key"], page["shown"]["credential"]) == ("-", "-")
    blocked = (
        f"Access to fetch at '{demo.endpoint}/v1/credentials' from origin "
        f"'{demo.other.rstrip('/')}' has been blocked by CORS policy"
    )
    assert any(message.startswith(blocked) for message in page["console"]), page["console"]
    assert demo.requests()[0] == "OPTIONS /v1/credentials 405"
    assert (ARTIFACTS / "not-allowed.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_page_on_an_allowed_origin_gets_the_web_key_through_the_preflight(
    demo: Demo, dev_bundle: DevBundle
) -> None:
    page = demo.pages["allowed"]
    assert page["state"] == "ok", page
    config = dev_bundle.config("web", demo.endpoint)
    want = dev_bundle.fetch(config, "browser-test-0001", "1.0.0")
    assert page["shown"]["status"] == f"ok: {WEB_CREDENTIAL} from {demo.endpoint}"
    assert page["shown"]["credential"] == want["credential_id"] == WEB_CREDENTIAL
    assert page["shown"]["key"] == want["key"]
    assert page["shown"]["cluster"] == want["cluster"]
    assert page["shown"]["bundle-version"] == str(want["bundle_version"])
    assert page["shown"]["attempts"] == f"{demo.endpoint}: ok ({WEB_CREDENTIAL})"
    assert demo.requests()[1:3] == ["OPTIONS /v1/credentials 204", "GET /v1/credentials 200"]
    assert (ARTIFACTS / "allowed.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_slow_clock_is_corrected_from_the_exposed_date_header(demo: Demo) -> None:
    page = demo.pages["slow-clock"]
    assert page["state"] == "ok", page
    # The stale-token answer and the resend with the server's time are one attempt.
    assert page["shown"]["attempts"] == f"{demo.endpoint}: ok ({WEB_CREDENTIAL})"
    assert page["shown"]["key"] == demo.pages["allowed"]["shown"]["key"]
    assert "GET /v1/credentials 401" in demo.requests()[3:]
