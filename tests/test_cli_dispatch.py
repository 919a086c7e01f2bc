"""Explicit dispatch: a base install without extras, and the last-resort handler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keyops.cli import main as cli

#: Runs the CLI as a base install sees it: the optional dependencies cannot be imported.
BASE_INSTALL = """
import sys
for name in ('httptools', 'uvloop', 'pulumi', 'pulumi_aws', 'pulumi_policy', 'boto3'):
    sys.modules[name] = None  # import of NAME halted: what a missing package looks like
from keyops.cli.main import main
raise SystemExit(main(sys.argv[1:]))
"""


def base_install(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "KEYOPS_"))}
    return subprocess.run(
        [sys.executable, "-c", BASE_INSTALL, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "code"),
    [(("--help",), 0), ((), 2), (("nosuch",), 2), (("serve",), 2), (("serve", "--help"), 2)],
)
def test_a_base_install_never_prints_a_traceback(
    args: tuple[str, ...], code: int, tmp_path: Path
) -> None:
    proc = base_install(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    if args and args[0] == "serve":
        assert proc.stderr == (
            "error: 'keyops serve' needs the 'serve' extra (httptools is not installed). "
            "Install it: pip install 'keyops[serve]'.\n"
        )
    if args == ("nosuch",):
        assert proc.stderr.startswith("error: keyops: argument COMMAND: invalid choice: 'nosuch'")


def test_help_imports_no_command(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom keyops.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('keyops.cli.commands.')),"
        " file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.stderr.strip() == "[]"


def test_every_command_in_the_table_has_its_module() -> None:
    parser = cli.build_parser()  # imports every command: none may be missing or broken
    choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(choices) == [c.name for c in cli.COMMANDS]
    for name, sub in choices.items():
        assert sub.get_default("_run") is not None, name


def test_an_unexpected_error_is_logged_not_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keyops.cli.commands import status

    def broken(args: object) -> int:
        secret = "0f3c" * 5
        raise ValueError(f"boom with {secret}")

    monkeypatch.setattr(status, "status", broken)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    code = cli.main(["status"])
    err = capsys.readouterr().err
    assert code == 3
    logs = list((tmp_path / "state" / "keyops").glob("keyops-crash-*.log"))
    assert len(logs) == 1
    assert err == (
        "error: unexpected error (ValueError); this is a bug in keyops, and the details are in "
        f"{logs[0]}. Please report it with that file.\n"
    )
    text = logs[0].read_text()
    assert logs[0].stat().st_mode & 0o777 == 0o600
    assert "exception: builtins.ValueError" in text
    assert "in broken" in text
    # the message (which could carry a value) is neither shown nor logged
    assert "0f3c" not in text and "0f3c" not in err and "Traceback" not in err
