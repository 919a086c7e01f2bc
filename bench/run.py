"""Run every benchmark under bench/ (``make bench``), one after another.

Each ``bench_<area>.py`` is standalone and prints its own results as ratios against a baseline
measured in the same run. Extra arguments are passed to every benchmark (e.g. ``--quick``);
``--only AREA`` runs one (``make bench BENCH=serve``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    scripts = sorted(here.glob("bench_*.py"))
    if argv[:1] == ["--only"] and len(argv) > 1:
        scripts = [s for s in scripts if s.stem == f"bench_{argv[1]}"]
        argv = argv[2:]
    if not scripts:
        print("no benchmarks found under bench/", file=sys.stderr)
        return 2
    failed = 0
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        proc = subprocess.run([sys.executable, str(script), *argv], check=False)
        if proc.returncode != 0:
            print(f"{script.name} failed with exit code {proc.returncode}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
