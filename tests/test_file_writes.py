"""Every file keyops writes goes through ``keyops.core.atomic``, and no planted symlink is followed.

``write_atomic`` creates a random name beside the target with ``O_CREAT|O_EXCL|O_NOFOLLOW`` and
its final mode, then renames it into place. The first test keeps it the only way: it reads
every module of src/ and fails on any other call that creates or writes a file or directory,
unless the line says why it is safe with a ``# why:`` comment. The others plant symlinks at
every name a writer could predict (the target, ``.name.tmp``, ``.name.<pid>.tmp``...) before
each command that writes next to a path the user chose, and show that nothing behind them is
touched.
"""

from __future__ import annotations

import ast
import json
import stat
import tempfile
from pathlib import Path

import pytest

from support.client import document, loopback, serve_live
from support.fetch import run_fetch
from support.planted import plant
from support.repo import KeyRepo

SRC = Path(__file__).resolve().parents[1] / "src" / "keyops"
#: The one module allowed to write files directly.
HOME = SRC / "core" / "atomic.py"
#: Calls that create, replace or write a file or directory, whatever their arguments.
WRITERS = frozenset(
    {
        "write_text",
        "write_bytes",
        "mkdtemp",
        "mkstemp",
        "mktemp",
        "NamedTemporaryFile",
        "TemporaryFile",
        "SpooledTemporaryFile",
        "TemporaryDirectory",
        "mkdir",
        "makedirs",
        "touch",
        "rename",
        "symlink_to",
        "hardlink_to",
        "copy",
        "copy2",
        "copyfile",
        "copytree",
        "move",
        "mkfifo",
        "mknod",
    }
)
#: Writers that are shutil's functions: ``shutil.copy(a, b)`` writes, ``hmac_object.copy()`` not.
SHUTIL_ONLY = frozenset({"copy", "copy2", "copyfile", "copytree", "move"})
#: ``os.<name>`` calls that write: ``os.replace`` but not ``str.replace``.
OS_WRITERS = frozenset({"replace", "rename", "link", "symlink", "truncate"})
#: ``os.open`` flags that make it a write.
WRITE_FLAGS = frozenset({"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"})


def _name(func: ast.expr) -> tuple[str | None, str, bool]:
    """(receiver if a plain name, function or method name, whether it is a method) of a call."""
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        return owner, func.attr, True
    if isinstance(func, ast.Name):
        return None, func.id, False
    return None, "", False


def _writes_mode(mode: ast.expr | None) -> bool:
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(flag in mode.value for flag in "wax+")
    return True  # a mode computed at run time could be anything


def _mode_argument(call: ast.Call, position: int) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "mode":
            return keyword.value
    return call.args[position] if len(call.args) > position else None


def _is_write(call: ast.Call) -> str | None:
    """What kind of write ``call`` is, or None."""
    owner, name, method = _name(call.func)
    if name in SHUTIL_ONLY and method and owner != "shutil":
        return None
    if name in WRITERS and not (owner == "os" and name not in {"makedirs", "mkdir", "rename"}):
        return name
    if owner == "os" and name in OS_WRITERS:
        return f"os.{name}"
    if owner == "os" and name == "open" and len(call.args) > 1:
        flags = {
            n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "")
            for n in ast.walk(call.args[1])
        }
        return "os.open" if flags & WRITE_FLAGS else None
    if not method and name == "open":  # the builtin: open(file, mode)
        return "open" if _writes_mode(_mode_argument(call, 1)) else None
    if name in {"open", "fdopen"}:  # Path.open(mode), os.fdopen(fd, mode), tarfile.open(..)
        mode = _mode_argument(call, 1 if owner in {"os", "tarfile"} else 0)
        if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
            return name if _writes_mode(mode) else None
        return None
    return None


def unexplained_writes(path: Path, rel: str) -> list[str]:
    """``rel:line: kind: code`` for each write in ``path`` that does not say why it is safe."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call):
            continue
        kind = _is_write(node)
        if kind is None:
            continue
        # The reason sits on the call's lines or on the line just above it.
        span = lines[max(node.lineno - 2, 0) : (node.end_lineno or node.lineno)]
        if not any("# why:" in line for line in span):
            code = lines[node.lineno - 1].strip()
            found.append((node.lineno, f"{rel}:{node.lineno}: {kind}: {code}"))
    return [line for _, line in sorted(found)]


def test_src_writes_files_only_through_core_atomic() -> None:
    found = [
        line
        for path in sorted(SRC.rglob("*.py"))
        if path != HOME
        for line in unexplained_writes(path, path.relative_to(SRC).as_posix())
    ]
    assert found == [], (
        "write files with keyops.core.atomic (write_atomic, make_dirs, append_nofollow), or say "
        "on the line why this write cannot follow a planted link (# why: ...):\n" + "\n".join(found)
    )


def test_the_scanner_finds_each_kind_of_write(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    code = "\n".join(
        [
            "import os, shutil, tempfile",
            "open(p, 'w')",
            "open(p, mode='ab')",
            "open(p)",
            "path.open('a', encoding='utf-8')",
            "path.open()",
            "path.write_text('x')",
            "os.open(p, os.O_WRONLY | os.O_CREAT)",
            "os.open(p, os.O_RDONLY)",
            "os.replace(a, b)",
            "text.replace('a', 'b')",
            "tempfile.mkdtemp()",
            "shutil.copytree(a, b)",
            "work.rename(out)",
            "d.mkdir(parents=True)  # why: a test of the comment",
            "# why: the comment may stand on the line above",
            "d.mkdir()",
            "opener.open(request, timeout=3)",
            "args.summary.open('a', encoding='utf-8')",
            "with open(p, 'rb') as handle: pass",
        ]
    )
    sample.write_text(code)
    found = [line.split(":")[1] for line in unexplained_writes(sample, "sample.py")]
    assert found == ["2", "3", "5", "7", "8", "10", "12", "13", "14", "19"]


# -- no planted link is followed, command by command ---------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _written(path: Path, mode: int) -> None:
    """``path`` is now a regular file of its own (not a link), with exactly ``mode``."""
    assert stat.S_ISREG(path.lstat().st_mode), f"{path} is not a regular file"
    assert _mode(path) == mode


#: Commands that may replace their output: (what they are, arguments, the output's mode).
REPLACING: dict[str, tuple[list[str], int]] = {
    "client-config --out": (["client-config", "--stack", "dev", "--client", "ios"], 0o600),
    "export --format --out": (
        ["export", "--stack", "dev", "--client", "android", "--format", "json"],
        0o644,
    ),
    "adoption --out": (["adoption", "--from", "{metrics}"], 0o644),
}


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
@pytest.mark.parametrize("command", list(REPLACING))
def test_an_output_file_replaces_planted_links_and_follows_none(
    keyrepo: KeyRepo, tmp_path: Path, command: str, dangling: bool
) -> None:
    args, mode = REPLACING[command]
    (tmp_path / "metrics.txt").write_text("")
    out = tmp_path / "out" / "result.json"
    planted = plant(out, tmp_path / "elsewhere", dangling=dangling)
    argv = [a.format(metrics=tmp_path / "metrics.txt") for a in args]
    proc = keyrepo.run(*argv, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    _written(out, mode)
    assert planted.disturbed() == []


#: Commands whose output holds a secret and is never replaced: a link at the name refuses.
NEW_FILE_ONLY: dict[str, list[str]] = {
    "export --auth-keyring --out": ["export", "--stack", "dev", "--auth-keyring", "--out"],
    "app-auth rotate --secret-out": [
        *("app-auth", "rotate", "--stack", "dev", "--client", "ios", "--now", "2026-11-27"),
        "--secret-out",
    ],
}


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
@pytest.mark.parametrize("command", list(NEW_FILE_ONLY))
def test_a_secret_output_is_refused_when_a_link_is_planted_at_its_name(
    keyrepo: KeyRepo, tmp_path: Path, command: str, dangling: bool
) -> None:
    out = tmp_path / "out" / "secret.txt"
    planted = plant(out, tmp_path / "elsewhere", dangling=dangling)
    before = keyrepo.git("status", "--porcelain")
    proc = keyrepo.run(*NEW_FILE_ONLY[command], str(out))
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {out} already exists. Name a new file; keyops never overwrites it.\n"
    )
    assert out.is_symlink()
    assert planted.disturbed() == []
    # Refused before anything changed: a rotation whose secret cannot be handed over is not made.
    assert keyrepo.git("status", "--porcelain") == before


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
@pytest.mark.parametrize("command", list(NEW_FILE_ONLY))
def test_a_secret_output_is_written_0600_beside_planted_links(
    keyrepo: KeyRepo, tmp_path: Path, command: str, dangling: bool
) -> None:
    out = tmp_path / "out" / "secret.txt"
    planted = plant(out, tmp_path / "elsewhere", dangling=dangling, at_target=False)
    proc = keyrepo.run(*NEW_FILE_ONLY[command], str(out))
    assert proc.returncode == 0, proc.stderr
    _written(out, 0o600)
    assert planted.disturbed() == []


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_build_out_follows_no_planted_link(
    keyrepo: KeyRepo, tmp_path: Path, dangling: bool
) -> None:
    out = tmp_path / "out" / "bundle"
    around = plant(out, tmp_path / "elsewhere", dangling=dangling, at_target=False)
    proc = keyrepo.run("build", "--stack", "dev", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    _written(out / "bundle.jws", 0o600)
    _written(out / "jwks.json", 0o644)
    # A second build writes into the directory: links beside its files are not followed either.
    inside = [
        plant(out / name, tmp_path / f"elsewhere-{name}", dangling=dangling, at_target=False)
        for name in ("bundle.jws", "jwks.json")
    ]
    again = keyrepo.run("build", "--stack", "dev", "--out", str(out))
    assert again.returncode == 0, again.stderr
    _written(out / "bundle.jws", 0o600)
    assert [p.disturbed() for p in (around, *inside)] == [[], [], []]


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-directory", "dangling"])
def test_build_out_that_is_a_link_is_refused(
    keyrepo: KeyRepo, tmp_path: Path, dangling: bool
) -> None:
    out = tmp_path / "bundle"
    victim = tmp_path / "elsewhere"
    if not dangling:
        victim.mkdir()
    out.symlink_to(victim)
    proc = keyrepo.run("build", "--stack", "dev", "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr == f"error: {out} exists and is not a directory. Choose another --out.\n"
    assert (list(victim.iterdir()) if not dangling else victim.exists()) in ([], False)


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_the_fetch_cache_replaces_planted_links_and_follows_none(
    tmp_path: Path, dangling: bool
) -> None:
    cache = tmp_path / "cache" / "keyops.json"
    planted = plant(cache, tmp_path / "elsewhere", dangling=dangling)
    with loopback(serve_live) as endpoint:
        (tmp_path / "c.json").write_text(json.dumps(document(list(endpoint.routes))))
        proc = run_fetch(tmp_path, "--config", "c.json", "--cache", str(cache))
    assert proc.returncode == 0, proc.stderr
    # The link at the cache's name is not read through either: it is noted, then replaced.
    assert proc.stderr == f"note: ignoring the cache {cache}: a symlink\n"
    _written(cache, 0o600)
    assert planted.disturbed() == []


def test_a_crash_log_is_not_written_through_a_planted_directory_link(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keyops.cli import main as cli
    from keyops.cli.commands import status

    def broken(args: object) -> int:
        raise ValueError("boom")

    victim = tmp_path / "elsewhere"
    victim.mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "keyops").symlink_to(victim)
    monkeypatch.setattr(status, "status", broken)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert cli.main(["status"]) == 3
    (log,) = (tmp_path / "tmp").glob("keyops-crash-*.log")
    assert f"the details are in {log}." in capsys.readouterr().err
    assert list(victim.iterdir()) == []
