"""Interrupted edits leave the old file or the new one, never a broken one.

Each rotate/promote runs as a real subprocess and is killed (SIGKILL or SIGINT, alternating) at a
point taken from a delay schedule that spans the command's whole run, measured once at the start.
After every kill the file must decrypt (real sops) to exactly the old or the new document, and
any temporary file left behind must hold ciphertext only. No assertion depends on timing.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keyops.core.atomic import leftover_temps as temp_files
from keyops.store import sample
from support.repo import KeyRepo

IOS = "credentials/dev/ios.yaml"
ROUNDS = 25  # per command: 50 kills in all


def _start(keyrepo: KeyRepo, args: list[str], stdin: str) -> subprocess.Popen[str]:
    # The key pair comes from a file outside the repository, opened as stdin (never argv).
    source = keyrepo.home / "pair.txt"
    source.write_text(stdin)
    with source.open() as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "keyops", *args],
            cwd=keyrepo.root,
            env=keyrepo.env(),
            stdin=handle,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def _state(keyrepo: KeyRepo) -> dict[str, object]:
    return json.loads(keyrepo.sops().decrypt(IOS))  # type: ignore[no-any-return]


def _kill_loop(
    keyrepo: KeyRepo, args: list[str], stdin: str, old: dict[str, object], seed: int
) -> dict[str, int]:
    path = keyrepo.path(IOS)
    original = path.read_bytes()
    # One undisturbed run gives the new state and the length of the schedule.
    started = time.monotonic()
    done = _start(keyrepo, args, stdin)
    _, err = done.communicate(timeout=120)
    span = time.monotonic() - started
    assert done.returncode == 0, err
    new = _state(keyrepo)
    assert new != old
    rng = random.Random(seed)
    # Spread from 0.2 to 1.2 x the run, jittered: kills during start-up, sops and the rename.
    delays = [span * (0.2 + (i + rng.random()) / ROUNDS) for i in range(ROUNDS)]
    outcomes = {"old": 0, "new": 0}
    for index, delay in enumerate(delays):
        path.write_bytes(original)
        proc = _start(keyrepo, args, stdin)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL if index % 2 else signal.SIGINT)
        proc.communicate(timeout=120)
        state = _state(keyrepo)
        assert state in (old, new), f"round {index}: the file decrypts to neither state"
        outcomes["old" if state == old else "new"] += 1
        for leftover in temp_files(path):
            text = leftover.read_text()
            assert "ENC[AES256_GCM" in text
            for secret in _secrets(new):
                assert secret not in text, f"round {index}: plaintext in {leftover.name}"
    path.write_bytes(original)
    return outcomes


def _secrets(doc: dict[str, object]) -> list[str]:
    creds = doc["credentials"]
    assert isinstance(creds, list)
    return [c[f] for c in creds for f in ("key", "secret")]


@pytest.mark.slow
def test_rotate_and_promote_survive_50_kills(keyrepo: KeyRepo) -> None:
    key, secret = sample.pusher_hex(), sample.pusher_hex()
    rotate = ["rotate", "--stack", "dev", "--client", "ios", "--now", "2026-11-27", "--allow-dirty"]
    old = _state(keyrepo)
    rotated = _kill_loop(keyrepo, rotate, f"{key}\n{secret}\n", old, seed=4)
    # Commit a pending credential, then the same for promote.
    assert keyrepo.run(*rotate, input=f"{key}\n{secret}\n").returncode == 0
    keyrepo.commit("rotate")
    promote = [
        "promote",
        "--stack",
        "dev",
        "--client",
        "ios",
        "--now",
        "2026-11-28",
        "--allow-dirty",
    ]
    promoted = _kill_loop(keyrepo, promote, "", _state(keyrepo), seed=5)
    total = {k: rotated[k] + promoted[k] for k in rotated}
    assert sum(total.values()) == 2 * ROUNDS
    # The schedule starts before the first write, so some runs must have left the old state.
    assert total["old"] > 0
    print(f"kill outcomes: rotate {rotated}, promote {promoted}")


def test_a_leftover_temp_file_is_removed_by_the_next_edit(keyrepo: KeyRepo) -> None:
    path = keyrepo.path(IOS)
    stale = path.parent / f".{path.name}.keyops-99999.tmp"
    stale.write_bytes(path.read_bytes())  # ciphertext, as a killed run would leave it
    assert temp_files(path) == [stale]
    key, secret = sample.pusher_hex(), sample.pusher_hex()
    proc = keyrepo.run(
        "rotate", "--stack", "dev", "--client", "ios", "--allow-dirty", input=f"{key}\n{secret}\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert temp_files(path) == []
    # The loader never reads dot files, so a leftover is never taken for a credential file.
    assert keyrepo.run("validate").stdout == "ok: 5 file(s) validated, no findings\n"


def test_sigint_before_the_write_says_nothing_was_written(keyrepo: KeyRepo) -> None:
    # Blocks on stdin until signalled: an interrupt before any write.
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyops", "rotate", "--stack", "dev", "--client", "ios"],
        cwd=keyrepo.root,
        env=keyrepo.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    # Wait until the interpreter is up (the CLI reads stdin only after parsing arguments).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = Path(f"/proc/{proc.pid}/wchan").read_text()
        if "wait" in status or "read" in status or "pipe" in status:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == "error: interrupted. Nothing was written.\n"
    assert keyrepo.git("status", "--porcelain") == ""
