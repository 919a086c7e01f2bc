"""Running the keyops CLI as a test: in-process where no separate process is needed.

``run_in_process`` calls ``keyops.cli.main.main`` with the environment, working directory,
stdin, stdout and stderr the subprocess would have had, and returns the same
``CompletedProcess``. It saves the interpreter start and the imports of every call (most of a
CLI test's time). Tests that need a real process (signals, a server that keeps running, a
crash) run ``python -m keyops`` instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path


@contextlib.contextmanager
def _environment(env: dict[str, str], cwd: Path) -> Iterator[None]:
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _stream(data: bytes = b"") -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")


def run_in_process(
    args: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    input: str | None = None,
    merge: bool = False,
) -> subprocess.CompletedProcess[str]:
    """With ``merge``, stderr goes to the stdout stream, interleaved as on a terminal (the
    result's ``stdout`` then holds both and ``stderr`` is empty)."""
    from keyops.cli.main import main

    stdin, stdout = _stream((input or "").encode()), _stream()
    stderr = stdout if merge else _stream()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
    try:
        with _environment(env, cwd):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's --help and --version
                code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    out = _flushed(stdout).detach().getvalue().decode()
    err = "" if merge else _flushed(stderr).detach().getvalue().decode()
    return subprocess.CompletedProcess(["keyops", *args], code, out, err)


def _flushed(stream: io.TextIOWrapper) -> io.TextIOWrapper:
    stream.flush()
    return stream


def run_subprocess(
    args: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyops", *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
