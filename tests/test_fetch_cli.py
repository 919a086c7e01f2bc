"""``keyops fetch`` refuses unusable input with exit 2 before any network traffic."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support.client import document
from support.fetch import run_fetch
from support.net import closed_url

FIX = "Regenerate it with 'keyops client-config --stack S --client C --out FILE'."


def fetch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_fetch(tmp_path, *args)


def good_config(tmp_path: Path) -> Path:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document([closed_url()])))
    return path


def test_a_missing_config_is_exit_2(tmp_path: Path) -> None:
    proc = fetch(tmp_path, "--config", "nope.json")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"error: client config nope.json does not exist. {FIX}\n"


def test_a_config_that_is_not_json_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("stack: dev\n")
    proc = fetch(tmp_path, "--config", "c.json")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: client config c.json line 1 column 1: not JSON (Expecting value). {FIX}\n"
    )


def test_a_config_without_pinned_keys_is_exit_2(tmp_path: Path) -> None:
    data = document()
    del data["pinned_keys"]
    (tmp_path / "c.json").write_text(json.dumps(data))
    proc = fetch(tmp_path, "--config", "c.json")
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: client config $.pinned_keys: must be a JWKS with at least one key. {FIX}\n"
    )
    assert data["request_auth"]["secret"] not in proc.stderr


def test_a_bad_app_version_is_exit_2(tmp_path: Path) -> None:
    proc = fetch(tmp_path, "--config", str(good_config(tmp_path)), "--app-version", "v5")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: app version 'v5' is not a semantic version. Use MAJOR.MINOR.PATCH, e.g. 5.2.0.\n"
    )


def test_bad_numbers_are_exit_2(tmp_path: Path) -> None:
    proc = fetch(tmp_path, "--config", str(good_config(tmp_path)), "--rounds", "0")
    assert proc.returncode == 2
    assert proc.stderr == "error: --timeout must be > 0 and --rounds >= 1.\n"


def test_a_config_nested_too_deeply_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("[" * 30000 + "]" * 30000)
    proc = fetch(tmp_path, "--config", "c.json")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"error: client config c.json: not JSON (nested too deeply). {FIX}\n"


def test_a_config_with_a_number_too_long_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text('{"stack": ' + "1" * 5000 + "}")
    proc = fetch(tmp_path, "--config", "c.json")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: client config c.json: not JSON (a number longer than 4300 digits). {FIX}\n"
    )
