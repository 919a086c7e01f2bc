"""Benchmark of the key-serving endpoint against its floors, in one run (``make bench``).

Three figures, each a ratio against a baseline measured in the same run, printed with its goal
and the load average (the machine may be shared: run it several times, e.g. ``--repeat 3``):

1. **Core vs its crypto floor** (goal <= 2.0): CPU per valid request of ``Endpoint.handle``
   against the primitives it cannot avoid, called on ``cryptography`` directly in the same
   process, alternating blocks: import the request's P-256 ``epk``, make an ephemeral P-256 key
   and export it, ECDH, Concat KDF (one SHA-256), AES-KW of a fresh key, AES-GCM over an answer
   of the real size, and HMAC-SHA256 of the token. Printed beside it: the median time of an
   unknown client, an unknown kid and a bad signature (they must cost the same).
2. **keyops serve vs the in-process core** (goal >= 0.7): requests/s of ``keyops serve
   --workers 2`` driven by ``wrk`` (one thread, keep-alive, a Lua script handing out pre-minted
   tokens, each used once) against ``Endpoint.handle`` in a tight loop on 2 processes, measured
   before and after. The CPU each process used during the ``wrk`` run says how the cores were
   shared, and the server's CPU per request is split into core and HTTP layer.
3. **Lambda cold start vs a bare interpreter** (goal <= 5.0): a fresh ``python -c`` importing
   the handler, loading the bundle and answering one credential request, against
   ``python -c pass``; medians of interleaved runs, in wall time and in CPU time (the latter
   moves less when other processes compete for the cores).

``wrk`` is required (``apt-get install -y wrk`` on Debian/Ubuntu, ``brew install wrk`` on
macOS). Every phase is bounded in time; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
DEV_KEY = PROJECT / "keys" / "dev-TEST-ONLY.agekey"
sys.path.insert(0, str(PROJECT / "src"))

WRK_INSTALL = "install it: apt-get install -y wrk (Debian/Ubuntu) or brew install wrk (macOS)"
#: Cycles through the tokens of the file named by its first argument, one per request; each wrk
#: thread takes every N-th line, so no token is sent twice while there are enough of them.
WRK_SCRIPT = """
local requests = {}
local index = 0
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  local threads = tonumber(args[2])
  local n = 0
  for line in io.lines(args[1]) do
    if n % threads == id then
      -- Formatted once here: building each request in request() cost wrk more CPU than the
      -- HTTP parsing, and wrk shares the cores with the server it measures.
      requests[#requests + 1] = wrk.format(
        "GET", "/v1/credentials", {["Authorization"] = "Bearer " .. line}
      )
    end
    n = n + 1
  end
end
function request()
  index = index + 1
  return requests[(index - 1) % #requests + 1]
end
"""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def verdict(ratio: float, goal: float, lower_is_better: bool) -> str:
    met = ratio <= goal if lower_is_better else ratio >= goal
    return f"goal {'<=' if lower_is_better else '>='} {goal:.1f}: {'met' if met else 'NOT met'}"


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


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Minter:
    """Mints valid app tokens for ios (HS256 by hand: fast enough for 100,000 of them)."""

    kid: str
    secret: bytes
    epks: list[dict[str, str]]

    @classmethod
    def for_dev(cls) -> Minter:
        from cryptography.hazmat.primitives.asymmetric import ec

        from keyops.store.sops import Sops

        env = dict(os.environ)
        env.setdefault("SOPS_AGE_KEY_FILE", str(DEV_KEY))
        doc = json.loads(Sops(PROJECT, env=env).decrypt("credentials/dev/ios.yaml"))
        auth = next(a for a in doc["app_auth"] if a["state"] == "active")
        secret = base64.urlsafe_b64decode(auth["secret"] + "=" * (-len(auth["secret"]) % 4))
        epks = []
        for _ in range(256):
            numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
            epks.append(
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64(numbers.x.to_bytes(32, "big")),
                    "y": b64(numbers.y.to_bytes(32, "big")),
                }
            )
        return cls(auth["kid"], secret, epks)

    def token(self, index: int, *, sub: str = "ios", kid: str | None = None) -> str:
        header = {"alg": "HS256", "kid": kid or self.kid, "typ": "JWT"}
        claims = {
            "sub": sub,
            "aud": "dev",
            "iat": int(time.time()),
            "jti": secrets.token_urlsafe(16),
            "app_version": "5.2.0",
            "install_id": f"bench-install-{index:08d}",
            "epk": self.epks[index % len(self.epks)],
        }
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        mac = hmac.new(self.secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"

    def tokens(self, count: int) -> list[str]:
        return [self.token(i) for i in range(count)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_up(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"keyops serve did not answer on 127.0.0.1:{port}")


# -- 1. the core against its crypto floor ---------------------------------------------------------


def per_request_cpu(bundle_dir: Path, minter: Minter, rounds: int, block: int) -> dict[str, float]:
    """Median CPU µs per call: the core (valid and refused cases) and the crypto floor."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap

    from keyops.endpoint.core import Endpoint, Request
    from keyops.protocol.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    endpoint = Endpoint(bundle)
    plaintext = bundle.clients["ios"].credentials[0].jws.encode()
    aad = b"e" * 200  # the protected header of an answer, base64url: about this long
    other_info = b"\x00\x00\x00\x0eECDH-ES+A256KW" + bytes(8) + (256).to_bytes(4, "big")
    curve, ecdh = ec.SECP256R1(), ec.ECDH()
    points = []
    for epk in minter.epks:
        x = base64.urlsafe_b64decode(epk["x"] + "=")
        y = base64.urlsafe_b64decode(epk["y"] + "=")
        points.append(b"\x04" + x + y)
    valid = [minter.token(i) for i in range(block)]
    cases = {
        "valid": valid,
        "unknown client": [minter.token(i, sub="watch") for i in range(block)],
        "unknown kid": [minter.token(i, kid="no-such-kid") for i in range(block)],
        "bad signature": [t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB") for t in valid],
    }
    signing_inputs = [t.rsplit(".", 1)[0].encode() for t in valid]

    def floor_once(i: int) -> None:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(curve, points[i % len(points)])
        mine = ec.generate_private_key(curve)
        shared = mine.exchange(ecdh, peer)
        numbers = mine.public_key().public_numbers()
        numbers.x.to_bytes(32, "big")
        numbers.y.to_bytes(32, "big")
        kek = hashlib.sha256(b"\x00\x00\x00\x01" + shared + other_info).digest()
        cek = os.urandom(32)
        aes_key_wrap(kek, cek)
        AESGCM(cek).encrypt(os.urandom(12), plaintext, aad)
        hmac.digest(minter.secret, signing_inputs[i], "sha256")

    requests = {
        name: [Request.get("/v1/credentials", f"Bearer {t}") for t in tokens]
        for name, tokens in cases.items()
    }
    expected = {"valid": 200, "unknown client": 401, "unknown kid": 401, "bad signature": 401}
    samples: dict[str, list[float]] = {name: [] for name in [*cases, "floor"]}
    for _ in range(rounds):
        start = time.process_time()
        for i in range(block):
            floor_once(i)
        samples["floor"].append((time.process_time() - start) / block)
        for name, batch in requests.items():
            start = time.process_time()
            for request in batch:
                answer = endpoint.handle(request)
            samples[name].append((time.process_time() - start) / block)
            if answer.status != expected[name]:
                raise RuntimeError(f"{name}: answer {answer.status}")
        # Fresh tokens each round keep iat inside the window on a slow machine.
        valid[:] = [minter.token(i) for i in range(block)]
        requests["valid"] = [Request.get("/v1/credentials", f"Bearer {t}") for t in valid]
    return {name: 1e6 * statistics.median(values) for name, values in samples.items()}


# -- 2. keyops serve against the in-process core ---------------------------------------------------


def _core_worker(bundle_dir: str, tokens: list[str], seconds: float, q: Any) -> None:
    from keyops.endpoint.core import Endpoint, Request
    from keyops.protocol.bundle import Bundle

    endpoint = Endpoint(Bundle.load(Path(bundle_dir)))
    requests = [Request.get("/v1/credentials", f"Bearer {t}") for t in tokens]
    done = 0
    started = time.perf_counter()
    stop_at = started + seconds
    # Each token once: the endpoint accepts a jti only once (a replay is refused, as it must be).
    while done < len(requests) and time.perf_counter() < stop_at:
        if endpoint.handle(requests[done]).status != 200:
            raise RuntimeError("the core refused a valid token")
        done += 1
    q.put(done / (time.perf_counter() - started))


def core_rps(bundle_dir: Path, minter: Minter, seconds: float, procs: int) -> float:
    q: Any = mp.Queue()
    workers = [
        # More tokens than a process can answer in the time: each is used once.
        mp.Process(
            target=_core_worker,
            args=(str(bundle_dir), minter.tokens(int(seconds * 15_000)), seconds, q),
        )
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    total = sum(q.get(timeout=seconds + 120) for _ in workers)
    for w in workers:
        w.join(timeout=30)
    return float(total)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


@dataclass
class ServeRun:
    rps: float
    non_2xx: int
    latency: str
    wall: float
    cpu: dict[str, float]  # process -> CPU seconds during the wrk run


def wrk_run(port: int, tokens_file: Path, seconds: float, connections: int) -> tuple[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        proc = subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:.0f}s",
                "--latency",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}",
                "--",
                str(tokens_file),
                "1",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"wrk failed:\n{output}")
        return output, usage
    finally:
        os.unlink(script.name)


def serve_phase(
    bundle_dir: Path, minter: Minter, expected_rps: float, seconds: float, workers: int
) -> ServeRun:
    port = free_port()
    command = [sys.executable, "-m", "keyops", "serve", "--bundle", str(bundle_dir)]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)],
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_up(port)
        pids = children(proc.pid) if workers > 1 else [proc.pid]
        with tempfile.TemporaryDirectory(prefix="keyops-bench-tokens-") as tmp:
            tokens_file = Path(tmp) / "tokens.txt"
            # Enough for every request at 3x the core's rate: each token is used once.
            tokens_file.write_text("\n".join(minter.tokens(200)) + "\n")
            wrk_run(port, tokens_file, 2, 16)  # warm-up
            count = max(int(expected_rps * seconds * 3), 60_000)
            tokens_file.write_text("\n".join(minter.tokens(count)) + "\n")
            before = {pid: cpu_seconds(pid) for pid in [proc.pid, *pids]}
            started = time.perf_counter()
            output, usage = wrk_run(port, tokens_file, seconds, 32)
            wall = time.perf_counter() - started
            cpu = {f"worker {pid}": cpu_seconds(pid) - before[pid] for pid in pids}
            if workers > 1:
                cpu["supervisor"] = cpu_seconds(proc.pid) - before[proc.pid]
            cpu["wrk"] = usage.ru_utime + usage.ru_stime
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: ([0-9]+)", output)
    p50 = re.search(r"50%\s+(\S+)", output)
    p99 = re.search(r"99%\s+(\S+)", output)
    latency = f"p50 {p50.group(1) if p50 else '?'}, p99 {p99.group(1) if p99 else '?'}"
    requests = re.search(r"([0-9]+) requests in", output)
    if requests and int(requests.group(1)) > count:
        print(f"  note: {requests.group(1)} requests for {count} tokens: some were sent twice")
    return ServeRun(rps, int(non_2xx.group(1)) if non_2xx else 0, latency, wall, cpu)


# -- 3. Lambda cold start --------------------------------------------------------------------------


def cold_start(bundle_dir: Path, token: str, runs: int) -> dict[str, float]:
    """Median seconds, wall and CPU: a fresh interpreter doing import + bundle load + first
    answer (``handler``), and one doing nothing (``bare``)."""
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
    env["PYTHONPATH"] = str(PROJECT / "src")
    # The Lambda asset ships byte code (keyops.deploy.asset): without it every cold start would
    # compile keyops from source, and PYTHONDONTWRITEBYTECODE (set on some machines) stops the
    # warm-up run below from writing any.
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def timed(args: list[str]) -> tuple[float, float]:
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{args} failed")
        return time.perf_counter() - start, usage.ru_utime + usage.ru_stime

    timed([sys.executable, "-c", code])  # byte-compile once, as the Lambda asset ships .pyc
    samples: dict[str, list[float]] = {k: [] for k in ("wall", "cpu", "bare wall", "bare cpu")}
    for _ in range(runs):  # interleaved: background load drifts equally on both
        wall, cpu = timed([sys.executable, "-c", code])
        bare_wall, bare_cpu = timed([sys.executable, "-c", "pass"])
        samples["wall"].append(wall)
        samples["cpu"].append(cpu)
        samples["bare wall"].append(bare_wall)
        samples["bare cpu"].append(bare_cpu)
    return {k: statistics.median(v) for k, v in samples.items()}


# -- the run ---------------------------------------------------------------------------------------


def one_run(bundle_dir: Path, minter: Minter, args: argparse.Namespace) -> dict[str, float]:
    workers, seconds = args.workers, args.seconds
    print(f"\n-- {time.strftime('%Y-%m-%d %H:%M:%S')}, {load_average()}", flush=True)

    cpu = per_request_cpu(bundle_dir, minter, rounds=args.rounds, block=args.block)
    core_ratio = cpu["valid"] / cpu["floor"]
    print(
        f"1. core CPU per valid request {cpu['valid']:.1f} us, crypto floor "
        f"{cpu['floor']:.1f} us: ratio {core_ratio:.2f} ({verdict(core_ratio, 2.0, True)})"
    )
    print(
        "   refused, median CPU per request: unknown client "
        f"{cpu['unknown client']:.1f} us | unknown kid {cpu['unknown kid']:.1f} us | "
        f"bad signature {cpu['bad signature']:.1f} us",
        flush=True,
    )

    before = core_rps(bundle_dir, minter, seconds, workers)
    served = serve_phase(bundle_dir, minter, before, seconds, workers)
    after = core_rps(bundle_dir, minter, seconds, workers)
    core = (before + after) / 2
    serve_ratio = served.rps / core
    print(
        f"2. keyops serve --workers {workers} (wrk, 1 thread, 32 connections): "
        f"{served.rps:,.0f} req/s, {served.latency}, non-2xx {served.non_2xx}; in-process core "
        f"x{workers} processes {core:,.0f} req/s (before {before:,.0f}, after {after:,.0f}): "
        f"ratio {serve_ratio:.2f} ({verdict(serve_ratio, 0.7, False)})"
    )
    shares = ", ".join(f"{name} {used / served.wall:.2f}" for name, used in served.cpu.items())
    total = sum(served.cpu.values()) / served.wall
    print(f"   cores used during the wrk run: {shares} (total {total:.2f} of {os.cpu_count()})")
    worker_cpu = sum(v for k, v in served.cpu.items() if k.startswith("worker"))
    per_request = 1e6 * worker_cpu / (served.rps * served.wall)
    print(
        f"   server CPU per request {per_request:.1f} us = core {cpu['valid']:.1f} us + "
        f"HTTP layer {per_request - cpu['valid']:.1f} us",
        flush=True,
    )

    cold = cold_start(bundle_dir, minter.token(0), args.cold_runs)
    cold_ratio = cold["wall"] / cold["bare wall"]
    cpu_ratio = cold["cpu"] / cold["bare cpu"]
    print(
        f"3. Lambda cold start (import + bundle load + first answer) {1000 * cold['wall']:.1f} ms"
        f", bare python -c pass {1000 * cold['bare wall']:.1f} ms (medians of "
        f"{args.cold_runs}): ratio {cold_ratio:.2f} ({verdict(cold_ratio, 5.0, True)})"
    )
    print(
        f"   the same in CPU time (steadier on a busy machine): {1000 * cold['cpu']:.1f} ms vs "
        f"{1000 * cold['bare cpu']:.1f} ms, ratio {cpu_ratio:.2f}"
    )
    print(f"   {load_average()}", flush=True)
    return {"core": core_ratio, "serve": serve_ratio, "cold": cold_ratio, "cold cpu": cpu_ratio}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (smoke run)")
    parser.add_argument("--repeat", type=int, default=1, help="whole runs, summarised at the end")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per load phase")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(f"error: bench_serve needs wrk, the HTTP load generator: {WRK_INSTALL}.")
        return 2
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    args.rounds, args.block = (5, 200) if args.quick else (15, 400)
    args.cold_runs = 5 if args.quick else 15
    print(
        f"loopback, {os.cpu_count()} CPUs, {args.workers} worker process(es), "
        f"{args.seconds:.0f} s per load phase, {args.repeat} run(s)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="keyops-bench-") as tmp:
        bundle_dir = Path(tmp) / "bundle"
        build_bundle(bundle_dir)
        minter = Minter.for_dev()
        results = [one_run(bundle_dir, minter, args) for _ in range(args.repeat)]
    if args.repeat > 1:
        print("\nsummary (min / median / max over the runs):")
        goals = {"core": ("core / crypto floor", 2.0, True), "serve": ("serve / core", 0.7, False)}
        goals["cold"] = ("cold start / bare", 5.0, True)
        goals["cold cpu"] = ("cold start / bare, CPU time", 5.0, True)
        for key, (label, goal, lower) in goals.items():
            values = sorted(r[key] for r in results)
            middle = statistics.median(values)
            print(
                f"  {label}: {values[0]:.2f} / {middle:.2f} / {values[-1]:.2f} "
                f"({verdict(middle, goal, lower)} by the median)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
