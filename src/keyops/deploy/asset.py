"""Build the Lambda code asset: the keyops package, its runtime dependencies, and one bundle.

Layout of the asset directory (it becomes ``/var/task`` in the function)::

    keyops/             keyops.core, keyops.protocol and keyops.endpoint: what the handler runs
    cryptography/ ...   runtime dependencies, built for the Lambda platform
    bundle/             the stack's signed bundle (static data: the read path needs no store)
    keyops-asset.json   what was built, how, and for which platform (no secrets)

Dependencies come from one of two strategies:

* ``pip``: ``pip install --platform manylinux2014_aarch64 --only-binary=:all: --target`` with the
  versions of the whole closure pinned to those installed here, so the function runs the code the
  tests ran. This is
  the real build; it needs PyPI (or ``--find-links`` of a wheelhouse passed through ``pip_args``).
* ``copy``: the installed distributions are copied from this interpreter's site-packages. That
  is only correct for the Lambda platform when every one of them is pure Python; binary wheels
  (``cryptography``) are built for *this* machine. Tests use it offline, on purpose.

``auto`` (the default) tries ``pip`` and falls back to ``copy`` only when every dependency is pure
Python; otherwise it stops with the pip error, because an x86_64 ``.so`` in an arm64 function
fails at its first request, not at deploy time.
"""

from __future__ import annotations

import compileall
import importlib.metadata as metadata
import json
import py_compile
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import keyops
from keyops.core.atomic import publish_dir, stage_dir, write_atomic
from keyops.core.errors import AssetError

HANDLER = "keyops.endpoint.lambda_handler.handler"
RUNTIME = "python3.12"
BUNDLE_DIR = "bundle"
MANIFEST = "keyops-asset.json"
#: Distributions the endpoint imports at run time (their own requirements follow).
SERVER_REQUIREMENTS: tuple[str, ...] = ("cryptography",)
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
STRATEGIES = ("auto", "pip", "copy")
#: The parts of the keyops package the function ships (the import contract in pyproject.toml
#: keeps them free of everything else).
SERVER_PACKAGES = ("core", "protocol", "endpoint")
#: Files of those packages that serve ``keyops serve`` only (the HTTP server imports httptools).
EXCLUDED_FILES = frozenset({"endpoint/server.py"})


@dataclass(frozen=True)
class LambdaAsset:
    path: Path
    strategy: str
    platform: str
    distributions: tuple[str, ...]

    @property
    def bundle_path(self) -> Path:
        return self.path / BUNDLE_DIR


def closure(requirements: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions ``requirements`` need, transitively, without optional extras."""
    seen: dict[str, metadata.Distribution] = {}
    queue = list(requirements)
    while queue:
        req = Requirement(queue.pop(0))
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        key = canonicalize_name(req.name)
        if key in seen:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise AssetError(
                f"the endpoint needs {req.name!r}, which is not installed here",
                "Install the serve extras: pip install -e '.[serve,deploy]'.",
            ) from None
        seen[key] = dist
        queue.extend(dist.requires or [])
    return sorted(seen.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def is_pure(dist: metadata.Distribution) -> bool:
    wheel = dist.read_text("WHEEL") or ""
    return "Root-Is-Purelib: true" in wheel


def _copy_package(target: Path) -> None:
    """Only the packages the endpoint imports: the function holds nothing it does not run."""
    source = Path(keyops.__file__).resolve().parent
    dest = target / "keyops"
    dest.mkdir(parents=True)  # why: inside the private staging directory (see build_asset)
    for name in ("__init__.py", "py.typed"):
        if (source / name).is_file():
            shutil.copy2(source / name, dest / name)  # why: into the private staging directory

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory).relative_to(source).as_posix()
        skip = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}
        return skip | {n for n in names if f"{here}/{n}" in EXCLUDED_FILES}

    for package in SERVER_PACKAGES:
        # why: into the private staging directory, where nothing can be planted
        shutil.copytree(source / package, dest / package, ignore=ignore)


def _copy_distributions(dists: Sequence[metadata.Distribution], target: Path) -> None:
    for dist in dists:
        for file in dist.files or []:
            parts = Path(str(file)).parts
            # RECORD also lists console scripts (../../bin) and byte code: neither belongs here.
            if not parts or parts[0] == ".." or "__pycache__" in parts or file.suffix == ".pyc":
                continue
            src = Path(str(dist.locate_file(file)))
            if not src.is_file():
                continue
            dest = target.joinpath(*parts)
            # why: both inside the private staging directory, where nothing can be planted
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)  # why: as above


def _compile(root: Path, runtime: str) -> bool:
    """Byte-compile the asset when this interpreter is the function's Python version.

    ``/var/task`` is read-only, so without ``.pyc`` files every cold start compiles every module
    it imports (cryptography's Python half, keyops). Byte code is version-specific, so it
    is only written when the builder runs the runtime's version (CI uses Python 3.12). Unchecked
    hash-based ``.pyc`` files keep the asset deterministic and skip the source ``stat`` at import.
    """
    if runtime != f"python{sys.version_info.major}.{sys.version_info.minor}":
        return False
    ok = compileall.compile_dir(
        root,
        quiet=2,
        workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise AssetError(
            f"byte-compiling the asset in {root} failed",
            "Check that every module of the asset is valid Python.",
        )
    return True


def _normalize_modes(root: Path) -> None:
    """Modes as Lambda needs them inside the archive, the directory itself private here.

    Lambda runs the code as an unprivileged user, so every archived file must be world-readable
    (``bundle.jws`` is written 0600 by ``keyops build``); the asset directory stays 0700 so that
    on the build machine only its owner can read the bundle's HMAC keys.
    """
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)
    root.chmod(0o700)


def pip_command(
    target: Path, pins: Sequence[str], platform: str, python_version: str, pip_args: Sequence[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        *pip_args,
        *pins,
    ]


def _pip_install(
    target: Path, pins: Sequence[str], platform: str, pip_args: Sequence[str], runtime: str
) -> None:
    python_version = runtime.removeprefix("python")
    command = pip_command(target, pins, platform, python_version, pip_args)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise AssetError(
            "pip did not finish within 600 s", "Check network access to PyPI."
        ) from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise AssetError(
            f"pip could not fetch {platform} wheels for {', '.join(pins)} (exit "
            f"{proc.returncode}: {last})",
            "Build with network access to PyPI, or pass a wheelhouse with "
            "pip_args=('--no-index', '--find-links', DIR).",
        )


def build_asset(
    out_dir: Path,
    bundle_dir: Path,
    *,
    strategy: str = "auto",
    architecture: str = "arm64",
    runtime: str = RUNTIME,
    requirements: Sequence[str] = SERVER_REQUIREMENTS,
    pip_args: Sequence[str] = (),
) -> LambdaAsset:
    """Assemble the asset in a private staging directory beside ``out_dir``, then move it there.

    The staging directory has a random name and mode 0700 (``keyops.core.atomic.stage_dir``),
    so nothing can be planted in it while pip and the copies fill it.
    """
    if strategy not in STRATEGIES:
        raise AssetError(f"unknown asset strategy {strategy!r}", f"Use one of {STRATEGIES}.")
    if not bundle_dir.is_dir():
        raise AssetError(f"bundle directory {bundle_dir} does not exist", "Build the bundle first.")
    platform = PLATFORMS[architecture]
    dists = closure(requirements)
    # Every distribution pinned, not only the top level: the function runs what the tests ran.
    pins = [f"{canonicalize_name(d.metadata['Name'])}=={d.version}" for d in dists]
    work = stage_dir(out_dir)
    try:
        used = strategy
        if strategy in ("auto", "pip"):
            try:
                _pip_install(work, pins, platform, pip_args, runtime)
                used = "pip"
            except AssetError as err:
                binary = [d.metadata["Name"] for d in dists if not is_pure(d)]
                if strategy == "pip" or binary:
                    if binary and strategy == "auto":
                        err.fix += (
                            f" Copying from this machine is not an option: "
                            f"{', '.join(binary)} ship compiled code for this platform."
                        )
                    raise
                used = "copy"
        if used == "copy":
            _copy_distributions(dists, work)
        _copy_package(work)
        shutil.copytree(bundle_dir, work / BUNDLE_DIR)  # why: into the private staging directory
        names = tuple(f"{d.metadata['Name']}=={d.version}" for d in dists)
        manifest = {
            "handler": HANDLER,
            "runtime": runtime,
            "bytecode": _compile(work, runtime),
            "strategy": used,
            # A copy is built for this interpreter's platform, whatever the architecture says.
            "platform": platform if used == "pip" else f"local:{sys.platform}",
            "distributions": list(names),
        }
        write_atomic(
            work / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        )
        _normalize_modes(work)
        publish_dir(work, out_dir, replace=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return LambdaAsset(out_dir, used, str(manifest["platform"]), names)
