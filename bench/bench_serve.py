"""Benchmark of the key-serving endpoint, all on loopback, in one run (``make bench``).

Measures, each as a ratio against baselines measured in the same run:

1. ``keyops serve`` (uvicorn[standard], N workers) with full HS256 verification + JWE per request:
   requests/s, p50 and p99 latency, from a keep-alive asyncio load generator in its own process;
2. the crypto floor: the same core (``Endpoint.handle``: token check, selection, JWE) in a tight
   in-process loop on the same number of processes;
3. nginx serving a static file of the same size as one answer, when nginx is installed
   (``apt-get install nginx-light``; skipped otherwise);
4. the Lambda handler's cold start (fresh interpreter: import + bundle load + first answer)
   against a bare ``python -c pass``.

Every phase is bounded in time; nothing leaves 127.0.0.1. ``--quick`` shortens each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
DEV_KEY = PROJECT / "keys" / "dev-TEST-ONLY.agekey"


# -- setup ---------------------------------------------------------------------------------------


def build_bundle(out: Path) -> None:
    env = dict(os.environ)
    env.setdefault("SOPS_AGE_KEY_FILE", str(DEV_KEY))
    subprocess.run(
        [sys.executable, "-m", "keyops", "build", "--stack", "dev", "--out", str(out)],
        cwd=PROJECT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def tokens(count: int) -> list[str]:
    """Valid app tokens for ios, each with its own ephemeral key (minted before timing)."""
    from joserfc import jwt
    from joserfc.jwk import ECKey, OctKey

    from keyops.store.sops import Sops

    env = dict(os.environ)
    env.setdefault("SOPS_AGE_KEY_FILE", str(DEV_KEY))
    doc = json.loads(Sops(PROJECT, env=env).decrypt("credentials/dev/ios.yaml"))
    auth = next(a for a in doc["app_auth"] if a["state"] == "active")
    import base64

    secret = base64.urlsafe_b64decode(auth["secret"] + "=" * (-len(auth["secret"]) % 4))
    key = OctKey.import_key(secret)
    out = []
    for i in range(count):
        claims = {
            "sub": "ios",
            "aud": "dev",
            "iat": int(time.time()),
            "jti": secrets.token_urlsafe(16),
            "app_version": "5.2.0",
            "install_id": f"bench-install-{i:06d}",
            "epk": ECKey.generate_key("P-256").as_dict(private=False),
        }
        out.append(jwt.encode({"alg": "HS256", "kid": auth["kid"], "typ": "JWT"}, claims, key))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_up(port: int, path: str = "/healthz", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                )
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path}")


# -- load generator ------------------------------------------------------------------------------


async def _connection(
    port: int, requests: list[bytes], stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


def _load_process(port: int, requests: list[bytes], seconds: float, conns: int, q: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    latencies: list[float] = []
    errors: list[int] = []
    stop_at = time.perf_counter() + seconds

    async def main() -> None:
        await asyncio.gather(
            *(_connection(port, requests, stop_at, latencies, errors) for _ in range(conns))
        )

    started = time.perf_counter()
    asyncio.run(main())
    q.put((latencies, errors, time.perf_counter() - started))


def load(port: int, requests: list[bytes], seconds: float, conns: int) -> dict[str, float]:
    """Keep-alive load from one separate process; returns req/s, p50, p99 (ms) and errors."""
    q: Any = mp.Queue()
    proc = mp.Process(target=_load_process, args=(port, requests, seconds, conns, q))
    proc.start()
    latencies, errors, elapsed = q.get(timeout=seconds + 60)
    proc.join(timeout=10)
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "errors": float(len(errors)),
    }


def request_bytes(path: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/jose\r\n{auth}\r\n"
    ).encode()


# -- phases --------------------------------------------------------------------------------------


def _floor_worker(bundle_dir: str, toks: list[str], seconds: float, q: Any) -> None:
    from keyops.endpoint.core import Endpoint
    from keyops.protocol.bundle import Bundle

    endpoint = Endpoint(Bundle.load(Path(bundle_dir)))
    done = 0
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < stop_at:
        answer = endpoint.handle("GET", "/v1/credentials", f"Bearer {toks[done % len(toks)]}")
        if answer.status != 200:
            raise RuntimeError(f"floor answer {answer.status}")
        done += 1
    q.put(done / (time.perf_counter() - started))


def crypto_floor(bundle_dir: Path, toks: list[str], seconds: float, procs: int) -> float:
    q: Any = mp.Queue()
    workers = [
        mp.Process(target=_floor_worker, args=(str(bundle_dir), toks, seconds, q))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    total = sum(q.get(timeout=seconds + 60) for _ in workers)
    for w in workers:
        w.join(timeout=10)
    return float(total)


def serve_phase(
    bundle_dir: Path, toks: list[str], seconds: float, workers: int, conns: int
) -> tuple[dict[str, float], int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keyops",
            "serve",
            "--bundle",
            str(bundle_dir),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_up(port)
        requests = [request_bytes("/v1/credentials", t) for t in toks]
        load(port, requests, min(2.0, seconds), conns)  # warm-up
        result = load(port, requests, seconds, conns)
        size = _answer_size(port, toks[0])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return result, size


def _answer_size(port: int, token: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            request_bytes("/v1/credentials", token).replace(
                b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"
            )
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return len(data.split(b"\r\n\r\n", 1)[1])


def nginx_phase(size: int, seconds: float, workers: int, conns: int) -> dict[str, float] | None:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        return None
    with tempfile.TemporaryDirectory(prefix="keyops-bench-nginx-") as tmp:
        root = Path(tmp)
        (root / "www").mkdir()
        (root / "www" / "answer.jose").write_bytes(b"A" * size)
        os.chmod(root, 0o755)
        os.chmod(root / "www", 0o755)
        port = free_port()
        conf = root / "nginx.conf"
        conf.write_text(
            f"worker_processes {workers};\ndaemon off;\npid {root}/nginx.pid;\n"
            f"error_log {root}/error.log;\nevents {{ worker_connections 1024; }}\n"
            "http {\n  access_log off;\n  keepalive_requests 1000000;\n"
            f"  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy;\n"
            f"  fastcgi_temp_path {root}/fcgi; uwsgi_temp_path {root}/uwsgi;\n"
            f"  scgi_temp_path {root}/scgi;\n"
            f"  server {{ listen 127.0.0.1:{port}; root {root}/www;\n"
            "    location = /healthz { return 200 'ok'; }\n"
            "    location / { default_type application/jose; } }\n}\n"
        )
        proc = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(port)
            requests = [request_bytes("/answer.jose")]
            load(port, requests, min(2.0, seconds), conns)
            return load(port, requests, seconds, conns)
        finally:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def cold_start(bundle_dir: Path, token: str, runs: int) -> tuple[float, float]:
    """Median seconds: fresh interpreter doing import + bundle load + first answer, vs pass."""
    event = json.dumps(
        {
            "version": "2.0",
            "rawPath": "/v1/credentials",
            "headers": {"authorization": f"Bearer {token}"},
            "requestContext": {"http": {"method": "GET", "path": "/v1/credentials"}},
        }
    )
    code = (
        "import json, os\n"
        "from keyops.endpoint import lambda_handler\n"
        "answer = lambda_handler.handler(json.loads(os.environ['BENCH_EVENT']), None)\n"
        "assert answer['statusCode'] == 200, answer['statusCode']\n"
    )
    env = {**os.environ, "KEYOPS_BUNDLE": str(bundle_dir), "BENCH_EVENT": event}

    def timed(args: list[str]) -> float:
        start = time.perf_counter()
        subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start

    handler = [timed([sys.executable, "-c", code]) for _ in range(runs)]
    bare = [timed([sys.executable, "-c", "pass"]) for _ in range(runs)]
    return statistics.median(handler), statistics.median(bare)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (smoke run)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per load phase")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    args = parser.parse_args(argv)
    seconds = args.seconds or (2.0 if args.quick else 8.0)
    workers = args.workers
    with tempfile.TemporaryDirectory(prefix="keyops-bench-") as tmp:
        bundle_dir = Path(tmp) / "bundle"
        build_bundle(bundle_dir)
        toks = tokens(200)
        print(
            f"loopback, {os.cpu_count()} CPUs, {workers} worker process(es), "
            f"{args.connections} keep-alive connections, {seconds:.0f} s per phase",
            flush=True,
        )
        # The floor is measured before and after the server phase and averaged: on a shared
        # machine the background load drifts, and bracketing keeps the ratio honest.
        before = crypto_floor(bundle_dir, toks, seconds, workers)
        served, size = serve_phase(bundle_dir, toks, seconds, workers, args.connections)
        after = crypto_floor(bundle_dir, toks, seconds, workers)
        floor = (before + after) / 2
        print(
            f"crypto floor (in-process Endpoint.handle x{workers} procs): {floor:,.0f} req/s "
            f"(before {before:,.0f}, after {after:,.0f}; load average "
            f"{os.getloadavg()[0]:.1f})",
            flush=True,
        )
        print(
            f"keyops serve: {served['rps']:,.0f} req/s, p50 {served['p50_ms']:.2f} ms, "
            f"p99 {served['p99_ms']:.2f} ms, non-200: {served['errors']:.0f} "
            f"(answer {size} bytes)",
            flush=True,
        )
        print(f"  ratio serve / crypto floor: {served['rps'] / floor:.2f} (goal >= 0.60)")
        static = nginx_phase(size, seconds, workers, args.connections)
        if static is None:
            print("nginx: not installed, skipped (apt-get install nginx-light to include it)")
        else:
            print(
                f"nginx static file of {size} bytes: {static['rps']:,.0f} req/s, "
                f"p50 {static['p50_ms']:.2f} ms, p99 {static['p99_ms']:.2f} ms"
            )
            print(f"  ratio serve / nginx: {served['rps'] / static['rps']:.3f}")
        runs = 5 if args.quick else 15
        handler, bare = cold_start(bundle_dir, toks[0], runs)
        print(
            f"Lambda cold start (import + bundle load + first answer): {1000 * handler:.0f} ms "
            f"median of {runs}; bare python -c pass: {1000 * bare:.0f} ms"
        )
        print(f"  ratio cold start / bare interpreter: {handler / bare:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
