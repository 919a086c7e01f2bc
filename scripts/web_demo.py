"""Serve the @keyops/client example page next to ``keyops serve`` (``make web-demo``).

    .venv/bin/python scripts/web_demo.py [--port 8790] [--keyops-port 8787] [--bundle DIR]

Starts ``keyops serve`` on 127.0.0.1:KEYOPS_PORT (the dev stack, rebuilt when its files change;
or the bundle directory given with ``--bundle``), then serves the example page of
clients/js/example/ on 127.0.0.1:PORT with the built browser bundle
(clients/js/dist/browser/keyops-client.js, from ``npm run build``) and the web client's
bootstrap config (``keyops client-config``, pointed at that ``keyops serve``), and prints the
page's URL.

The page's origin, ``http://localhost:PORT``, is allowed by the dev web client's
``http://localhost:*``; the same page opened as ``http://127.0.0.1:PORT/`` is an origin that is
not allowed, and shows the error a browser gives it. Ctrl-C (or SIGTERM) stops both servers.
The dev stack decrypts with ``SOPS_AGE_KEY_FILE`` (``make web-demo`` sets the TEST-ONLY key).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLE = PROJECT / "clients" / "js" / "example"
BROWSER_BUNDLE = PROJECT / "clients" / "js" / "dist" / "browser" / "keyops-client.js"
HOST = "127.0.0.1"
START_TIMEOUT = 180.0  # seconds: building the bundle on a busy machine takes a while


class DemoError(Exception):
    """A problem the demo explains and exits 2 on."""


def keyops(*args: str) -> list[str]:
    return [sys.executable, "-m", "keyops", "-C", str(PROJECT), *args]


def bootstrap_config(stack: str, client: str, endpoint: str) -> bytes:
    """The client's bootstrap config, pointed at ``endpoint``; kept in memory, never on disk."""
    proc = subprocess.run(
        keyops("client-config", "--stack", stack, "--client", client),
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise DemoError(f"keyops client-config failed:\n{proc.stderr.strip()}")
    document: dict[str, Any] = json.loads(proc.stdout)
    document["endpoints"] = [endpoint]
    return json.dumps(document).encode()


def start_keyops(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    source = ["--bundle", str(args.bundle)] if args.bundle else ["--stack", args.stack]
    return subprocess.Popen(
        keyops("serve", *source, "--host", HOST, "--port", str(args.keyops_port), "--access-log"),
        stdin=subprocess.DEVNULL,
    )


def wait_healthy(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"keyops serve exited with {proc.returncode} (see its output above)")
        try:
            # url is the http://127.0.0.1 address this script built, never user input
            with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise DemoError(f"keyops serve did not answer {url}/healthz within {START_TIMEOUT:.0f} s")


def page_server(port: int, files: dict[str, tuple[bytes, str]]) -> ThreadingHTTPServer:
    """Serves exactly ``files`` (path -> body, content type) on 127.0.0.1, nothing else."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path.split("?", 1)[0])
            body, kind = found or (b"not found\n", "text/plain")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keyops serve's access log is the interesting one

    return ThreadingHTTPServer((HOST, port), Page)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same orderly stop as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8790, help="the page's port (default 8790)")
    parser.add_argument("--keyops-port", type=int, default=8787, help="keyops serve's port")
    parser.add_argument("--stack", default="dev", help="the stack to serve (default dev)")
    parser.add_argument("--client", default="web", help="the served web client (default web)")
    parser.add_argument("--bundle", type=Path, help="serve this built bundle instead of --stack")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    if not BROWSER_BUNDLE.is_file():
        print(
            f"error: {BROWSER_BUNDLE.relative_to(PROJECT)} is missing. Build it: "
            "cd clients/js && npm ci && npm run build (make web-demo does).",
            file=sys.stderr,
        )
        return 2
    endpoint = f"http://{HOST}:{args.keyops_port}"
    server = start_keyops(args)
    try:
        wait_healthy(server, endpoint)
        files = {
            "/": ((EXAMPLE / "index.html").read_bytes(), "text/html; charset=utf-8"),
            "/app.js": ((EXAMPLE / "app.js").read_bytes(), "text/javascript"),
            "/keyops-client.js": (BROWSER_BUNDLE.read_bytes(), "text/javascript"),
            "/favicon.ico": (b"", "image/x-icon"),  # keeps the browser console clean
            "/keyops-web.json": (
                bootstrap_config(args.stack, args.client, endpoint),
                "application/json",
            ),
        }
        with page_server(args.port, files) as httpd:
            print(
                f"web demo: open http://localhost:{args.port}/ (keyops serve at {endpoint}; "
                f"http://{HOST}:{args.port}/ is an origin it does not allow). Ctrl-C stops.",
                flush=True,
            )
            httpd.serve_forever()
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"error: cannot serve the page on {HOST}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        stop(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
