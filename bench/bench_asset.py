"""Cold start of the Lambda asset: byte-compiled vs not, against a bare interpreter.

``/var/task`` is read-only on Lambda, so an asset without ``.pyc`` files compiles every imported
module on every cold start. This measures, in fresh interpreters that see only the asset
(``python -I -S -B``), the import of the handler plus one ``/healthz`` answer from the bundle:

    baseline   python -I -S -B -c pass
    compiled   asset built by an interpreter of the runtime's version (what CI does for 3.12)
    source     the same asset without byte code (a builder of another Python version)

Run: ``python bench/bench_asset.py [--quick]`` (``make bench`` sets the dev stack's key).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = """
import sys
sys.path.insert(0, sys.argv[1])
from keyops.endpoint.lambda_handler import handler
answer = handler({"rawPath": "/healthz", "requestContext": {"http": {"method": "GET"}}}, None)
assert answer["statusCode"] == 200, answer
"""


def cold(asset: Path | None, runs: int) -> float:
    """Median wall time (s) of a fresh interpreter answering one health check."""
    times = []
    for _ in range(runs):
        command = [sys.executable, "-I", "-S", "-B", "-c"]
        command += [SNIPPET, str(asset)] if asset else ["pass"]
        env = {"LAMBDA_TASK_ROOT": str(asset or ROOT), "PATH": "/usr/bin:/bin"}
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from keyops.build.bundle import build_bundle, write_bundle
    from keyops.deploy.asset import build_asset

    runs = 3 if "--quick" in argv else 9
    this = f"python{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_bundle(build_bundle(ROOT, "dev"), work / "bundle")
        started = time.perf_counter()
        compiled = build_asset(work / "compiled", work / "bundle", strategy="copy", runtime=this)
        build_s = time.perf_counter() - started
        source = build_asset(work / "source", work / "bundle", strategy="copy", runtime="python0.0")
        files = [p for p in source.path.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        base = cold(None, runs)
        with_pyc = cold(compiled.path, runs)
        without = cold(source.path, runs)
    print(
        f"asset: {len(files)} files, {size / 1e6:.1f} MB before byte code; "
        f"build with byte code {build_s:.2f} s"
    )
    print(f"cold start, median of {runs} fresh interpreters (import + one /healthz):")
    print(f"  baseline bare interpreter  {base * 1000:8.1f} ms  1.00x")
    print(f"  asset with byte code       {with_pyc * 1000:8.1f} ms  {with_pyc / base:5.2f}x")
    print(f"  asset without byte code    {without * 1000:8.1f} ms  {without / base:5.2f}x")
    print(
        f"  byte code saves            {(without - with_pyc) * 1000:8.1f} ms per cold start "
        f"({without / with_pyc:.2f}x faster)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
